"""`web.ui_messages`: a useChat request's UI messages as the provider's messages."""

from __future__ import annotations

import base64
from typing import Any

import pytest

import rxllm
from rxllm import web
from rxllm.testing import Script, Server


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"id": "u", "role": "user", "parts": list(parts)}


def assistant(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"id": "a", "role": "assistant", "parts": list(parts)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value, "state": "done"}


def tool(name: str, call_id: str, state: str = "output-available", **fields: Any) -> dict[str, Any]:
    return {"type": f"tool-{name}", "toolCallId": call_id, "state": state, **fields}


STEP = {"type": "step-start"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


class TestText:
    """Text parts are the message's content; what the page only showed is dropped."""

    def test_a_conversation(self) -> None:
        body = {
            "id": "chat-1",
            "trigger": "submit-message",
            "messages": [
                {"id": "s", "role": "system", "parts": [text("Be brief.")]},
                user(text("Hi")),
                assistant(STEP, {"type": "reasoning", "text": "greet"}, text("Hello!")),
                user(text("Tell me "), text("a joke.")),
            ],
        }
        assert web.ui_messages(body) == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Tell me a joke."},
        ]

    def test_the_messages_list_itself(self) -> None:
        assert web.ui_messages([user(text("Hi"))]) == [{"role": "user", "content": "Hi"}]

    def test_an_assistant_message_that_said_nothing_is_left_out(self) -> None:
        messages = [user(text("Hi")), assistant(STEP, {"type": "reasoning", "text": "hmm"})]
        assert web.ui_messages(messages) == [{"role": "user", "content": "Hi"}]

    def test_other_parts_are_dropped(self) -> None:
        parts = [
            text("Hi"),
            {"type": "source-url", "sourceId": "s1", "url": "https://example.com"},
            {"type": "data-weather", "data": {"t": 3}},
            text(" there"),
        ]
        assert web.ui_messages([assistant(*parts)]) == [
            {"role": "assistant", "content": "Hi there"}
        ]


WEATHER_STEPS = [
    user(text("Weather in Oslo and Bergen?")),
    assistant(
        STEP,
        text("Checking."),
        tool("weather", "c1", input={"city": "Oslo"}, output={"sky": "sunny"}),
        tool("weather", "c2", "output-error", input={"city": "Bergen"}, errorText="no station"),
        STEP,
        text("Sunny in Oslo."),
    ),
]


class TestTools:
    """Each step is an assistant turn, followed by its tools' results."""

    def test_openai_format(self) -> None:
        assert web.ui_messages(WEATHER_STEPS)[1:] == [
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
                    {"id": "c2", "type": "function",
                     "function": {"name": "weather", "arguments": '{"city": "Bergen"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"sky":"sunny"}'},
            {"role": "tool", "tool_call_id": "c2", "content": "Error: no station"},
            {"role": "assistant", "content": "Sunny in Oslo."},
        ]  # fmt: skip

    def test_anthropic_format(self) -> None:
        assert web.ui_messages(WEATHER_STEPS, provider="anthropic")[1:] == [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "c2", "name": "weather",
                     "input": {"city": "Bergen"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": '{"sky":"sunny"}',
                     "is_error": False},
                    {"type": "tool_result", "tool_use_id": "c2", "content": "Error: no station",
                     "is_error": True},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Sunny in Oslo."}]},
        ]  # fmt: skip

    def test_text_after_tools_without_a_step_boundary_answers_them(self) -> None:
        message = assistant(tool("add", "c1", input={"a": 1}, output=2), text("It is 2."))
        roles = [m["role"] for m in web.ui_messages([message])]
        assert roles == ["assistant", "tool", "assistant"]

    def test_dynamic_and_denied_tools(self) -> None:
        message = assistant(
            {"type": "dynamic-tool", "toolName": "search", "toolCallId": "d1",
             "state": "output-available", "input": {"q": "rx"}, "output": "found"},
            tool("delete", "x1", "output-denied", input={"path": "/"}),
        )  # fmt: skip
        turn, found, denied = web.ui_messages([message])
        assert [c["function"]["name"] for c in turn["tool_calls"]] == ["search", "delete"]
        assert found == {"role": "tool", "tool_call_id": "d1", "content": "found"}
        assert denied["content"] == "Error: the user denied this tool call"

    def test_calls_without_a_result_are_left_out(self) -> None:
        message = assistant(
            text("Let me look."),
            tool("weather", "c1", "input-available", input={"city": "Oslo"}),
            tool("weather", "c2", "input-streaming", input={"ci": None}),
        )
        assert web.ui_messages([message]) == [{"role": "assistant", "content": "Let me look."}]

    def test_input_that_did_not_parse(self) -> None:
        message = assistant(
            tool("f", "c1", "output-error", input=None, rawInput='{"a": 1', errorText="bad")
        )
        [turn, _] = web.ui_messages([message])
        assert turn["tool_calls"][0]["function"]["arguments"] == "{}"

    def test_the_messages_are_ones_the_provider_takes(self, server: Server) -> None:
        server.push(Script("Noted."))
        llm = rxllm.anthropic("claude-test", base_url=server.url, api_key="x", max_retries=0)
        messages = web.ui_messages([*WEATHER_STEPS, user(text("Thanks"))], provider=llm.provider)
        assert rxllm.collect(llm.stream(messages=messages)).text == "Noted."
        assert server.last.body["messages"] == messages


class TestFiles:
    """File parts are input parts in the provider's own form."""

    def image(self, url: str) -> dict[str, Any]:
        return {"type": "file", "mediaType": "image/png", "url": url, "filename": "cat.png"}

    def test_image_openai(self) -> None:
        url = f"data:image/png;base64,{PNG}"
        [message] = web.ui_messages([user(text("What is it?"), self.image(url))])
        assert message["content"] == [
            {"type": "text", "text": "What is it?"},
            {"type": "image_url", "image_url": {"url": url}},
        ]

    def test_image_anthropic(self) -> None:
        inline, linked = f"data:image/png;base64,{PNG}", "https://x.org/c.png"
        messages = [user(self.image(inline), self.image(linked))]
        [message] = web.ui_messages(messages, provider="anthropic")
        assert message["content"] == [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://x.org/c.png"}},
        ]

    def test_pdf(self) -> None:
        url = "data:application/pdf;base64,JVBERi0xLjQ="
        part = {"type": "file", "mediaType": "application/pdf", "url": url, "filename": "a.pdf"}
        [openai] = web.ui_messages([user(part)])
        assert openai["content"] == [
            {"type": "file", "file": {"filename": "a.pdf", "file_data": url}}
        ]
        [anthropic] = web.ui_messages([user(part)], provider="anthropic")
        assert anthropic["content"][0]["type"] == "document"
        assert anthropic["content"][0]["source"]["data"] == "JVBERi0xLjQ="

    def test_audio_for_openai(self) -> None:
        part = {"type": "file", "mediaType": "audio/wav", "url": "data:audio/wav;base64,UklGRg=="}
        [message] = web.ui_messages([user(part)])
        assert message["content"] == [
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
        ]
        with pytest.raises(ValueError, match="'audio/wav' cannot be sent to anthropic"):
            web.ui_messages([user(part)], provider="anthropic")

    def test_text_file_is_text(self) -> None:
        part = {"type": "file", "mediaType": "text/plain", "url": "data:text/plain,hello%20world"}
        [message] = web.ui_messages([user(text("Summarize: "), part, text("Be "), text("brief."))])
        assert message["content"] == [
            {"type": "text", "text": "Summarize: "},
            {"type": "text", "text": "hello world"},
            {"type": "text", "text": "Be brief."},
        ]

    def test_unsupported_file(self) -> None:
        part = {
            "type": "file",
            "mediaType": "application/zip",
            "url": "data:application/zip;base64,UEs=",
        }
        with pytest.raises(ValueError, match=r"messages\[0\]\.parts\[0\].*'application/zip'"):
            web.ui_messages([user(part)])

    def test_bad_url(self) -> None:
        part = {"type": "file", "mediaType": "image/png", "url": "file:///etc/passwd"}
        with pytest.raises(ValueError, match="data: URL or an http"):
            web.ui_messages([user(part)])


class TestMistakes:
    """What is not a useChat body is a ValueError that says what was expected."""

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            ("hi", "takes a useChat request body"),
            ({"message": "hi"}, "not a body whose 'messages' is NoneType"),
            ({"messages": "hi"}, "not a body whose 'messages' is str"),
            ([["hi"]], r"messages\[0\] must be a UI message"),
            ([{"role": "user", "content": "hi"}], r"messages\[0\] has no 'parts' list"),
            ([{"role": "tool", "parts": []}], "has role 'tool'"),
            ([{"role": "user", "parts": ["hi"]}], r"messages\[0\]\.parts\[0\] must be a dict"),
            ([{"role": "user", "parts": [{"type": "text"}]}], "without a 'text' string"),
            ([assistant({"type": "tool-x", "state": "output-available"})], "toolCallId"),
        ],
    )
    def test_refused(self, body: Any, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            web.ui_messages(body)

    def test_provider_is_a_name(self) -> None:
        with pytest.raises(TypeError, match=r"llm\.provider"):
            web.ui_messages([], provider=rxllm.scripted("x"))  # type: ignore[arg-type]
