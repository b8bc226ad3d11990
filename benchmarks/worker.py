"""Measurements that need a process of their own: many streams at once, peak memory.

Peak RSS (`VmHWM`) only ever grows, so each run is a fresh process:

    python -m benchmarks.worker '{"task": "concurrent", "url": ..., "kind": "rxllm", ...}'

prints one JSON object. Tasks:

- `concurrent`: `streams` asyncio streams of `chunks` chunks at once, as fast as possible;
- `threads`: the same on the sync path, one thread per stream;
- `many`: section 7's prompts through one of its variants (`benchmarks.many`);
- `paced`: `streams` streams the server paces at one chunk per `every` seconds; after all
  of them have started, the chunks each one receives during `window` seconds.

`kind` is a reader (`sdk`, `rxllm`, `floor`, `raw`), optionally on the SDKs' aiohttp
transport: `rxllm@aiohttp` (the default is their httpx2 transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2

from benchmarks import bodies
from benchmarks.clients import (
    AsyncClients,
    SyncClients,
    model_name,
    rxllm_pipeline,
    sdk_stream,
    sdk_streaming_response,
)
from benchmarks.server import raise_fd_limit

__all__ = ["main"]


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    return _status_mb("VmRSS:") or float("nan")


def _peak_mb() -> float:
    # VmHWM is this process's own high-water mark. `ru_maxrss` is not: on Linux it keeps
    # the parent's RSS at fork across exec, so a big harness process would show through.
    peak = _status_mb("VmHWM:")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reader_kind(kind: str) -> tuple[str, str]:
    """`"rxllm@aiohttp"` -> ("rxllm", "aiohttp"): a reader on the clients of a transport
    (the SDKs' default httpx2 when none is named)."""
    reader, _, transport = kind.partition("@")
    return reader, transport or "httpx"


async def _concurrent(args: dict[str, Any]) -> dict[str, Any]:
    url, protocol = args["url"], args["protocol"]
    kind, transport = reader_kind(args["kind"])
    streams, chunks = args["streams"], args["chunks"]
    clients = AsyncClients(url, transport=transport)
    read = clients.reader(kind, protocol)
    model = model_name(chunks)
    expected = bodies.text(chunks)
    try:
        await read(model)  # warm: imports, first connection
        base = _rss_mb()
        cpu = time.process_time()
        start = time.perf_counter()
        texts = await asyncio.wait_for(
            asyncio.gather(*(read(model) for _ in range(streams))), args.get("timeout", 600)
        )
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        await clients.close()
    bad = sum(text != expected for text in texts)
    return {
        "seconds": elapsed,
        "chunks": streams * chunks,
        "cpu_s": cpu,
        "rss_base_mb": base,
        "rss_peak_mb": _peak_mb(),
        "bad": bad,
    }


def _threads(args: dict[str, Any]) -> dict[str, Any]:
    url, kind, protocol = args["url"], args["kind"], args["protocol"]
    streams, chunks = args["streams"], args["chunks"]
    clients = SyncClients(url)
    read = clients.reader(kind, protocol)
    model = model_name(chunks)
    expected = bodies.text(chunks)
    try:
        read(model)
        base = _rss_mb()
        with ThreadPoolExecutor(streams) as pool:
            cpu = time.process_time()
            start = time.perf_counter()
            futures = [pool.submit(read, model) for _ in range(streams)]
            texts = [future.result(timeout=args.get("timeout", 600)) for future in futures]
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
    finally:
        clients.close()
    return {
        "seconds": elapsed,
        "chunks": streams * chunks,
        "cpu_s": cpu,
        "rss_base_mb": base,
        "rss_peak_mb": _peak_mb(),
        "bad": sum(text != expected for text in texts),
    }


async def _paced(args: dict[str, Any]) -> None:
    url, protocol = args["url"], args["protocol"]
    kind, transport = reader_kind(args["kind"])
    streams, every, window = args["streams"], args["every"], args["window"]
    ramp = args.get("ramp", 3.0)
    # Long enough to outlast a slow start and a late teardown; cancelled after the window.
    chunks = int((ramp + window + 10.0) / every)
    model = model_name(chunks, every=every)
    clients = AsyncClients(url, max_connections=streams + 16, transport=transport)
    counts = [0] * streams
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    subscriptions: list[Any] = []
    errors: list[BaseException] = []

    if kind == "rxllm":
        llm = clients.llm(protocol, model)

        def subscribe(i: int) -> None:
            def on_next(_: Any) -> None:
                counts[i] += 1

            subscriptions.append(
                rxllm_pipeline(llm).subscribe(on_next, errors.append, lambda: None)
            )

        for i in range(streams):
            subscribe(i)
    else:
        marker = b'"text_delta"' if protocol == "anthropic" else b'"content":'

        async def floor(i: int) -> None:
            # The reference ceiling: the SDK sends the request in its streaming-response mode
            # and the body is read through httpx2/httpcore2/h11 (or the SDK's aiohttp
            # transport) as rxllm reads it, but nothing is decoded, parsed or delivered
            # (text events are counted by one C-level scan).
            async with sdk_streaming_response(clients, protocol, model) as response:
                async for piece in response.http_response.aiter_raw():
                    counts[i] += piece.count(marker)

        async def sdk(i: int) -> None:
            if protocol == "openai":
                stream = await sdk_stream(clients, "openai", model)
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        counts[i] += 1
            else:
                events = await sdk_stream(clients, "anthropic", model)
                async for event in events:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        counts[i] += 1

        read = floor if kind == "floor" else sdk

        async def guarded(i: int) -> None:
            try:
                await read(i)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors.append(exc)

        tasks = [loop.create_task(guarded(i)) for i in range(streams)]

    def report(window_result: dict[str, Any]) -> None:
        # Printed from the measuring thread at once: tearing down hundreds of streams on a
        # saturated loop can take long, and the harness only needs this line.
        result = {
            "streams": streams,
            "nominal": 1 / every,
            **window_result,
            "errors": [repr(e)[:200] for e in errors[:3]],
            "error_count": len(errors),
            "rss_peak_mb": _peak_mb(),
        }
        print(json.dumps(result), flush=True)

    # The window is timed by a thread: a saturated loop would wake a sleeping task late.
    await loop.run_in_executor(None, _measure_window, url, counts, ramp, window, report)
    for subscription in subscriptions:
        subscription.dispose()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    await asyncio.sleep(0.1)
    await clients.close()


def _cpu_times() -> list[int] | None:
    """This process's CPU's counters from /proc/stat (when pinned to one CPU)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(cpus) != 1:
        return None
    name = f"cpu{next(iter(cpus))} "
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith(name):
                    return [int(value) for value in line.split()[1:]]
    except OSError:
        pass
    return None


def _steal(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of the window the (virtual) CPU was taken away by the host."""
    if not before or not after or len(before) < 8:
        return None
    deltas = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(deltas[:8])
    return deltas[7] / total if total else None


def _measure_window(
    url: str,
    counts: list[int],
    ramp: float,
    window: float,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """From another thread: wait for every stream to start, then count chunks for `window` s."""
    started = time.monotonic()
    while time.monotonic() - started < ramp and not all(counts):
        time.sleep(0.02)
    ramped = time.monotonic() - started
    not_started = sum(1 for count in counts if not count)
    with httpx2.Client(timeout=60.0) as control:
        control.get(f"{url}/_stats")
        before = list(counts)
        t0, cpu0, host0 = time.monotonic(), time.process_time(), _cpu_times()
        time.sleep(window)
        after = list(counts)
        t1, cpu1, host1 = time.monotonic(), time.process_time(), _cpu_times()
        server = control.get(f"{url}/_stats").json()
    span = t1 - t0
    report(
        {
            "rates": sorted((a - b) / span for a, b in zip(after, before, strict=True)),
            "ramp_s": ramped,
            "not_started": not_started,
            "client_cpu": (cpu1 - cpu0) / span,
            "steal": _steal(host0, host1),
            "server": server,
        }
    )


def main(argv: list[str] | None = None) -> None:
    args = json.loads((argv or sys.argv[1:])[0])
    cpu = args.get("cpu")
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    raise_fd_limit()
    task = args["task"]
    if task == "concurrent":
        result = asyncio.run(_concurrent(args))
    elif task == "threads":
        result = _threads(args)
    elif task == "paced":
        asyncio.run(_paced(args))  # prints its own line, as soon as it has it
        return
    elif task == "many":
        from benchmarks.many import run_variant

        result = run_variant(args)
    else:
        raise SystemExit(f"unknown task {task!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
