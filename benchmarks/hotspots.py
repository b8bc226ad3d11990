"""Where rxllm spends its time: cProfile over one big stream, every thread included.

    python -m benchmarks.hotspots                       # openai, sync, 100k chunks, top 10
    python -m benchmarks.hotspots --provider anthropic --mode async --top 25
    python -m benchmarks.hotspots --paced 200          # 200 streams at 100 chunks/s, 3 s

On the sync path the call runs on rxllm's own thread, which a plain `cProfile.run` in
the main thread would not see: every thread started while profiling gets a profiler of
its own, and the statistics are merged.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import threading
import time
from typing import Any

import rxllm
from benchmarks import bodies
from benchmarks.clients import AsyncClients, SyncClients, model_name, rxllm_pipeline
from benchmarks.run import ServerProcess

__all__ = ["main", "profile_sync"]


def profile_sync(url: str, protocol: bodies.Protocol, n: int) -> tuple[pstats.Stats, float]:
    """Profile one `collect(pipeline)` of an `n`-chunk stream; return stats and wall time."""
    clients = SyncClients(url)
    llm = clients.llm(protocol, model_name(n))
    rxllm.collect(rxllm_pipeline(clients.llm(protocol, model_name(500))))  # warm
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profiler = cProfile.Profile()
        profiles.append(profiler)
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile()
    try:
        start = time.perf_counter()
        main.enable()
        text = rxllm.collect(rxllm_pipeline(llm)).text
        main.disable()
        elapsed = time.perf_counter() - start
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
        clients.close()
    if text != bodies.text(n):
        raise RuntimeError("the profiled stream read the wrong text")
    stats = pstats.Stats(main)
    # The main thread only waits in `collect` for the call's thread: that wait is not a cost.
    for key in [k for k in stats.stats if "acquire" in k[2] and "_thread.lock" in k[2]]:  # type: ignore[attr-defined]
        del stats.stats[key]  # type: ignore[attr-defined]
    for profiler in profiles:
        stats.add(profiler)
    return stats, elapsed


def profile_async(url: str, protocol: bodies.Protocol, n: int) -> tuple[pstats.Stats, float]:
    """The same on the asyncio path (everything runs on the loop's thread)."""

    async def run() -> tuple[cProfile.Profile, float, str]:
        clients = AsyncClients(url)
        try:
            await clients.rxllm(protocol, model_name(500))
            profiler = cProfile.Profile()
            start = time.perf_counter()
            profiler.enable()
            text = await clients.rxllm(protocol, model_name(n))
            profiler.disable()
            return profiler, time.perf_counter() - start, text
        finally:
            await clients.close()

    profiler, elapsed, text = asyncio.run(run())
    if text != bodies.text(n):
        raise RuntimeError("the profiled stream read the wrong text")
    return pstats.Stats(profiler), elapsed


def profile_paced(
    url: str, protocol: bodies.Protocol, streams: int, seconds: float, kind: str = "rxllm"
) -> tuple[pstats.Stats, float]:
    """Profile `seconds` of `streams` asyncio streams paced at 100 chunks/s (5b's regime)."""

    async def run() -> tuple[cProfile.Profile, float, int]:
        clients = AsyncClients(url, max_connections=streams + 16)
        model = model_name(int((seconds + 15) * 100), every=0.01)
        received = [0]
        subscriptions: list[Any] = []
        tasks: list[asyncio.Task[None]] = []
        if kind == "rxllm":
            llm = clients.llm(protocol, model)

            def on_next(_: Any) -> None:
                received[0] += 1

            for _ in range(streams):
                subscriptions.append(rxllm_pipeline(llm).subscribe(on_next, lambda e: None))
        else:

            async def read() -> None:
                text = await clients.sdk(protocol, model)
                received[0] += len(text)

            tasks = [asyncio.create_task(read()) for _ in range(streams)]
        await asyncio.sleep(2.0)  # let every stream start
        profiler = cProfile.Profile()
        before = received[0]
        profiler.enable()
        await asyncio.sleep(seconds)
        profiler.disable()
        count = received[0] - before
        for subscription in subscriptions:
            subscription.dispose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.1)
        await clients.close()
        return profiler, seconds, count

    profiler, elapsed, count = asyncio.run(run())
    print(f"{count} items received while profiling ({count / elapsed:.0f}/s)")
    return pstats.Stats(profiler), elapsed


def top(stats: pstats.Stats, count: int, sort: str = "tottime") -> list[dict[str, Any]]:
    """The `count` functions with the most own time (`tottime`), as dicts."""
    rows = []
    entries = stats.stats  # type: ignore[attr-defined]
    key = {"tottime": 2, "cumtime": 3}[sort]
    for (filename, line, name), (cc, nc, tt, ct, _) in sorted(
        entries.items(), key=lambda item: item[1][key], reverse=True
    )[:count]:
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": nc,
                "primitive": cc,
                "tottime": tt,
                "cumtime": ct,
            }
        )
    return rows


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) summed per package: rxllm, reactivex, httpx2, asyncio, ..."""
    totals: dict[str, float] = {}
    for (filename, _, _name), entry in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in filename:
            package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/rxllm/" in filename:
            package = "rxllm"
        elif "/benchmarks/" in filename:
            package = "benchmarks"
        elif filename == "~":
            package = "C builtins and methods"
        else:
            package = (
                "stdlib " + filename.rsplit("/python3.", 1)[-1].split("/", 1)[-1].split("/")[0]
            )
        totals[package] = totals.get(package, 0.0) + entry[2]
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/rxllm/", "/lib/python3"):
        index = filename.find(marker)
        if index >= 0:
            return filename[index + len(marker) - (6 if marker == "/rxllm/" else 0) :]
    return filename


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotspots", description=__doc__)
    parser.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--sort", choices=("tottime", "cumtime"), default="tottime")
    parser.add_argument(
        "--paced",
        type=int,
        metavar="N",
        help="instead: N asyncio streams paced at 100 chunks/s (section 5b's regime)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="profiled time with --paced")
    parser.add_argument(
        "--sdk", action="store_true", help="with --paced: profile the bare SDK instead"
    )
    parser.add_argument(
        "--by-package", action="store_true", help="own time summed per package instead"
    )
    args = parser.parse_args(argv)
    server = ServerProcess([500, args.chunks] if not args.paced else [500], None)
    try:
        if args.paced:
            kind = "sdk" if args.sdk else "rxllm"
            stats, elapsed = profile_paced(
                server.url, args.provider, args.paced, args.seconds, kind
            )
            what = f"{kind} {args.provider} async, {args.paced} paced streams, {elapsed:g} s"
        else:
            profile = profile_sync if args.mode == "sync" else profile_async
            stats, elapsed = profile(server.url, args.provider, args.chunks)
            what = (
                f"rxllm {args.provider} {args.mode}, {args.chunks} chunks: {elapsed:.2f} s "
                f"under the profiler ({elapsed / args.chunks * 1e6:.1f} µs/chunk; profiling "
                "slows it down)"
            )
    finally:
        server.close()
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    print(f"{what}; {total:.2f} s of profiled time")
    if args.by_package:
        print(f"{'tottime':>8} {'%':>5}  package")
        for package, seconds in by_package(stats)[: args.top]:
            print(f"{seconds:8.3f} {100 * seconds / total:5.1f}  {package}")
        return
    print(f"{'tottime':>8} {'%':>5} {'cumtime':>8} {'calls':>9}  function")
    for row in top(stats, args.top, args.sort):
        print(
            f"{row['tottime']:8.3f} {100 * row['tottime'] / total:5.1f} {row['cumtime']:8.3f} "
            f"{row['calls']:9d}  {row['function']}"
        )


if __name__ == "__main__":
    main()
