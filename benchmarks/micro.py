"""The per-chunk costs behind the hot path's design, one by one, and the GC during a stream.

    python -m benchmarks.micro            # ~20 s

Prints nanoseconds per operation for the pieces docs/architecture.md names (SSE decoding
per event, building a `Chunk`, adding it to an `Accumulator`), then how many garbage
collections of each generation run while one 100k-chunk OpenAI stream is read end to end
(the reason the accumulator keeps no chunk objects: it should be none).
"""

from __future__ import annotations

import gc
import time
import timeit
from collections.abc import Callable

import rxllm
from benchmarks import bodies
from benchmarks.clients import SyncClients, model_name, rxllm_pipeline
from benchmarks.run import ServerProcess
from rxllm.accumulator import Accumulator
from rxllm.models import Chunk, text_chunk_maker
from rxllm.sse import SSEDecoder

__all__ = ["main"]


def _ns(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


def _sse(protocol: bodies.Protocol, n: int) -> float:
    body = bodies.body(protocol, n)
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    def decode() -> None:
        decoder = SSEDecoder()
        for piece in pieces:
            decoder.feed(piece)
        decoder.flush()

    return _ns(decode, 1) / n


def operations() -> list[tuple[str, float]]:
    """(what, ns per operation) for the hot path's pieces, on data in memory."""
    make = text_chunk_maker("openai")
    chunks = [make("ab", "gpt", "c1", b"{}") for _ in range(100_000)]

    def push_all() -> None:
        push = Accumulator().push
        for chunk in chunks:
            push(chunk)

    def add_all() -> None:
        add = Accumulator().add
        for chunk in chunks:
            add(chunk)

    return [
        ("SSE decoding, per OpenAI event", _sse("openai", 100_000)),
        ("SSE decoding, per Anthropic event", _sse("anthropic", 100_000)),
        (
            "Chunk(...) with pydantic validation",
            _ns(lambda: Chunk(content="ab", model="gpt", id="c1", provider="openai"), 100_000),
        ),
        (
            "Chunk.unchecked(...)",
            _ns(lambda: Chunk.unchecked("ab", model="gpt", id="c1", provider="openai"), 100_000),
        ),
        ("text_chunk_maker(...)(...)", _ns(lambda: make("ab", "gpt", "c1", b"{}"), 100_000)),
        ("Accumulator.push, per chunk", _ns(push_all, 1) / len(chunks)),
        ("Accumulator.add (push + Snapshot), per chunk", _ns(add_all, 1) / len(chunks)),
    ]


def collections(n: int = 100_000) -> tuple[dict[int, int], float, float]:
    """GC collections per generation and their seconds while one n-chunk stream is read."""
    counts = {0: 0, 1: 0, 2: 0}
    spent = [0.0, 0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            counts[info["generation"]] += 1
            spent[0] += time.perf_counter() - spent[1]

    server = ServerProcess([500, n], None)
    clients = SyncClients(server.url)
    try:
        rxllm.collect(rxllm_pipeline(clients.llm("openai", model_name(500))))
        llm = clients.llm("openai", model_name(n))
        gc.callbacks.append(callback)
        started = time.perf_counter()
        try:
            text = rxllm.collect(rxllm_pipeline(llm)).text
        finally:
            gc.callbacks.remove(callback)
        elapsed = time.perf_counter() - started
    finally:
        clients.close()
        server.close()
    if text != bodies.text(n):
        raise RuntimeError("the stream read the wrong text")
    return counts, spent[0], elapsed


def main() -> None:
    """Print the per-operation costs and the GC count of one stream."""
    for what, ns in operations():
        print(f"{ns:8.0f} ns  {what}")
    counts, in_gc, elapsed = collections()
    print(
        f"one 100k-chunk OpenAI stream (sync, the benchmark pipeline): {elapsed:.2f} s; "
        f"GC collections by generation {counts}, {in_gc * 1000:.1f} ms in the collector"
    )


if __name__ == "__main__":
    main()
