"""The benchmark server's bodies carry, in each protocol, exactly the text the readers check."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from benchmarks import bodies, clients


@pytest.mark.parametrize("protocol", get_args(bodies.Protocol))
def test_a_body_is_one_tick_per_chunk_and_reads_back_as_its_text(protocol: bodies.Protocol) -> None:
    n = 200
    ticks = bodies.ticks(protocol, n)
    assert len(ticks) == n
    parts: list[str] = []
    for line in bodies.body(protocol, n).decode().splitlines():
        clients._raw_line(protocol, line, parts)
    assert "".join(parts) == bodies.text(n)
    # the first tick already holds text: a paced stream sends its first chunk at once
    first: list[str] = []
    for line in ticks[0].decode().splitlines():
        clients._raw_line(protocol, line, first)
    assert first == [bodies.pieces(n)[0]]


def test_the_responses_body_ends_with_the_completed_response_and_its_whole_text() -> None:
    last = bodies.ticks("openai-responses", 50)[-1].decode()
    events = [json.loads(line[6:]) for line in last.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "response.completed"
    (message,) = events[-1]["response"]["output"]
    assert message["content"][0]["text"] == bodies.text(50)
