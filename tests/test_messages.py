"""Conversation messages (`rxllm.messages`): an answer and its tools' results in each
provider's format, and SDK message objects as request dicts."""

from __future__ import annotations

import pytest
from anthropic.types import Message, TextBlock
from openai.types.chat import ChatCompletionMessage

from rxllm import messages
from rxllm.models import Response, ToolCall, ToolResult

CALL = ToolCall(id="c1", name="add", arguments='{"a": 1}')
ANSWER = Response(text="Adding.", tool_calls=(CALL,), provider="scripted")
RESULTS = [
    ToolResult(call=CALL, output=3),
    ToolResult(call=CALL.model_copy(update={"id": "c2"}), error="x"),
]


def test_an_answer_in_openai_format() -> None:
    assert messages.assistant_message(ANSWER, "openai", "openai") == {
        "role": "assistant",
        "content": "Adding.",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
        ],
    }


def test_an_answer_in_anthropic_format_from_its_fields() -> None:
    assert messages.assistant_message(ANSWER, "anthropic", "openai") == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Adding."},
            {"type": "tool_use", "id": "c1", "name": "add", "input": {"a": 1}},
        ],
    }


def test_results_are_one_message_each_or_one_in_all() -> None:
    openai = messages.tool_result_messages(RESULTS, "openai")
    assert [m["tool_call_id"] for m in openai] == ["c1", "c2"]
    (anthropic,) = messages.tool_result_messages(RESULTS, "anthropic")
    assert anthropic["role"] == "user"
    assert [b["is_error"] for b in anthropic["content"]] == [False, True]
    assert messages.tool_result_messages([], "anthropic") == []


def test_message_format_by_provider_name() -> None:
    assert messages.message_format("anthropic") == "anthropic"
    assert messages.message_format("scripted") == "openai"
    with pytest.raises(ValueError, match="one of"):
        messages.message_format("nope")


def test_sdk_message_objects_become_request_dicts() -> None:
    openai = ChatCompletionMessage(role="assistant", content=None, refusal=None)
    assert messages.message_from_model(openai) == {"role": "assistant", "content": None}
    anthropic = Message(
        id="m",
        type="message",
        role="assistant",
        model="claude",
        content=[TextBlock(type="text", text="Hi", citations=None)],
        stop_reason="end_turn",
        stop_sequence=None,
        usage={"input_tokens": 1, "output_tokens": 1},  # type: ignore[arg-type]
    )
    assert messages.message_from_model(anthropic) == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Hi"}],
    }


def test_an_answer_that_says_nothing() -> None:
    assert messages.says_nothing({"role": "assistant", "content": None})
    assert not messages.says_nothing({"role": "assistant", "content": "x"})
