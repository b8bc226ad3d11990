"""5c. Where a paced chunk's CPU goes, without the network: why 5b's Anthropic target is out
of reach for any reader that leaves the HTTP body to httpx2/httpcore2/h11.

A paced server flushes every SSE event on its own, so every event is one HTTP chunk of the
chunked transfer encoding, and h11/httpcore2/httpx2 handle each one separately however many
arrive per socket read. This section feeds the benchmark server's exact bytes (head, one
HTTP chunk per event) to the real `AsyncAnthropic` -> httpx2 -> httpcore2 -> h11 stack
through httpcore2's `AsyncMockBackend` (no socket, no event-loop wake-ups) and measures CPU
per chunk of three readers: the bare SDK, rxllm, and the floor (the SDK's streaming
response read with `aiter_raw()` and thrown away), at 1 and at 20 HTTP chunks per read.

Plugging a network backend into an httpx2 transport needs the transport's private `_pool`
attribute: acceptable in a benchmark, never in the library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anthropic
import httpcore2
import httpx2

import rxllm
from benchmarks import bodies
from benchmarks.clients import MAX_TOKENS, MESSAGES, rxllm_pipeline
from benchmarks.config import Config
from benchmarks.results import Row, Sample
from benchmarks.server import _HEAD, _chunked  # pyright: ignore[reportPrivateUsage]

__all__ = ["stack"]

Emit = Callable[[Row], None]
_BATCHES = (1, 20)
_KINDS = ("sdk", "rxllm", "floor")


def _reads(n: int, batch: int) -> list[bytes]:
    """What the socket would return: the head, then `batch` HTTP chunks per read."""
    frames = [_chunked(tick) for tick in bodies.ticks("anthropic", n)]
    frames[-1] += b"0\r\n\r\n"
    return [_HEAD] + [b"".join(frames[i : i + batch]) for i in range(0, len(frames), batch)]


def _client(reads: list[bytes]) -> anthropic.AsyncAnthropic:
    transport = httpx2.AsyncHTTPTransport()
    transport._pool = httpcore2.AsyncConnectionPool(  # type: ignore[attr-defined]
        network_backend=httpcore2.AsyncMockBackend(reads)
    )
    http = anthropic.DefaultAsyncHttpxClient(transport=transport)
    return anthropic.AsyncAnthropic(
        base_url="http://127.0.0.1:9", api_key="bench", max_retries=0, http_client=http
    )


async def _read(kind: str, client: anthropic.AsyncAnthropic) -> str:
    if kind == "rxllm":
        llm = rxllm.anthropic("bench", async_client=client)
        return (await rxllm.acollect(rxllm_pipeline(llm))).text
    if kind == "sdk":
        parts: list[str] = []
        events = await client.messages.create(
            model="bench", messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
        )
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
        return "".join(parts)
    async with client.messages.with_streaming_response.create(
        model="bench", messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
    ) as response:
        async for _piece in response.http_response.aiter_raw():
            pass
    return ""


async def _cpu_per_chunk(kind: str, reads: list[bytes], n: int, reps: int) -> list[float]:
    expected = bodies.text(n)
    samples: list[float] = []
    for _ in range(reps + 1):  # the first is a warm-up
        client = _client(reads)
        started = time.process_time()
        text = await _read(kind, client)
        elapsed = time.process_time() - started
        await client.close()
        if kind != "floor" and text != expected:
            raise RuntimeError(f"5c {kind}: read the wrong text")
        samples.append(elapsed / n * 1e6)
    return samples[1:]


def stack(config: Config, emit: Emit) -> None:
    """5c. µs of CPU per paced chunk in the HTTP stack and above it, per reader."""
    n = 20_000 if config.name == "full" else 5_000

    async def run() -> dict[tuple[str, int], list[float]]:
        found: dict[tuple[str, int], list[float]] = {}
        for batch in _BATCHES:
            reads = _reads(n, batch)
            for kind in _KINDS:
                found[kind, batch] = await _cpu_per_chunk(kind, reads, n, config.reps)
        return found

    found = asyncio.run(run())
    for batch in _BATCHES:
        samples = {kind: Sample.of(found[kind, batch], "µs CPU/chunk") for kind in _KINDS}
        emit(
            Row(
                "5c paced chunk cost",
                f"anthropic async, one HTTP chunk per event, {batch} HTTP chunk(s) per read "
                "(no network): CPU per chunk",
                {"sdk": samples["sdk"], "rxllm": samples["rxllm"], "floor": samples["floor"]},
                Sample.of(
                    [
                        (rx - floor) / (sdk - floor) if sdk > floor else float("nan")
                        for rx, sdk, floor in zip(
                            found["rxllm", batch],
                            found["sdk", batch],
                            found["floor", batch],
                            strict=True,
                        )
                    ]
                ),
                "rxllm's cost above the floor / the SDK's",
                extra={"batch": batch, "chunks": n},
            )
        )


def budget_note(sdk_streams: int, target: float) -> str:
    """What `target` times the SDK's paced streams leave per chunk, in words."""
    per_chunk = 1e6 / (target * sdk_streams * 100)
    return (
        f"{target:g}x the SDK's {sdk_streams} streams is {target * sdk_streams * 100:,.0f} "
        f"chunks/s on one core: {per_chunk:.1f} µs of CPU per chunk for everything"
    )
