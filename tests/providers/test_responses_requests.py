"""What rxllm sends to the Responses API: input items from its messages (Chat's and
Anthropic's formats), tools, output caps, structured output, and the next turn's items."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response as SDKResponse
from pydantic import BaseModel

import rxllm
from rxllm.models import ToolCall, ToolResult
from rxllm.providers.responses_input import (
    response_input_items,
    responses_arguments,
    responses_input,
    responses_tool,
    tool_output_items,
)
from rxllm.request import Request


def llm(**defaults: Any) -> rxllm.LLM:
    return rxllm.openai("gpt-5-mini", api="responses", api_key="sk-test", **defaults)


def sent(**stream: Any) -> dict[str, Any]:
    """The `responses.create` keyword arguments of one `llm.stream(...)`."""
    prompt = stream.pop("prompt", None)
    request = llm().request(prompt, **stream)
    return responses_arguments(request, "gpt-5-mini")


def weather(city: str, unit: str = "C") -> str:
    """The weather in a city.

    Args:
        city: The city, e.g. Oslo.
    """
    return "sunny"


class City(BaseModel):
    """A city."""

    name: str


class TestInput:
    def test_prompt_and_system(self) -> None:
        assert sent(prompt="Hi", system="Be brief.") == {
            "model": "gpt-5-mini",
            "input": [{"role": "user", "content": "Hi"}],
            "instructions": "Be brief.",
        }

    def test_a_tool_loop_conversation_in_chats_format(self) -> None:
        messages = [
            {"role": "system", "content": "You check weather."},
            {"role": "user", "content": "Oslo and Bergen?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Bergen"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        ]
        assert sent(messages=messages)["input"] == [
            {"role": "system", "content": "You check weather."},
            {"role": "user", "content": "Oslo and Bergen?"},
            {"role": "assistant", "content": "Checking both."},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city": "Oslo"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "weather",
                "arguments": '{"city": "Bergen"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": "rain"},
        ]

    def test_a_conversation_in_anthropics_format(self) -> None:
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "zoom", "input": {"x": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                ],
            },
        ]
        assert responses_input(messages) == [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBO",
                        "detail": "auto",
                    },
                ],
            },
            {"role": "assistant", "content": "Let me look."},
            {
                "type": "function_call",
                "call_id": "toolu_1",
                "name": "zoom",
                "arguments": '{"x": 1}',
            },
            {"type": "function_call_output", "call_id": "toolu_1", "output": "a cat"},
        ]

    def test_chat_content_parts(self) -> None:
        parts = [
            "Compare",
            {"type": "text", "text": " these"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
            },
            {"type": "input_text", "text": " (as is)"},
        ]
        assert responses_input([{"role": "user", "content": parts}]) == [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Compare"},
                    {"type": "input_text", "text": " these"},
                    {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "a.pdf",
                    },
                    {"type": "input_text", "text": " (as is)"},
                ],
            },
        ]

    def test_responses_items_pass_through(self) -> None:
        items = [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        ]
        assert responses_input(items) == items

    def test_an_assistant_refusal_goes_back_as_its_text(self) -> None:
        message = {"role": "assistant", "content": None, "refusal": "I can't."}
        assert responses_input([message]) == [{"role": "assistant", "content": "I can't."}]

    @pytest.mark.parametrize(
        ("message", "match"),
        [
            (
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
                "input_audio",
            ),
            ({"role": "function", "name": "f", "content": "x"}, "role 'function'"),
            ({"role": "assistant", "content": None, "audio": {"id": "a1"}}, "audio"),
            ({"type": "nonsense"}, "no role"),
        ],
    )
    def test_what_the_api_cannot_take_is_a_value_error(
        self, message: dict[str, Any], match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            responses_input([message])


class TestParameters:
    def test_max_tokens_is_max_output_tokens(self) -> None:
        assert sent(prompt="x", max_tokens=50)["max_output_tokens"] == 50
        assert sent(prompt="x", max_completion_tokens=9)["max_output_tokens"] == 9
        assert sent(prompt="x", max_output_tokens=7)["max_output_tokens"] == 7

    def test_reasoning_effort_and_verbosity_are_translated(self) -> None:
        kwargs = sent(
            prompt="x", reasoning_effort="low", verbosity="high", reasoning={"summary": "auto"}
        )
        assert kwargs["reasoning"] == {"effort": "low", "summary": "auto"}
        assert kwargs["text"] == {"verbosity": "high"}

    def test_stall_timeout_is_the_read_timeout(self) -> None:
        assert sent(prompt="x", stall_timeout=3.0)["timeout"].read == 3.0

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"stop": ["\n"]}, "stop sequences"),
            ({"n": 2}, "one answer per call"),
            ({"logprobs": True}, "top_logprobs"),
            ({"web_search_options": {}}, "web_search"),
            ({"frobnicate": 1}, "extra_body"),
            ({"max_tokens": 5, "max_output_tokens": 5}, "only max_output_tokens"),
        ],
    )
    def test_what_the_api_does_not_take_fails_in_stream(
        self, params: dict[str, Any], match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            llm().stream("x", **params)

    def test_defaults_are_checked_when_the_llm_is_made(self) -> None:
        with pytest.raises(ValueError, match="stop"):
            llm(stop=["x"])

    def test_system_and_instructions_together(self) -> None:
        with pytest.raises(ValueError, match="instructions"):
            llm().stream("x", system="a", instructions="b")

    def test_audio_output(self) -> None:
        with pytest.raises(ValueError, match="no audio"):
            llm().stream("x", audio={"voice": "alloy", "format": "pcm16"})


class TestTools:
    def test_a_python_function(self) -> None:
        tool = responses_tool(weather)
        assert tool == {
            "type": "function",
            "name": "weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"description": "The city, e.g. Oslo.", "type": "string"},
                    "unit": {"default": "C", "type": "string"},
                },
                "required": ["city"],
            },
            "strict": False,  # the API's default (strict) refuses the optional `unit`
        }

    def test_other_formats(self) -> None:
        chat = {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}, "strict": True},
        }
        anthropic = {"name": "g", "description": "G.", "input_schema": {"type": "object"}}
        native = {"type": "function", "name": "h", "parameters": None, "strict": True}
        assert responses_tool(chat) == {
            "type": "function",
            "name": "f",
            "parameters": {"type": "object"},
            "strict": True,
        }
        assert responses_tool(anthropic) == {
            "type": "function",
            "name": "g",
            "description": "G.",
            "parameters": {"type": "object"},
            "strict": False,
        }
        assert responses_tool(native) is native
        assert responses_tool({"type": "web_search"}) == {"type": "web_search"}
        assert responses_tool(City)["parameters"]["required"] == ["name"]

    @pytest.mark.parametrize(
        ("choice", "expected"),
        [
            ("required", "required"),
            (
                {"type": "function", "function": {"name": "weather"}},
                {"type": "function", "name": "weather"},
            ),
            ({"type": "tool", "name": "weather"}, {"type": "function", "name": "weather"}),
            ({"type": "any"}, "required"),
            ({"type": "function", "name": "weather"}, {"type": "function", "name": "weather"}),
        ],
    )
    def test_tool_choice(self, choice: Any, expected: Any) -> None:
        assert sent(prompt="x", tools=[weather], tool_choice=choice)["tool_choice"] == expected

    def test_anthropics_no_parallel_calls(self) -> None:
        choice = {"type": "auto", "disable_parallel_tool_use": True}
        kwargs = sent(prompt="x", tools=[weather], tool_choice=choice)
        assert (kwargs["tool_choice"], kwargs["parallel_tool_calls"]) == ("auto", False)


class TestStructuredOutput:
    def test_a_pydantic_model_is_a_strict_json_schema_format(self) -> None:
        text = sent(prompt="x", response_format=City)["text"]
        assert text["format"]["type"] == "json_schema"
        assert text["format"]["name"] == "City"
        assert text["format"]["strict"] is True
        assert text["format"]["schema"]["required"] == ["name"]

    def test_chat_style_and_native_formats(self) -> None:
        chat = {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "object"}}}
        assert sent(prompt="x", response_format=chat)["text"]["format"] == {
            "type": "json_schema",
            "name": "c",
            "schema": {"type": "object"},
        }
        assert sent(prompt="x", response_format={"type": "json_object"})["text"] == {
            "format": {"type": "json_object"}
        }
        kwargs = sent(prompt="x", response_format=City, text={"verbosity": "low"})
        assert kwargs["text"]["verbosity"] == "low" and kwargs["text"]["format"]["name"] == "City"

    def test_both_formats(self) -> None:
        with pytest.raises(ValueError, match=r"text=.*format"):
            llm().stream("x", response_format=City, text={"format": {"type": "text"}})


def sdk_response(*, store: bool, encrypted: bool) -> SDKResponse:
    reasoning: dict[str, Any] = {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Think."}],
    }
    if encrypted:
        reasoning["encrypted_content"] = "gAAAA"
    return SDKResponse.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "model": "gpt-5-mini",
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "store": store,
            "status": "completed",
            "output": [
                reasoning,
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {
                            "type": "output_text",
                            "text": "Checking.",
                            "annotations": [],
                            "logprobs": [],
                        }
                    ],
                },
                {
                    "id": "fc_1",
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "weather",
                    "arguments": '{"city": "Oslo"}',
                    "status": "completed",
                },
            ],
        }
    )


def answered(raw: SDKResponse) -> rxllm.Response:
    response = rxllm.Response(
        text="Checking.",
        provider="openai",
        finish_reason="tool_calls",
        tool_calls=(ToolCall(id="call_1", name="weather", arguments='{"city": "Oslo"}'),),
    )
    response._private()["_raw"] = raw  # as the raw builder leaves it once read
    return response


class TestNextTurn:
    def test_the_output_items_with_reasoning(self) -> None:
        items = response_input_items(answered(sdk_response(store=False, encrypted=True)))
        assert items == [
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Think."}],
                "encrypted_content": "gAAAA",
            },
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city": "Oslo"}',
                "status": "completed",
            },
        ]

    def test_a_stored_response_needs_no_encrypted_reasoning(self) -> None:
        items = response_input_items(answered(sdk_response(store=True, encrypted=False)))
        assert [item["type"] for item in items] == ["reasoning", "message", "function_call"]

    def test_unstored_reasoning_without_its_content_is_left_out_with_the_ids(self) -> None:
        items = response_input_items(answered(sdk_response(store=False, encrypted=False)))
        assert items == [
            {"role": "assistant", "content": "Checking."},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city": "Oslo"}',
                "status": "completed",
            },
        ]

    def test_tool_results_as_output_items(self) -> None:
        results = [
            ToolResult(call=ToolCall(id="call_1", name="weather"), output={"sky": "clear"}),
            ToolResult(call=ToolCall(id="call_2", name="weather"), error="no such city"),
        ]
        assert tool_output_items(results) == [
            {"type": "function_call_output", "call_id": "call_1", "output": '{"sky":"clear"}'},
            {"type": "function_call_output", "call_id": "call_2", "output": "Error: no such city"},
        ]

    def test_they_are_sent_as_they_are(self) -> None:
        request = Request(
            messages=(
                {"role": "user", "content": "Weather?"},
                *response_input_items(answered(sdk_response(store=True, encrypted=False))),
                *tool_output_items([ToolResult(call=ToolCall(id="call_1"), output="sunny")]),
            )
        )
        kinds = [
            item.get("type", item.get("role"))
            for item in responses_arguments(request, "m")["input"]
        ]
        assert kinds == ["user", "reasoning", "message", "function_call", "function_call_output"]
