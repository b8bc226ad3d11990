"""Leaks: streams cancelled at random points and failed streams leave nothing behind.

The loopback server runs in a child process (`remote`), so every thread, descriptor and
byte measured here is the client's: rxllm, the SDKs, httpx2. After a warm-up (first calls
import modules, build SDK clients and fill bounded caches) the process is measured, the
streams run — half from plain code on 8 worker threads (`rxllm.collect`, dispose from the
calling thread), half from asyncio (`await rxllm.acollect`, a fresh `asyncio.run` loop per
batch of 25, as scripts do), over the three protocols at random — and once the last
stream has ended the process is measured again (after `gc.collect()`, waiting up to 10 s
for threads to end).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rxllm
from benchmarks.reliability.common import PROTOCOLS, Section, model_for
from benchmarks.reliability.remote import RemoteServer
from rxllm import ops

__all__ = ["RSS_BOUND_MB", "TRACED_BOUND_KB", "run"]

TRACED_BOUND_KB = 512
"""Python memory (tracemalloc) still allocated after all the streams, beyond the baseline."""
RSS_BOUND_MB = 32
"""Resident memory beyond the baseline (allocator pools and fragmentation included)."""
STALL = 1.0
_WORKERS = 8
_BATCH = 25
# long enough that no cancelled stream can end on its own (it would need 6 s)
_CANCEL_SCRIPT: dict[str, Any] = {"chunks": ["w "] * 3000, "delay": 0.002, "first_delay": 0.005}
_TEXT = ["Hel", "lo, ", "wörld ", "日本語"]
_FAULTS: list[dict[str, Any]] = [
    *({"chunks": _TEXT, "status": s} for s in (400, 401, 404, 429, 500, 503, 529)),
    {"chunks": _TEXT, "drop_after": 0},
    {"chunks": _TEXT, "drop_after": 2},
    {"chunks": _TEXT, "malformed_after": 1},
    {"chunks": _TEXT, "error_event": "server_error"},
    {"chunks": _TEXT, "error_event": "overloaded_error"},
    {"chunks": _TEXT, "hang_after": 2},
]

_LAST: dict[str, Any] = {"chunks": _TEXT, "status": 503}


def probe() -> dict[str, int]:
    """Threads, OS threads, open descriptors, RSS (KB) and traced Python memory (bytes)."""
    status = Path("/proc/self/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return {
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kb": rss,
        "traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0,
    }


def _stop_after(n: int) -> Any:
    seen = [0]

    def stop(chunk: Any) -> bool:
        seen[0] += 1
        return seen[0] > n

    return ops.take_until(stop)


def _cancel_sync(llm: rxllm.LLM, rng: random.Random) -> None:
    if rng.random() < 0.5:
        rxllm.collect(llm.stream("hi").pipe(_stop_after(rng.randint(0, 20))), timeout=10)
        return
    subscription = llm.stream("hi").subscribe(on_next=lambda c: None, on_error=lambda e: None)
    time.sleep(rng.uniform(0, 0.04))
    subscription.dispose()


async def _cancel_async(llm: rxllm.LLM, rng: random.Random) -> None:
    if rng.random() < 0.5:
        await rxllm.acollect(llm.stream("hi").pipe(_stop_after(rng.randint(0, 20))))
        return
    subscription = llm.stream("hi").subscribe(on_next=lambda c: None, on_error=lambda e: None)
    await asyncio.sleep(rng.uniform(0, 0.04))
    subscription.dispose()


def _fail_sync(llm: rxllm.LLM, rng: random.Random) -> str:
    try:
        rxllm.collect(llm.stream("hi"), timeout=10)
    except rxllm.LLMError as error:
        return type(error).__name__
    return "completed"


async def _fail_async(llm: rxllm.LLM, rng: random.Random) -> str:
    try:
        await asyncio.wait_for(rxllm.acollect(llm.stream("hi")), 10)
    except rxllm.LLMError as error:
        return type(error).__name__
    return "completed"


def _phase(
    pool: ThreadPoolExecutor,
    llms: dict[str, rxllm.LLM],
    count: int,
    sync_fn: Any,
    async_fn: Any,
    rng: random.Random,
) -> list[Any]:
    """`count` streams: half on the worker threads, half in asyncio batches."""
    picks = [rng.choice(PROTOCOLS) for _ in range(count)]
    half = count // 2
    seeds = [rng.random() for _ in range(count)]
    futures = [
        pool.submit(sync_fn, llms[p], random.Random(s))
        for p, s in zip(picks[:half], seeds[:half], strict=True)
    ]
    results: list[Any] = []

    async def batch(items: list[tuple[str, float]]) -> list[Any]:
        return await asyncio.gather(
            *(async_fn(llms[p], random.Random(s)) for p, s in items), return_exceptions=True
        )

    rest = list(zip(picks[half:], seeds[half:], strict=True))
    for start in range(0, len(rest), _BATCH):
        results += asyncio.run(batch(rest[start : start + _BATCH]))
    for future in futures:
        try:
            results.append(future.result(timeout=60))
        except Exception as exc:
            results.append(exc)
    return results


def _settle(baseline: dict[str, int]) -> dict[str, int]:
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        now = probe()
        if (
            now["threads"] <= baseline["threads"] and now["fds"] <= baseline["fds"]
        ) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def run(*, small: bool) -> Section:
    """Cancel `n` streams at random points and fail `n` others (n = 100 small, 1000 full)."""
    n = 100 if small else 1000
    rng = random.Random(17)
    section = Section("leaks", "Leaks")
    with RemoteServer() as server, ThreadPoolExecutor(_WORKERS) as pool:
        # no stall_timeout where nothing should stall (a busy machine is slow, not stuck)
        steady = {p: model_for(p, server.url) for p in PROTOCOLS}
        llms = {p: model_for(p, server.url, stall_timeout=STALL) for p in PROTOCOLS}
        # warm-up: every worker thread, both kinds of stream, every protocol
        server.push(_CANCEL_SCRIPT)
        _phase(pool, steady, 60, _cancel_sync, _cancel_async, rng)
        server.push(*_FAULTS, *_FAULTS, _LAST)
        _phase(pool, llms, 60, _fail_sync, _fail_async, rng)
        server.requests()
        gc.collect()
        tracemalloc.start(int(os.environ.get("RELIABILITY_TRACE", "1")))
        baseline = probe()
        start = time.perf_counter()

        server.push(_CANCEL_SCRIPT)
        cancelled = _phase(pool, steady, n, _cancel_sync, _cancel_async, rng)
        after_cancel = server.requests()
        # a cancelled stream's request can reach the server late (the sync SDK sends what
        # it started): a few spare faults, and the last one (reused) fails too
        server.push(*(rng.choice(_FAULTS) for _ in range(n + 20)), _LAST)
        failed = _phase(pool, llms, n, _fail_sync, _fail_async, rng)
        after_fail = server.requests()
        seconds = time.perf_counter() - start
        # what the harness itself keeps is not measured: only summaries from here on
        raised = [repr(r) for r in cancelled if isinstance(r, BaseException)]
        kinds: dict[str, int] = {}
        for result in failed:
            name = result if isinstance(result, str) else repr(result)
            kinds[name] = kinds.get(name, 0) + 1
        not_closed = sum(1 for left, finished, _ in after_cancel if not left)
        hanging = sum(1 for left, finished, _ in after_fail if not (left or finished))
        reached = len(after_cancel)
        del cancelled, failed, after_cancel, after_fail
        end = _settle(baseline)
        peak = tracemalloc.get_traced_memory()[1]
        if os.environ.get("RELIABILITY_TRACE"):
            for stat in tracemalloc.take_snapshot().statistics("traceback")[:8]:
                print(stat)
                print("\n".join(stat.traceback.format()[-12:]))
        tracemalloc.stop()

    section.check(not raised, lambda: f"cancelled streams raised: {raised[:3]}")
    section.check(
        not_closed == 0,
        f"{not_closed} of {reached} cancelled requests were not closed by the client",
    )
    section.check(
        all(name.isidentifier() and name != "completed" for name in kinds),
        lambda: f"failed streams that did not end in an LLMError: {kinds}",
    )
    section.check(hanging == 0, f"{hanging} failed requests still open on the server")

    growth = {key: end[key] - baseline[key] for key in baseline}
    section.check(growth["threads"] <= 0, f"{growth['threads']} more threads than before")
    section.check(growth["os_threads"] <= 0, f"{growth['os_threads']} more OS threads")
    section.check(growth["fds"] <= 0, f"{growth['fds']} more open file descriptors")
    section.check(
        growth["traced"] <= TRACED_BOUND_KB * 1024,
        f"tracemalloc: {growth['traced'] / 1024:.0f} KB more (bound {TRACED_BOUND_KB} KB)",
    )
    section.check(
        growth["rss_kb"] <= RSS_BOUND_MB * 1024,
        f"RSS: {growth['rss_kb'] / 1024:.1f} MB more (bound {RSS_BOUND_MB} MB)",
    )
    section.figures.update(growth=growth, baseline=baseline, streams=2 * n)
    section.text += [
        f"{n} streams cancelled at random points and {n} failed streams, after a warm-up "
        "of 120. **Cancelled**: a 3000-chunk stream (one chunk every 2 ms) stopped by "
        "`take_until` after 0-20 chunks, or disposed after 0-40 ms (before the headers, "
        "before the first chunk, or mid-stream). **Failed**: HTTP 400/401/404/429/500/503/"
        "529, a drop after 0 or 2 chunks, a malformed event, a server or overloaded error "
        f"event, a hang (`stall_timeout={STALL}`). Half of each from plain code on "
        f"{_WORKERS} worker threads, half from asyncio; protocols at random. "
        f"{2 * n} streams in {seconds:.1f} s.",
        "",
        "| measure | before | after | growth | bound |",
        "| --- | --- | --- | --- | --- |",
        f"| threads (`threading`) | {baseline['threads']} | {end['threads']} | "
        f"{growth['threads']:+d} | 0 |",
        f"| OS threads (`/proc/self/task`) | {baseline['os_threads']} | {end['os_threads']} | "
        f"{growth['os_threads']:+d} | 0 |",
        f"| open descriptors (`/proc/self/fd`) | {baseline['fds']} | {end['fds']} | "
        f"{growth['fds']:+d} | 0 |",
        f"| Python memory still allocated (tracemalloc) | 0 KB (started here) | "
        f"{end['traced'] / 1024:.0f} KB | {growth['traced'] / 1024:+.0f} KB "
        f"({growth['traced'] / (2 * n):.0f} B per stream; peak {peak / 1024:.0f} KB) | "
        f"{TRACED_BOUND_KB} KB |",
        f"| RSS | {baseline['rss_kb'] / 1024:.1f} MB | {end['rss_kb'] / 1024:.1f} MB | "
        f"{growth['rss_kb'] / 1024:+.1f} MB | {RSS_BOUND_MB} MB |",
        "",
        f"Every cancelled request was closed by the client ({reached} reached the "
        f"server; a dispose before the request was sent sends none). Failed streams ended "
        f"as: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))} (more stall "
        "timeouts than scripted hangs: on this busy machine, with 33 streams at once against "
        f"a server process sharing 2 cores, some faults take longer than {STALL} s to "
        "arrive).",
        "",
    ]
    return section
