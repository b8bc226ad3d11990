"""Anthropic Messages streams written event by event, for loopback scripts that need
blocks `rxllm.testing.Script` does not model (server tools, pause_turn, cut tool calls)."""

from __future__ import annotations

from typing import Any

from rxllm.testing import Script


def message(
    *blocks: list[dict[str, Any]], reason: str = "end_turn", tokens: tuple[int, int] = (10, 5)
) -> Script:
    """One message of `blocks` (see `block`), its stop reason and (input, output) tokens."""
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": tokens[0], "output_tokens": 1},
        },
    }
    end = [
        {
            "type": "message_delta",
            "delta": {"stop_reason": reason},
            "usage": {"output_tokens": tokens[1]},
        },
        {"type": "message_stop"},
    ]
    return Script(raw_events=[start, *(event for block in blocks for event in block), *end])


def block(index: int, content: dict[str, Any], *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of content block `index`: its start, its `deltas`, its stop."""
    return [
        {"type": "content_block_start", "index": index, "content_block": content},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]
