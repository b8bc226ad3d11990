"""The streamed bodies the benchmark server sends: real OpenAI and Anthropic SSE, pre-encoded.

Text is split into deterministic pieces of 1-4 characters (a chunk per piece), and each
piece is encoded with `rxllm.testing`'s encoder — the same events the project's loopback
tests use, which the SDKs' own parsers and accumulators accept: for OpenAI
`data: {chat.completion.chunk}` lines, a finish chunk, a usage chunk and `data: [DONE]`;
for Anthropic `message_start`, `content_block_start`, `content_block_delta`s,
`content_block_stop`, `message_delta`, `message_stop`; for OpenAI's Responses API
(`openai-responses`) `response.created`, `response.in_progress`, the message item's
`response.output_text.delta`s, its closing events and `response.completed`.

A body is kept as "ticks": the bytes to write at each step of a paced stream. Tick 0 holds
the head events and the first chunk, the last tick ends with the tail events, so a paced
stream sends its first text at once and one chunk per tick after that.
"""

from __future__ import annotations

import random
import string
from functools import lru_cache
from typing import Literal

__all__ = ["Protocol", "body", "pieces", "text", "ticks"]

Protocol = Literal["openai", "anthropic", "openai-responses"]

_ALPHABET = string.ascii_letters + "      .,"
_REQUEST = {
    "messages": [{"role": "user", "content": "bench"}],
    "stream_options": {"include_usage": True},
}


@lru_cache(maxsize=64)
def pieces(n: int) -> tuple[str, ...]:
    """`n` text deltas of 1-4 characters, the same for every run."""
    rng = random.Random(n)
    return tuple("".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 4))) for _ in range(n))


def text(n: int) -> str:
    """The whole text of an `n`-chunk stream (what every client must end up with)."""
    return "".join(pieces(n))


@lru_cache(maxsize=64)
def ticks(protocol: Protocol, n: int) -> tuple[bytes, ...]:
    """The body of an `n`-chunk stream as `n` pieces: one chunk each, head and tail included."""
    from rxllm.testing import Script
    from rxllm.testing._encode import plan

    frames = list(
        plan(Script(list(pieces(n)), model="bench"), protocol, _REQUEST, response_id=None).frames
    )
    head: list[bytes] = []
    chunks: list[bytes] = []
    tail: list[bytes] = []
    for frame in frames:
        if frame.chunks:
            chunks.append(frame.data)
        elif chunks:
            tail.append(frame.data)
        else:
            head.append(frame.data)
    if len(chunks) != n:
        raise RuntimeError(f"the encoder made {len(chunks)} chunk frames for {n} chunks")
    chunks[0] = b"".join([*head, chunks[0]])
    chunks[-1] = b"".join([chunks[-1], *tail])
    return tuple(chunks)


@lru_cache(maxsize=64)
def body(protocol: Protocol, n: int) -> bytes:
    """The whole body of an `n`-chunk stream."""
    return b"".join(ticks(protocol, n))
