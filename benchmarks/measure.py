"""The measurements that run in the harness's own process (the client side).

Each function takes the server's URL and the run's `Config`, reports every `Row` through
`emit` as soon as it is known, and returns nothing. Repetitions of the variants being
compared are interleaved (A, B, A, B, ...), so a drift of the machine hits both, and each
ratio is computed per repetition, then summarized as median [min-max].
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import reactivex
from reactivex import operators as rx_ops
from reactivex.subject import Subject

import rxllm
from benchmarks import bodies
from benchmarks.bodies import Protocol
from benchmarks.clients import (
    AsyncClients,
    SyncClients,
    has_aiohttp,
    model_name,
    rxllm_pipeline,
    sdk_stream,
)
from benchmarks.config import Config
from benchmarks.results import Row, Sample
from rxllm import ops

__all__ = [
    "accumulate_scaling",
    "cancellation",
    "tee",
    "throughput",
    "time_to_first_chunk",
]

Emit = Callable[[Row], None]
PROTOCOLS: tuple[Protocol, ...] = ("openai", "anthropic", "openai-responses")
_TARGET_SDK = {"openai": 4.0, "anthropic": 1.5, "openai-responses": 4.0}
_HELPERS = {
    "openai": "chat.completions.stream()",
    "anthropic": "messages.stream()",
    "openai-responses": "responses.stream()",
}
_TARGET_RAW = 0.55
_WARM = 500


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _check(text: str, n: int, what: str) -> None:
    if text != bodies.text(n):
        raise RuntimeError(f"{what}: the text read does not match the {n}-chunk stream sent")


def _timed(fn: Callable[[], str], n: int, what: str) -> float:
    gc.collect()
    start = time.perf_counter()
    text = fn()
    elapsed = time.perf_counter() - start
    _check(text, n, what)
    return elapsed


async def _atimed(fn: Callable[[], Awaitable[str]], n: int, what: str) -> float:
    gc.collect()
    start = time.perf_counter()
    text = await fn()
    elapsed = time.perf_counter() - start
    _check(text, n, what)
    return elapsed


def _per_chunk_us(times: list[float], n: int) -> Sample:
    return Sample.of([t / n * 1e6 for t in times], "µs/chunk")


def _ratios(numerators: list[float], denominators: list[float]) -> Sample:
    return Sample.of([a / b for a, b in zip(numerators, denominators, strict=True)])


# --- 1. throughput ---------------------------------------------------------------------------


def _throughput_rows(
    emit: Emit, protocol: Protocol, mode: str, n: int, times: dict[str, list[float]]
) -> None:
    section = "1 throughput"
    label = f"{protocol} {mode} {_k(n)} chunks"
    values: dict[str, Sample | str] = {
        kind: _per_chunk_us(ts, n) for kind, ts in times.items() if kind != "helper"
    }
    sdk_target = _TARGET_SDK[protocol]
    ratio = _ratios(times["sdk"], times["rxllm"])
    emit(
        Row(
            section,
            f"{label}: rxllm vs bare SDK",
            values,
            ratio,
            "throughput ratio",
            f">= {sdk_target}x",
            ratio.median >= sdk_target,
            extra={"protocol": protocol, "mode": mode, "n": n, "times": times},
        )
    )
    raw_ratio = _ratios(times["raw"], times["rxllm"])
    emit(
        Row(
            section,
            f"{label}: rxllm vs raw wire (httpx2 lines + json.loads)",
            {"raw": values["raw"], "rxllm": values["rxllm"]},
            raw_ratio,
            "throughput ratio",
            f">= {_TARGET_RAW}x",
            raw_ratio.median >= _TARGET_RAW,
        )
    )
    if "helper" in times:
        helper = _HELPERS[protocol]
        emit(
            Row(
                section,
                f"{label}: rxllm vs the SDK's {helper} helper (reference)",
                {"helper": _per_chunk_us(times["helper"], n), "rxllm": values["rxllm"]},
                _ratios(times["helper"], times["rxllm"]),
                "throughput ratio",
            )
        )


def throughput(url: str, config: Config, emit: Emit) -> None:
    """1. `collect(llm.stream(p).pipe(accumulate(), take_until(never)))` vs bare SDK vs wire."""
    clients = SyncClients(url)
    try:
        for n in config.sizes:
            for protocol in PROTOCOLS:
                kinds = ["raw", "sdk", "rxllm"]
                if n in config.helper_sizes:
                    kinds.append("helper")
                readers = {kind: clients.reader(kind, protocol) for kind in kinds}
                for read in readers.values():
                    read(model_name(_WARM))
                times: dict[str, list[float]] = {kind: [] for kind in kinds}
                model = model_name(n)
                for _ in range(config.reps):
                    for kind, read in readers.items():
                        times[kind].append(
                            _timed(lambda r=read, m=model: r(m), n, f"{protocol} {kind} sync")
                        )
                _throughput_rows(emit, protocol, "sync", n, times)
                times = asyncio.run(_throughput_async(url, config, protocol, n))
                default = {kind: ts for kind, ts in times.items() if "@" not in kind}
                _throughput_rows(emit, protocol, "async", n, default)
                if "rxllm@aiohttp" in times:
                    _throughput_aiohttp_rows(emit, protocol, n, times)
    finally:
        clients.close()


async def _throughput_async(
    url: str, config: Config, protocol: Protocol, n: int
) -> dict[str, list[float]]:
    """Each asyncio reader's times; on the SDKs' aiohttp transport too (`kind@aiohttp`)
    when their aiohttp extra is installed."""
    transports = [AsyncClients(url)]
    if has_aiohttp():
        transports.append(AsyncClients(url, transport="aiohttp"))
    try:
        readers: dict[str, Callable[[str], Awaitable[str]]] = {}
        for clients in transports:
            suffix = "@aiohttp" if clients.transport == "aiohttp" else ""
            for kind in ("raw", "sdk", "rxllm"):
                readers[kind + suffix] = clients.reader(kind, protocol)
        for read in readers.values():
            await read(model_name(_WARM))
        times: dict[str, list[float]] = {kind: [] for kind in readers}
        model = model_name(n)
        for _ in range(config.reps):
            for kind, read in readers.items():
                times[kind].append(
                    await _atimed(lambda r=read: r(model), n, f"{protocol} {kind} async")
                )
        return times
    finally:
        for clients in transports:
            await clients.close()


def _throughput_aiohttp_rows(
    emit: Emit, protocol: Protocol, n: int, times: dict[str, list[float]]
) -> None:
    """rxllm on the SDKs' aiohttp transport against the user's baseline (the bare SDK on
    its default transport) and against the raw wire on aiohttp (issue 5's targets)."""
    section = "1 throughput"
    label = f"{protocol} async on aiohttp {_k(n)} chunks"
    values = {kind: _per_chunk_us(ts, n) for kind, ts in times.items()}
    sdk_target = _TARGET_SDK[protocol]
    ratio = _ratios(times["sdk"], times["rxllm@aiohttp"])
    emit(
        Row(
            section,
            f"{label}: rxllm on aiohttp vs bare SDK (default transport)",
            {kind: values[kind] for kind in ("sdk", "sdk@aiohttp", "rxllm@aiohttp")},
            ratio,
            "throughput ratio",
            f">= {sdk_target}x",
            ratio.median >= sdk_target,
            extra={"protocol": protocol, "mode": "async aiohttp", "n": n},
        )
    )
    emit(
        Row(
            section,
            f"{label}: rxllm vs bare SDK, both on aiohttp (reference)",
            {"sdk@aiohttp": values["sdk@aiohttp"], "rxllm@aiohttp": values["rxllm@aiohttp"]},
            _ratios(times["sdk@aiohttp"], times["rxllm@aiohttp"]),
            "throughput ratio",
        )
    )
    raw_ratio = _ratios(times["raw@aiohttp"], times["rxllm@aiohttp"])
    emit(
        Row(
            section,
            f"{label}: rxllm vs raw wire (aiohttp lines + json.loads)",
            {"raw@aiohttp": values["raw@aiohttp"], "rxllm@aiohttp": values["rxllm@aiohttp"]},
            raw_ratio,
            "throughput ratio",
            f">= {_TARGET_RAW}x",
            raw_ratio.median >= _TARGET_RAW,
        )
    )


# --- 2. time to first chunk ------------------------------------------------------------------

_TTFC_CHUNKS = 20


def _first_sync(clients: SyncClients, kind: str, protocol: Protocol, model: str) -> float:
    start = time.perf_counter()
    first: float | None = None
    if kind == "rxllm":
        done = threading.Event()
        failure: list[Exception] = []

        def on_next(snapshot: Any) -> None:
            nonlocal first
            if first is None and snapshot.delta.content:
                first = time.perf_counter()

        def on_error(error: Exception) -> None:
            failure.append(error)
            done.set()

        rxllm_pipeline(clients.llm(protocol, model)).subscribe(on_next, on_error, done.set)
        if not done.wait(30) or failure:
            raise RuntimeError(f"rxllm stream failed: {failure}")
    elif protocol == "openai":
        for chunk in sdk_stream(clients, "openai", model):
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
    elif protocol == "openai-responses":
        for event in sdk_stream(clients, protocol, model):
            if first is None and event.type == "response.output_text.delta":
                first = time.perf_counter()
    else:
        for event in sdk_stream(clients, "anthropic", model):
            if first is None and event.type == "content_block_delta":
                first = time.perf_counter()
    assert first is not None
    return first - start


async def _first_async(clients: AsyncClients, kind: str, protocol: Protocol, model: str) -> float:
    start = time.perf_counter()
    first: float | None = None
    if kind == "rxllm":
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_next(snapshot: Any) -> None:
            nonlocal first
            if first is None and snapshot.delta.content:
                first = time.perf_counter()

        def on_error(error: Exception) -> None:
            if not done.done():
                done.set_exception(error)

        def on_completed() -> None:
            if not done.done():
                done.set_result(None)

        rxllm_pipeline(clients.llm(protocol, model)).subscribe(on_next, on_error, on_completed)
        await asyncio.wait_for(done, 30)
    elif protocol == "openai":
        stream = await sdk_stream(clients, "openai", model)
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
    elif protocol == "openai-responses":
        events = await sdk_stream(clients, protocol, model)
        async for event in events:
            if first is None and event.type == "response.output_text.delta":
                first = time.perf_counter()
    else:
        events = await sdk_stream(clients, "anthropic", model)
        async for event in events:
            if first is None and event.type == "content_block_delta":
                first = time.perf_counter()
    assert first is not None
    return first - start


def _server_stats(url: str) -> dict[str, Any]:
    """The server's counters since the previous call (this call's own connection excluded)."""
    stats: dict[str, Any] = httpx2.get(f"{url}/_stats", timeout=10.0).json()
    stats["connections"] -= 1
    return stats


_CONNECTION_PROBE = 10


def _ttfc_row(
    emit: Emit,
    protocol: Protocol,
    mode: str,
    times: dict[str, list[float]],
    connections: dict[str, float],
) -> None:
    sdk = Sample.of([t * 1000 for t in times["sdk"]], "ms")
    rx = Sample.of([t * 1000 for t in times["rxllm"]], "ms")
    difference = rx.median - sdk.median
    reuse = ", ".join(f"{kind} {per_call:.1f}" for kind, per_call in connections.items())
    values: dict[str, Sample | str] = {"sdk": sdk, "rxllm": rx}
    if "sdk@aiohttp" in times:  # the bare SDK on aiohttp too, for reference
        values["sdk@aiohttp"] = Sample.of([t * 1000 for t in times["sdk@aiohttp"]], "ms")
    values["new connections per call"] = reuse
    emit(
        Row(
            "2 first chunk",
            f"{protocol} {mode}: time to first text chunk",
            values,
            f"{difference:+.3f} ms",
            "rxllm - SDK (medians)",
            "within 1 ms",
            difference <= 1.0,
        )
    )


def time_to_first_chunk(url: str, config: Config, emit: Emit) -> None:
    """2. Time from the call to the first text chunk, rxllm vs bare SDK (warm connections)."""
    model = model_name(_TTFC_CHUNKS)
    clients = SyncClients(url)
    try:
        for protocol in PROTOCOLS:
            times: dict[str, list[float]] = {"sdk": [], "rxllm": []}
            for kind in times:
                _first_sync(clients, kind, protocol, model)
            for _ in range(config.ttfc_reps):
                for kind, values in times.items():
                    values.append(_first_sync(clients, kind, protocol, model))
            # Whether each reader gives its connection back to the pool (a new connection
            # per call costs a TCP handshake here, and a TLS one against a real API).
            connections = {}
            for kind in times:
                _server_stats(url)
                for _ in range(_CONNECTION_PROBE):
                    _first_sync(clients, kind, protocol, model)
                connections[kind] = _server_stats(url)["connections"] / _CONNECTION_PROBE
            _ttfc_row(emit, protocol, "sync", times, connections)
    finally:
        clients.close()

    async def run_async(
        protocol: Protocol, transport: str
    ) -> tuple[dict[str, list[float]], dict[str, float]]:
        clients = AsyncClients(url, transport=transport)
        try:
            times: dict[str, list[float]] = {"sdk": [], "rxllm": []}
            if transport == "aiohttp":  # rxllm on aiohttp against the user's baseline
                baseline = AsyncClients(url)
                readers = {"sdk": baseline, "rxllm": clients, "sdk@aiohttp": clients}
                times["sdk@aiohttp"] = []
            else:
                baseline = clients
                readers = {"sdk": clients, "rxllm": clients}
            for kind, on in readers.items():
                await _first_async(on, kind.partition("@")[0], protocol, model)
            for _ in range(config.ttfc_reps):
                for kind, values in times.items():
                    values.append(
                        await _first_async(readers[kind], kind.partition("@")[0], protocol, model)
                    )
            connections = {}
            for kind in times:
                _server_stats(url)  # blocking, but nothing else runs on this loop
                for _ in range(_CONNECTION_PROBE):
                    await _first_async(readers[kind], kind.partition("@")[0], protocol, model)
                connections[kind] = _server_stats(url)["connections"] / _CONNECTION_PROBE
            return times, connections
        finally:
            await clients.close()
            if baseline is not clients:
                await baseline.close()

    for protocol in PROTOCOLS:
        _ttfc_row(emit, protocol, "async", *asyncio.run(run_async(protocol, "httpx")))
    if has_aiohttp():
        for protocol in PROTOCOLS:
            _ttfc_row(
                emit, protocol, "async on aiohttp", *asyncio.run(run_async(protocol, "aiohttp"))
            )


# --- 3. cancellation -------------------------------------------------------------------------

_CANCEL_AT = 30  # the stop comes with (or after) the 30th text chunk
_CANCEL_CHUNKS = 2000
_TEXT_EVENTS = ("content_block_delta", "response.output_text.delta")
"""The bare SDK's text events of Anthropic and of the Responses API (their `.type`)."""


def _recording(url: str, tag: str) -> dict[str, Any]:
    """The server's recording of stream `tag`, once it has seen the client leave."""
    deadline = time.monotonic() + 3.0
    while True:
        record = httpx2.get(f"{url}/_record", params={"tag": tag}, timeout=5.0).json()
        if (record and record["closed_at"] is not None) or time.monotonic() > deadline:
            return record or {"closed_at": None, "writes": []}
        time.sleep(0.005)


def _cancel_result(url: str, tag: str, stopped_at: float | None) -> tuple[float, int]:
    if stopped_at is None:
        raise RuntimeError(f"stream {tag} was never stopped")
    record = _recording(url, tag)
    closed = record["closed_at"]
    latency = (closed - stopped_at) * 1000 if closed is not None else float("inf")
    after = sum(chunks for at, chunks in record["writes"] if at > stopped_at)
    return latency, after


class _Stopper:
    """When and how a stream gets stopped: at its K-th text chunk, or by a Stop button."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.count = 0
        self.stopped_at: float | None = None
        self.button: Subject[Any] = Subject()

    def predicate(self, snapshot: Any) -> bool:
        if snapshot.delta.content:
            self.count += 1
        if self.count >= _CANCEL_AT:
            self.stopped_at = time.monotonic()
            return True
        return False

    def button_delay(self) -> float:
        # An arbitrary moment between two chunks, some chunks into the stream.
        return (_CANCEL_AT - 1 + random.random()) * self.every

    def press(self) -> None:
        self.stopped_at = time.monotonic()
        self.button.on_next(True)


def _cancel_sync(
    url: str, clients: SyncClients, kind: str, protocol: Protocol, every: float, tag: str
) -> tuple[float, int]:
    model = model_name(_CANCEL_CHUNKS, every=every, tag=tag)
    stopper = _Stopper(every)
    if kind == "rxllm":
        source = clients.llm(protocol, model).stream("bench")
        rxllm.collect(source.pipe(ops.accumulate(), ops.take_until(stopper.predicate)), timeout=30)
    elif kind == "button":
        timer: list[threading.Timer] = []

        def arm(_: Any) -> None:
            if not timer:
                timer.append(threading.Timer(stopper.button_delay(), stopper.press))
                timer[0].start()

        source = clients.llm(protocol, model).stream("bench")
        rxllm.collect(
            source.pipe(ops.accumulate(), rx_ops.do_action(arm), ops.take_until(stopper.button)),
            timeout=30,
        )
    elif protocol == "openai":
        stream = sdk_stream(clients, "openai", model)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                stopper.count += 1
            if stopper.count >= _CANCEL_AT:
                stopper.stopped_at = time.monotonic()
                stream.close()
                break
    else:
        events = sdk_stream(clients, protocol, model)
        for event in events:
            if event.type in _TEXT_EVENTS:
                stopper.count += 1
            if stopper.count >= _CANCEL_AT:
                stopper.stopped_at = time.monotonic()
                events.close()
                break
    return _cancel_result(url, tag, stopper.stopped_at)


async def _cancel_async(
    url: str, clients: AsyncClients, kind: str, protocol: Protocol, every: float, tag: str
) -> tuple[float, int]:
    model = model_name(_CANCEL_CHUNKS, every=every, tag=tag)
    stopper = _Stopper(every)
    if kind == "rxllm":
        source = clients.llm(protocol, model).stream("bench")
        await rxllm.acollect(
            source.pipe(ops.accumulate(), ops.take_until(stopper.predicate)), timeout=30
        )
    elif kind == "button":
        loop = asyncio.get_running_loop()
        armed: list[asyncio.TimerHandle] = []

        def arm(_: Any) -> None:
            if not armed:
                armed.append(loop.call_later(stopper.button_delay(), stopper.press))

        source = clients.llm(protocol, model).stream("bench")
        await rxllm.acollect(
            source.pipe(ops.accumulate(), rx_ops.do_action(arm), ops.take_until(stopper.button)),
            timeout=30,
        )
    elif protocol == "openai":
        stream = await sdk_stream(clients, "openai", model)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                stopper.count += 1
            if stopper.count >= _CANCEL_AT:
                stopper.stopped_at = time.monotonic()
                await stream.close()
                break
    else:
        events = await sdk_stream(clients, protocol, model)
        async for event in events:
            if event.type in _TEXT_EVENTS:
                stopper.count += 1
            if stopper.count >= _CANCEL_AT:
                stopper.stopped_at = time.monotonic()
                await events.close()
                break
    # The recording is fetched with a blocking call: nothing else runs on this loop.
    return _cancel_result(url, tag, stopper.stopped_at)


_CANCEL_KINDS = {
    "rxllm": "take_until(predicate) at chunk 30",
    "button": "take_until(Stop button) between chunks",
    "sdk": "bare SDK close() at chunk 30",
}


def _cancel_rows(
    emit: Emit,
    protocol: Protocol,
    mode: str,
    every: float,
    results: dict[str, list[tuple[float, int]]],
) -> None:
    values: dict[str, Sample | str] = {}
    worst: dict[str, tuple[float, int]] = {}
    for kind, pairs in results.items():
        latency = Sample.of([p[0] for p in pairs], "ms")
        counts = sorted(p[1] for p in pairs)
        spread = f" [{counts[0]}-{counts[-1]}]" if counts[0] != counts[-1] else ""
        after = f"{counts[len(counts) // 2]}{spread}"
        values[_CANCEL_KINDS[kind]] = f"{latency}, {after} chunks after"
        worst[kind] = (latency.high, counts[-1])
    # In-stream stops must leave nothing after them; a Stop button pressed at an arbitrary
    # moment can meet a write already under way (chance ~ latency / cadence), so only its
    # latency is judged.
    target = "close seen <= 5 ms" + (", 0 events after an in-stream stop" if every >= 0.005 else "")
    passed = worst["rxllm"][0] <= 5.0 and worst["button"][0] <= 5.0
    if every >= 0.005:
        passed = passed and worst["rxllm"][1] == 0
    emit(
        Row(
            "3 cancellation",
            f"{protocol} {mode}, one chunk every {every * 1000:g} ms: stop -> server sees the "
            "socket close; chunks written after the stop",
            values,
            f"worst: {worst['rxllm'][0]:.2f} ms / {worst['rxllm'][1]} (predicate), "
            f"{worst['button'][0]:.2f} ms / {worst['button'][1]} (button)",
            target=target,
            passed=passed,
        )
    )


def cancellation(url: str, config: Config, emit: Emit) -> None:
    """3. From the stop to the server seeing the socket close; events written after it."""
    run = f"{time.time_ns():x}"
    counter = iter(range(1_000_000))

    def tag() -> str:
        return f"{run}-{next(counter)}"

    kinds = list(_CANCEL_KINDS)
    clients = SyncClients(url)
    try:
        for every in config.cancel_cadences:
            for protocol in PROTOCOLS:
                results: dict[str, list[tuple[float, int]]] = {kind: [] for kind in kinds}
                for _ in range(config.cancel_reps):
                    for kind in kinds:
                        results[kind].append(
                            _cancel_sync(url, clients, kind, protocol, every, tag())
                        )
                _cancel_rows(emit, protocol, "sync", every, results)
    finally:
        clients.close()

    async def run_async(protocol: Protocol, every: float) -> dict[str, list[tuple[float, int]]]:
        clients = AsyncClients(url)
        try:
            results: dict[str, list[tuple[float, int]]] = {kind: [] for kind in kinds}
            for _ in range(config.cancel_reps):
                for kind in kinds:
                    results[kind].append(
                        await _cancel_async(url, clients, kind, protocol, every, tag())
                    )
            return results
        finally:
            await clients.close()

    for every in config.cancel_cadences:
        for protocol in PROTOCOLS:
            _cancel_rows(emit, protocol, "async", every, asyncio.run(run_async(protocol, every)))


# --- 4. tee ----------------------------------------------------------------------------------


def _tee_pipeline(branch: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
    return branch.pipe(ops.accumulate(), ops.take_until(reactivex.never()))


def tee(url: str, config: Config, emit: Emit) -> None:
    """4. tee(3) of one call vs one stream vs three separate calls (each: accumulate)."""
    n = config.tee_chunks
    protocol: Protocol = "openai"
    tee_fn = getattr(rxllm, "tee", None)
    if tee_fn is None:
        for mode in ("sync", "async"):
            emit(
                Row(
                    "4 tee",
                    f"{protocol} {mode} {_k(n)} chunks: tee(3) vs one stream vs three calls",
                    {"tee(3)": "n/a (tee not available)"},
                    "n/a (tee not available)",
                )
            )
        return
    model = model_name(n)
    clients = SyncClients(url)
    pool = ThreadPoolExecutor(3)
    llm = clients.llm(protocol, model)

    def one() -> str:
        return rxllm.collect(rxllm_pipeline(llm)).text

    def many(sources: list[reactivex.Observable[Any]]) -> str:
        futures = [pool.submit(lambda s=s: rxllm.collect(s).text) for s in sources]
        texts = [future.result(timeout=300) for future in futures]
        if len(set(texts)) != 1:
            raise RuntimeError("tee branches saw different texts")
        return texts[0]

    def teed() -> str:
        return many([_tee_pipeline(b) for b in tee_fn(llm.stream("bench"), 3)])

    def three() -> str:
        return many([rxllm_pipeline(llm) for _ in range(3)])

    variants = {"one stream": one, "tee(3)": teed, "3 calls": three}
    try:
        for fn in variants.values():
            fn()
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(config.reps):
            for name, fn in variants.items():
                times[name].append(_timed(fn, n, f"tee {name}"))
        _tee_rows(emit, protocol, "sync", n, times)
    finally:
        pool.shutdown()
        clients.close()

    async def run_async() -> dict[str, list[float]]:
        clients = AsyncClients(url)
        llm = clients.llm(protocol, model)

        async def many(sources: list[reactivex.Observable[Any]]) -> str:
            responses = await asyncio.gather(*(rxllm.acollect(s) for s in sources))
            texts = {r.text for r in responses}
            if len(texts) != 1:
                raise RuntimeError("tee branches saw different texts")
            return texts.pop()

        async def one() -> str:
            return (await rxllm.acollect(rxllm_pipeline(llm))).text

        async def teed() -> str:
            return await many([_tee_pipeline(b) for b in tee_fn(llm.stream("bench"), 3)])

        async def three() -> str:
            return await many([rxllm_pipeline(llm) for _ in range(3)])

        variants = {"one stream": one, "tee(3)": teed, "3 calls": three}
        try:
            for fn in variants.values():
                await fn()
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(config.reps):
                for name, fn in variants.items():
                    times[name].append(await _atimed(fn, n, f"tee {name}"))
            return times
        finally:
            await clients.close()

    _tee_rows(emit, protocol, "async", n, asyncio.run(run_async()))


def _tee_rows(
    emit: Emit, protocol: Protocol, mode: str, n: int, times: dict[str, list[float]]
) -> None:
    values: dict[str, Sample | str] = {
        name: Sample.of([t * 1000 for t in ts], "ms") for name, ts in times.items()
    }
    emit(
        Row(
            "4 tee",
            f"{protocol} {mode} {_k(n)} chunks: tee(3) time / one stream",
            values,
            _ratios(times["tee(3)"], times["one stream"]),
            "time ratio",
        )
    )
    emit(
        Row(
            "4 tee",
            f"{protocol} {mode} {_k(n)} chunks: 3 separate calls time / tee(3)",
            {},
            _ratios(times["3 calls"], times["tee(3)"]),
            "time ratio",
        )
    )


# --- 6. accumulate scaling -------------------------------------------------------------------


def accumulate_scaling(url: str, config: Config, emit: Emit) -> None:
    """6. The rxllm pipeline at 10k/100k/300k chunks: time must grow linearly."""
    sizes = config.scaling_sizes
    protocol: Protocol = "openai"
    clients = SyncClients(url)
    try:
        models = {n: model_name(n) for n in sizes}
        clients.rxllm(protocol, model_name(_WARM))
        times: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(config.scaling_reps):
            for n, model in models.items():
                times[n].append(
                    _timed(lambda m=model: clients.rxllm(protocol, m), n, f"scaling {n}")
                )
    finally:
        clients.close()
    _scaling_rows(emit, "end to end (openai sync, loopback)", sizes, times)

    # The operator alone, over chunks already in memory: no network, no provider.
    chunks = {
        n: [rxllm.Chunk(content=p, provider="openai") for p in bodies.pieces(n)] for n in sizes
    }

    def alone(n: int) -> str:
        source = reactivex.from_iterable(chunks[n])
        return rxllm.collect(source.pipe(ops.accumulate(), ops.take_until(reactivex.never()))).text

    def timed_alone(n: int) -> float:
        # Small sizes are repeated to make each timing at least 100k chunks long (less
        # noise); the time reported is per stream.
        loops = max(1, 100_000 // n)
        total = 0.0
        for _ in range(loops):
            total += _timed(lambda: alone(n), n, f"accumulate alone {n}")
        return total / loops

    for n in sizes:
        alone(n)
    alone_times: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(config.scaling_reps):
        for n in sizes:
            alone_times[n].append(timed_alone(n))
    _scaling_rows(emit, "accumulate() alone (chunks in memory)", sizes, alone_times)


def _scaling_rows(
    emit: Emit, what: str, sizes: tuple[int, ...], times: dict[int, list[float]]
) -> None:
    for base, n in itertools.pairwise(sizes):
        factor = n / base
        ratio = _ratios(times[n], times[base])
        limit = factor * 1.1
        emit(
            Row(
                "6 accumulate scaling",
                f"{what}: {_k(n)} vs {_k(base)} chunks ({factor:g}x chunks)",
                {
                    _k(base): _per_chunk_us(times[base], base),
                    _k(n): _per_chunk_us(times[n], n),
                },
                ratio,
                "time ratio",
                f"<= {limit:g}x",
                ratio.median <= limit,
                extra={
                    "sizes": sizes,
                    "times": {str(k): v for k, v in times.items()},
                    "what": what,
                },
            )
        )


def dump(rows: list[Row]) -> str:
    """The rows as JSON (for `--json`)."""

    def value(v: Sample | str | None) -> Any:
        if isinstance(v, Sample):
            return {"values": v.values, "unit": v.unit, "median": v.median}
        return v

    return json.dumps(
        [
            {
                "section": r.section,
                "name": r.name,
                "values": {k: value(v) for k, v in r.values.items()},
                "ratio": value(r.ratio),
                "target": r.target,
                "verdict": r.verdict,
                "note": r.note,
            }
            for r in rows
        ],
        indent=1,
        default=str,
    )
