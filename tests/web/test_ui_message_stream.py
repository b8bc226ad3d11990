"""`web.ui_message_stream`: the AI SDK's UI message stream protocol, event by event, over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import reactivex
from reactivex import operators as rx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import rxllm
from rxllm import Chunk, ToolCallDelta, Usage, ops, web
from rxllm.web import UIMessageEvents

from .conftest import serve, ui_events

Source = Callable[[], reactivex.Observable[Chunk]]


class Endpoint:
    """POST /chat answers with `ui_message_stream` of whatever source the test set."""

    def __init__(self) -> None:
        self.source: Source | None = None
        self.message_id: str | None = None

    async def handle(self, request: Request) -> Response:
        assert self.source is not None
        return web.ui_message_stream(self.source(), message_id=self.message_id)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Endpoint]]:
    endpoint = Endpoint()
    with serve(Starlette(routes=[Route("/chat", endpoint.handle, methods=["POST"])])) as url:
        yield url, endpoint


@pytest.fixture
def stream(
    served: tuple[str, Endpoint], client: httpx.Client
) -> Callable[..., list[dict[str, Any]]]:
    """Serve a source, POST to it and return the events it answered."""
    url, endpoint = served

    def run(source: Source, message_id: str | None = "msg-1") -> list[dict[str, Any]]:
        endpoint.source, endpoint.message_id = source, message_id
        response = client.post(f"{url}/chat", json={})
        assert response.status_code == 200
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["content-type"].startswith("text/event-stream")
        return ui_events(response.content)

    return run


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def broken(city: str) -> str:
    """A tool that fails."""
    raise RuntimeError(f"no station in {city}")


def call(index: int, id: str | None, name: str | None, arguments: str) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


class TestText:
    """Text is one part: start, deltas, end, inside one step."""

    def test_text_stream(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        events = stream(lambda: rxllm.scripted(["Hel", "lo"]).stream("hi"))
        assert events == [
            {"type": "start", "messageId": "msg-1"},
            {"type": "start-step"},
            {"type": "text-start", "id": "text-1"},
            {"type": "text-delta", "id": "text-1", "delta": "Hel"},
            {"type": "text-delta", "id": "text-1", "delta": "lo"},
            {"type": "text-end", "id": "text-1"},
            {"type": "finish-step"},
            {"type": "finish", "finishReason": "stop"},
        ]

    def test_a_new_message_id_when_none_is_given(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        first = stream(lambda: rxllm.scripted("Hi.").stream("hi"), message_id=None)[0]
        second = stream(lambda: rxllm.scripted("Hi.").stream("hi"), message_id=None)[0]
        assert first["type"] == "start"
        assert first["messageId"] and second["messageId"]
        assert first["messageId"] != second["messageId"]

    def test_usage_is_message_metadata_of_finish(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        usage = Usage(input_tokens=12, output_tokens=3, total_tokens=15, cache_read_tokens=4)
        events = stream(lambda: rxllm.scripted("Hi.", usage=usage).stream("hi"))
        assert events[-1]["messageMetadata"] == {
            "usage": {
                "inputTokens": 12,
                "outputTokens": 3,
                "totalTokens": 15,
                "reasoningTokens": 0,
                "cachedInputTokens": 4,
            }
        }

    def test_refusal_and_transcript_are_text(self) -> None:
        events = UIMessageEvents("m")
        sent = events.start() + events.push(Chunk(refusal="I can't"))
        sent += events.push(Chunk(audio=b"\x00\x01", audio_transcript=" help."))
        deltas = [e["delta"] for e in sent if e["type"] == "text-delta"]
        assert deltas == ["I can't", " help."]
        assert not any("audio" in str(e) for e in sent)


class TestReasoning:
    """Thinking is a reasoning part; text after it is a part of its own."""

    def test_reasoning_then_text(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        script = [Chunk(thinking="Let me"), Chunk(thinking=" think."), "Forty", "-two."]
        events = stream(lambda: rxllm.scripted(script).stream("hi"))
        assert events[2:-2] == [
            {"type": "reasoning-start", "id": "reasoning-1"},
            {"type": "reasoning-delta", "id": "reasoning-1", "delta": "Let me"},
            {"type": "reasoning-delta", "id": "reasoning-1", "delta": " think."},
            {"type": "reasoning-end", "id": "reasoning-1"},
            {"type": "text-start", "id": "text-2"},
            {"type": "text-delta", "id": "text-2", "delta": "Forty"},
            {"type": "text-delta", "id": "text-2", "delta": "-two."},
            {"type": "text-end", "id": "text-2"},
        ]

    def test_interleaved_parts_each_get_an_id(self) -> None:
        events = UIMessageEvents("m")
        sent = events.start()
        for chunk in [Chunk(thinking="a"), Chunk(content="b"), Chunk(thinking="c")]:
            sent += events.push(chunk)
        sent += events.finish()
        starts = [(e["type"], e["id"]) for e in sent if e["type"].endswith("-start")]
        assert starts == [("reasoning-start", "reasoning-1"), ("text-start", "text-2"),
                          ("reasoning-start", "reasoning-3")]  # fmt: skip
        ends = [e["id"] for e in sent if e["type"].endswith("-end")]
        assert ends == ["reasoning-1", "text-2", "reasoning-3"]


class TestToolLoop:
    """Each call of a tool loop is a step; calls stream their input, results their output."""

    def test_steps_calls_and_results(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        first = [
            "Checking.",
            call(0, "c1", "weather", '{"city":'),
            call(0, None, None, ' "Oslo"}'),
            call(1, "c2", "broken", '{"city": "Bergen"}'),
        ]
        llm = rxllm.scripted(first, then=[["Sunny."]])
        events = stream(
            lambda: llm.stream("Weather?", tools=[weather, broken]).pipe(ops.tool_loop())
        )
        assert events == [
            {"type": "start", "messageId": "msg-1"},
            {"type": "start-step"},
            {"type": "text-start", "id": "text-1"},
            {"type": "text-delta", "id": "text-1", "delta": "Checking."},
            {"type": "text-end", "id": "text-1"},
            {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather"},
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"city":'},
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": ' "Oslo"}'},
            {"type": "tool-input-start", "toolCallId": "c2", "toolName": "broken"},
            {"type": "tool-input-delta", "toolCallId": "c2",
             "inputTextDelta": '{"city": "Bergen"}'},
            {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather",
             "input": {"city": "Oslo"}},
            {"type": "tool-input-available", "toolCallId": "c2", "toolName": "broken",
             "input": {"city": "Bergen"}},
            {"type": "tool-output-available", "toolCallId": "c1", "output": "sunny in Oslo"},
            {"type": "tool-output-error", "toolCallId": "c2",
             "errorText": "RuntimeError: no station in Bergen"},
            {"type": "finish-step"},
            {"type": "start-step"},
            {"type": "text-start", "id": "text-2"},
            {"type": "text-delta", "id": "text-2", "delta": "Sunny."},
            {"type": "text-end", "id": "text-2"},
            {"type": "finish-step"},
            {"type": "finish", "finishReason": "stop"},
        ]  # fmt: skip

    def test_structured_output_of_a_tool(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        def forecast(days: int) -> dict[str, Any]:
            """A forecast."""
            return {"days": [{"day": n, "rain": n % 2 == 0} for n in range(days)]}

        llm = rxllm.scripted([call(0, "f1", "forecast", '{"days": 2}')], then=[["Done."]])
        events = stream(lambda: llm.stream("?", tools=[forecast]).pipe(ops.tool_loop()))
        [output] = [e for e in events if e["type"] == "tool-output-available"]
        assert output["output"] == {"days": [{"day": 0, "rain": True}, {"day": 1, "rain": False}]}

    def test_loop_ended_by_max_steps_finishes_with_tool_calls(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        llm = rxllm.scripted([call(0, "c1", "weather", '{"city": "Oslo"}')])
        events = stream(lambda: llm.stream("?", tools=[weather]).pipe(ops.tool_loop(max_steps=2)))
        types = [e["type"] for e in events]
        assert types.count("start-step") == types.count("finish-step") == 2
        assert types.count("tool-output-available") == 2
        assert types[-2:] == ["finish-step", "finish"]
        assert events[-1]["finishReason"] == "tool-calls"

    def test_usage_adds_up_over_the_steps(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        usage = Usage(input_tokens=10, output_tokens=5, total_tokens=15)
        llm = rxllm.scripted(
            [call(0, "c1", "weather", '{"city": "Oslo"}')], then=[["Sunny."]], usage=usage
        )
        events = stream(lambda: llm.stream("?", tools=[weather]).pipe(ops.tool_loop()))
        metadata = events[-1]["messageMetadata"]["usage"]
        assert (metadata["inputTokens"], metadata["outputTokens"]) == (20, 10)

    def test_calls_without_ids_get_the_ids_tool_loop_gives_them(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        llm = rxllm.scripted([call(0, None, "weather", '{"city": "Oslo"}')], then=[["Ok."]])
        events = stream(lambda: llm.stream("?", tools=[weather]).pipe(ops.tool_loop()))
        ids = {e["toolCallId"] for e in events if "toolCallId" in e}
        assert ids == {"call_0_0"}

    def test_arguments_before_the_name_wait_for_it(self) -> None:
        events = UIMessageEvents("m")
        sent = events.start() + events.push(call(0, "c1", None, '{"a"'))
        assert sent[-1] == {"type": "start-step"}
        sent = events.push(call(0, None, "f", ": 1}"))
        assert sent == [
            {"type": "tool-input-start", "toolCallId": "c1", "toolName": "f"},
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"a": 1}'},
        ]

    def test_arguments_cut_off_are_an_input_error(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        script = [call(0, "c1", "weather", '{"city": "Os')]
        events = stream(lambda: rxllm.scripted(script, finish_reason="length").stream("?"))
        [error] = [e for e in events if e["type"] == "tool-input-error"]
        assert error["toolCallId"] == "c1"
        assert error["toolName"] == "weather"
        assert error["input"] == '{"city": "Os'
        assert "not valid JSON" in error["errorText"]
        assert events[-1]["finishReason"] == "length"


class TestFinishReasons:
    """`finish` says why in the protocol's words."""

    @pytest.mark.parametrize(
        ("reason", "expected"),
        [
            ("stop", "stop"),
            ("length", "length"),
            ("content_filter", "content-filter"),
            ("tool_calls", "tool-calls"),
            ("pause_turn", "other"),
        ],
    )
    def test_reason(
        self, stream: Callable[..., list[dict[str, Any]]], reason: str, expected: str
    ) -> None:
        events = stream(lambda: rxllm.scripted("Hi there.", finish_reason=reason).stream("hi"))
        assert events[-1] == {"type": "finish", "finishReason": expected}

    def test_stream_cut_short_is_other(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        llm = rxllm.scripted(["one ", "two ", "three"])
        events = stream(lambda: llm.stream("hi").pipe(ops.take_until(lambda c: "two" in c.content)))
        assert [e["delta"] for e in events if e["type"] == "text-delta"] == ["one ", "two "]
        assert events[-1] == {"type": "finish", "finishReason": "other"}


class TestErrors:
    """A failure is an `error` event with the error's class and message; what came stays."""

    def test_error_after_text(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        llm = rxllm.scripted(["Hel", "lo"], error=rxllm.RateLimitError("slow down"))
        events = stream(lambda: llm.stream("hi"))
        assert events[2:] == [
            {"type": "text-start", "id": "text-1"},
            {"type": "text-delta", "id": "text-1", "delta": "Hel"},
            {"type": "text-delta", "id": "text-1", "delta": "lo"},
            {"type": "text-end", "id": "text-1"},
            {"type": "error", "errorText": "RateLimitError: slow down"},
            {"type": "finish-step"},
            {"type": "finish", "finishReason": "error"},
        ]

    def test_error_before_any_chunk(self, stream: Callable[..., list[dict[str, Any]]]) -> None:
        llm = rxllm.scripted([], error=rxllm.AuthenticationError("set OPENAI_API_KEY"))
        events = stream(lambda: llm.stream("hi"))
        assert [e["type"] for e in events] == [
            "start",
            "start-step",
            "error",
            "finish-step",
            "finish",
        ]
        assert events[2]["errorText"] == "AuthenticationError: set OPENAI_API_KEY"

    def test_no_key_in_the_error_text(
        self, stream: Callable[..., list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ACME_API_KEY", "acme-7f3a9c2e51")

        def check(chunk: Chunk) -> Chunk:  # e.g. an operator of the app that calls a service
            raise RuntimeError("denied for sk-proj-abcdef123456 and acme-7f3a9c2e51")

        events = stream(lambda: rxllm.scripted(["Hi"]).stream("hi").pipe(rx.map(check)))
        [sent] = [e for e in events if e["type"] == "error"]
        assert sent["errorText"].startswith("RuntimeError: denied for ")
        assert "abcdef123456" not in sent["errorText"]
        assert "acme-7f3a9c2e51" not in sent["errorText"]

    def test_a_source_of_other_items_is_an_error_event(
        self, stream: Callable[..., list[dict[str, Any]]]
    ) -> None:
        events = stream(lambda: rxllm.scripted("Hi there.").stream("hi").pipe(ops.text()))
        [sent] = [e for e in events if e["type"] == "error"]
        assert sent["errorText"].startswith("TypeError: ui_message_stream() streams rxllm chunks")

    def test_bad_arguments_are_refused_at_once(self) -> None:
        llm = rxllm.scripted("Hi.")
        with pytest.raises(TypeError, match=r"llm\.stream\(prompt\)"):
            web.ui_message_stream(llm)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="message_id must be a str"):
            web.ui_message_stream(llm.stream("hi"), message_id=7)  # type: ignore[arg-type]
