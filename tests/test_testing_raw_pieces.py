"""`Script(raw_events=[b"...", ...])`: a body written piece by piece, exactly as cut."""

from __future__ import annotations

import itertools
import json

import pytest

import rxllm
from rxllm.testing import Script, Server

_TEXT = ["naïve ", "日本語 ", "🎉"]


def _body() -> bytes:
    events = [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
        for text in _TEXT
    ]
    data = b"".join(
        b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events
    )
    return data + b"data: [DONE]\n\n"


def _cut_inside_characters(body: bytes) -> list[bytes]:
    cuts = [0] + [i + 1 for i, byte in enumerate(body) if byte >= 0xC0] + [len(body)]
    return [body[a:b] for a, b in itertools.pairwise(cuts)]


def test_pieces_are_written_as_cut_and_counted_as_chunks(server: Server) -> None:
    pieces = _cut_inside_characters(_body())
    assert any(not _decodes(piece) for piece in pieces)  # characters really are cut
    server.push(Script(raw_events=pieces, delay=0.001))
    llm = rxllm.openai("m", base_url=server.url, api_key="test")
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "".join(_TEXT)
    assert server.last.chunks_written == len(pieces)


def test_a_drop_after_a_piece_that_ends_inside_a_character(server: Server) -> None:
    body = _body()
    cut = body.index("日".encode()) + 1
    server.push(Script(raw_events=[body[:cut]], drop_after=1))
    llm = rxllm.openai("m", base_url=server.url, api_key="test", max_retries=0)
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    assert caught.value.partial is not None and caught.value.partial.text == "naïve "


def test_a_list_mixing_pieces_and_events_is_refused() -> None:
    with pytest.raises(ValueError, match="all bytes"):
        Script(raw_events=[b"data: {}\n\n", {"type": "ping"}])  # type: ignore[list-item]


def _decodes(piece: bytes) -> bool:
    try:
        piece.decode()
    except UnicodeDecodeError:
        return False
    return True
