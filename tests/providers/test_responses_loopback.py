"""The Responses API through the real `openai` SDK against the loopback server, sync and
asyncio: content, usage, tool calls, refusals, finish reasons, every error with what was
received, cancellation as the server records it, `Response.raw`, resume and tool loops."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import httpx2
import openai as openai_sdk
import pytest
import reactivex
from openai.types.responses import ParsedResponse
from openai.types.responses import Response as SDKResponse
from pydantic import BaseModel
from reactivex import operators as rx

import rxllm
from rxllm import ops
from rxllm.accumulator import Accumulator
from rxllm.llm import CallStream
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.providers.responses_input import response_input_items, tool_output_items
from rxllm.testing import Script, Server

KEY = "sk-responses-test-0123456789"
MODES = ["sync", "async"]


def make(server: Server, **defaults: Any) -> rxllm.LLM:
    defaults.setdefault("max_retries", 0)
    return rxllm.openai("test-model", api="responses", base_url=server.url, api_key=KEY, **defaults)


def run(stream: reactivex.Observable[Chunk], mode: str) -> rxllm.Response:
    if mode == "sync":
        return rxllm.collect(stream, timeout=10)
    return asyncio.run(rxllm.acollect(stream, timeout=10))


def call(index: int, id: str | None, name: str | None, arguments: str) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


def weather(city: str) -> str:
    """The weather in a city."""
    return {"Oslo": "sunny", "Rome": "rainy"}.get(city, "unknown")


class City(BaseModel):
    name: str


class TestContent:
    @pytest.mark.parametrize("mode", MODES)
    def test_text_usage_and_stop(self, server: Server, mode: str) -> None:
        usage = Usage(
            input_tokens=5210,
            output_tokens=40,
            total_tokens=5250,
            cache_read_tokens=5000,
            reasoning_tokens=30,
        )
        server.push(Script("The quick brown fox jumps.", usage=usage))
        response = run(make(server).stream("Tell me", system="Be brief."), mode)
        assert response.text == "The quick brown fox jumps."
        assert response.finish_reason == "stop"
        assert response.usage == usage
        assert (response.provider, response.model) == ("openai", "test-model")
        assert response.id is not None and response.id.startswith("resp_")
        record = server.last
        assert (record.protocol, record.path) == ("openai-responses", "/responses")
        assert record.body["input"] == [{"role": "user", "content": "Tell me"}]
        assert record.body["instructions"] == "Be brief."
        assert record.body["stream"] is True

    @pytest.mark.parametrize("mode", MODES)
    def test_response_raw_is_the_sdks_response(self, server: Server, mode: str) -> None:
        server.push(Script("Hi there.", usage=Usage(input_tokens=3, output_tokens=2)))
        response = run(make(server).stream("hi"), mode)
        raw = response.raw
        assert isinstance(raw, SDKResponse)
        assert raw.output_text == "Hi there." and raw.status == "completed"
        assert raw.id == response.id
        assert raw.usage is not None and raw.usage.total_tokens == 5

    def test_response_raw_equals_what_the_sdks_own_stream_helper_ends_with(
        self, server: Server
    ) -> None:
        script = Script(
            [Chunk(thinking="Hmm."), "Oslo ", "is sunny.", call(0, "call_1", "weather", "{}")],
            response_id="resp_fixed",
        )
        server.push(script)
        client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
        with client.responses.stream(model="test-model", input="hi") as stream:
            theirs = stream.get_final_response()
        server.push(script)
        ours = rxllm.collect(make(server).stream("hi"), timeout=10).raw
        assert type(ours) is type(theirs)
        mine, sdk = ours.model_dump(), theirs.model_dump()
        mine.pop("created_at"), sdk.pop("created_at")  # the server's clock
        assert mine == sdk

    def test_thinking_summary_parts_then_text(self, server: Server) -> None:
        server.push(
            Script(
                [
                    Chunk(thinking="First, "),
                    Chunk(thinking="plan."),
                    Chunk(thinking="\n\nThen act."),
                    "Done.",
                ]
            )
        )
        response = rxllm.collect(make(server).stream("hi"), timeout=10)
        assert response.thinking == "First, plan.\n\nThen act."
        assert response.text == "Done."
        assert [s.text for s in response.raw.output[0].summary] == ["First, plan.", "Then act."]

    def test_parallel_tool_calls(self, server: Server) -> None:
        server.push(
            Script(
                [
                    "Checking.",
                    call(0, "call_1", "weather", '{"city": '),
                    call(0, None, None, '"Oslo"}'),
                    call(1, "call_2", "weather", '{"city": "Rome"}'),
                ]
            )
        )
        response = rxllm.collect(make(server).stream("weather?", tools=[weather]), timeout=10)
        assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
            ("call_1", "weather", {"city": "Oslo"}),
            ("call_2", "weather", {"city": "Rome"}),
        ]
        assert response.finish_reason == "tool_calls"
        assert response.text == "Checking."
        assert server.last.body["tools"] == [
            {
                "type": "function",
                "name": "weather",
                "description": "The weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "strict": False,
            }
        ]

    def test_refusal(self, server: Server) -> None:
        server.push(Script([Chunk(refusal="I can't"), Chunk(refusal=" help with that.")]))
        response = rxllm.collect(make(server).stream("x"), timeout=10)
        assert response.refusal == "I can't help with that."
        assert response.finish_reason == "stop"

    @pytest.mark.parametrize(
        ("finish", "reason"),
        [("length", "max_output_tokens"), ("content_filter", "content_filter")],
    )
    def test_incomplete_responses(self, server: Server, finish: str, reason: str) -> None:
        server.push(Script(["Cut ", Chunk(content="short", finish_reason=finish)]))
        response = rxllm.collect(make(server, max_tokens=2).stream("x"), timeout=10)
        assert response.finish_reason == finish
        assert response.text == "Cut short"
        assert server.last.body["max_output_tokens"] == 2
        assert response.raw.status == "incomplete"
        assert response.raw.incomplete_details.reason == reason

    def test_structured_output(self, server: Server) -> None:
        server.push(Script(['{"name": ', '"Oslo"}']))
        stream = make(server).stream("A city?", response_format=City)
        assert list(rxllm.iterate(stream.pipe(ops.partial(City))))[-1] == City(name="Oslo")
        assert server.last.body["text"]["format"]["name"] == "City"
        server.push(Script(['{"name": ', '"Oslo"}']))
        assert rxllm.collect(stream, timeout=10).raw.output_parsed == City(name="Oslo")

    def test_server_tools_reach_each_chunks_raw(self, server: Server) -> None:
        # A recorded-style stream with a web search before the answer: its events are
        # empty chunks, each with the SDK's event as raw; the text and finish are as usual.
        events = [
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {
                    "id": "resp_ws",
                    "object": "response",
                    "created_at": 1,
                    "status": "in_progress",
                    "model": "gpt-5",
                    "output": [],
                    "parallel_tool_calls": True,
                    "tool_choice": "auto",
                    "tools": [{"type": "web_search"}],
                },
            },
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {"id": "ws_1", "type": "web_search_call", "status": "in_progress"},
            },
            {
                "type": "response.web_search_call.searching",
                "sequence_number": 2,
                "output_index": 0,
                "item_id": "ws_1",
            },
            {"type": "keepalive", "sequence_number": 3},
            {
                "type": "response.output_item.done",
                "sequence_number": 4,
                "output_index": 0,
                "item": {
                    "id": "ws_1",
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {"type": "search", "query": "oslo"},
                },
            },
            {
                "type": "response.output_text.delta",
                "sequence_number": 5,
                "output_index": 1,
                "content_index": 0,
                "item_id": "msg_1",
                "delta": "Sunny.",
                "logprobs": [],
            },
            {
                "type": "response.completed",
                "sequence_number": 6,
                "response": {
                    "id": "resp_ws",
                    "object": "response",
                    "created_at": 1,
                    "status": "completed",
                    "model": "gpt-5",
                    "parallel_tool_calls": True,
                    "tool_choice": "auto",
                    "tools": [{"type": "web_search"}],
                    "output": [
                        {
                            "id": "ws_1",
                            "type": "web_search_call",
                            "status": "completed",
                            "action": {"type": "search", "query": "oslo"},
                        },
                        {
                            "id": "msg_1",
                            "type": "message",
                            "role": "assistant",
                            "status": "completed",
                            "content": [
                                {"type": "output_text", "text": "Sunny.", "annotations": []}
                            ],
                        },
                    ],
                    "usage": {
                        "input_tokens": 9,
                        "output_tokens": 2,
                        "total_tokens": 11,
                        "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens_details": {"reasoning_tokens": 0},
                    },
                },
            },
        ]
        server.push(Script(raw_events=events))
        chunks = list(
            rxllm.iterate(make(server).stream("weather?", tools=[{"type": "web_search"}]))
        )
        assert [c.raw.type for c in chunks] == [
            e["type"] for e in events if e["type"] != "keepalive"
        ]
        searching = chunks[2]
        assert (
            searching.is_empty
            and type(searching.raw).__name__ == "ResponseWebSearchCallSearchingEvent"
        )
        assert chunks[3].raw.item.action.query == "oslo"
        assert "".join(c.content for c in chunks) == "Sunny."
        assert chunks[-1].finish_reason == "stop"
        assert server.last.body["tools"] == [{"type": "web_search"}]


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "error_class", "retryable"),
        [
            (401, rxllm.AuthenticationError, False),
            (404, rxllm.NotFoundError, False),
            (429, rxllm.RateLimitError, True),
            (500, rxllm.ServerError, True),
        ],
    )
    def test_http_status_errors(
        self, server: Server, status: int, error_class: type[rxllm.LLMError], retryable: bool
    ) -> None:
        server.push(Script("x", status=status, headers={"retry-after": "7"}))
        with pytest.raises(error_class) as caught:
            rxllm.collect(make(server).stream("hi"), timeout=10)
        assert caught.value.retryable is retryable
        assert caught.value.partial is None
        assert isinstance(caught.value.__cause__, openai_sdk.APIStatusError)
        assert KEY not in str(caught.value) and KEY not in repr(caught.value)
        if status == 429:
            assert isinstance(caught.value, rxllm.RateLimitError)
            assert caught.value.retry_after == 7.0

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(
        ("error_event", "also", "retryable"),
        [
            ("server_error", rxllm.ServerError, True),  # a response.failed
            ("rate_limit_exceeded", rxllm.RateLimitError, True),
            ("invalid_prompt", rxllm.StreamError, False),
            # an `error` event (the API's own stream-level error)
            (
                {"type": "error", "code": "server_error", "message": "Boom.", "param": None},
                rxllm.ServerError,
                True,
            ),
            (
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "code": None,
                        "message": "Bad.",
                        "param": None,
                    },
                },
                rxllm.StreamError,
                False,
            ),
        ],
    )
    def test_failures_mid_stream_keep_the_partial(
        self, server: Server, mode: str, error_event: Any, also: type, retryable: bool
    ) -> None:
        server.push(Script(["Hello", " there"], error_event=error_event))
        with pytest.raises(rxllm.StreamError) as caught:
            run(make(server).stream("hi"), mode)
        error = caught.value
        assert isinstance(error, also)
        assert error.retryable is retryable
        assert error.partial is not None and error.partial.text == "Hello there"
        assert isinstance(error.__cause__, openai_sdk.APIError)  # as for the chat API
        if isinstance(error_event, str):  # a response.failed: the SDK's failed Response
            assert error.partial.raw.status == "failed"
            assert error.partial.raw.error.code == error_event
            assert error_event in str(error)

    @pytest.mark.parametrize("mode", MODES)
    def test_a_dropped_connection_is_interrupted_with_the_partial(
        self, server: Server, mode: str
    ) -> None:
        server.push(Script(["a", "b", "c", "d"], drop_after=2))
        with pytest.raises(rxllm.StreamInterrupted) as caught:
            run(make(server).stream("hi"), mode)
        assert caught.value.retryable
        assert caught.value.partial is not None and caught.value.partial.text == "ab"
        # the cause is what the installed SDK raises: its APIConnectionError (openai 3.0 let
        # the transport's error through)
        cause = caught.value.__cause__
        reason = cause if isinstance(cause, httpx2.TransportError) else cause.__cause__
        assert isinstance(cause, openai_sdk.APIConnectionError | httpx2.TransportError)
        assert isinstance(reason, httpx2.TransportError)
        # the SDK's own accumulator snapshot of the answer so far
        assert caught.value.partial.raw.status == "in_progress"
        assert caught.value.partial.raw.output[0].content[0].text == "ab"

    def test_a_malformed_event_is_a_stream_error_with_the_partial(self, server: Server) -> None:
        server.push(Script(["a", "b", "c"], malformed_after=2))
        with pytest.raises(rxllm.StreamError, match="not valid JSON") as caught:
            rxllm.collect(make(server).stream("hi"), timeout=10)
        assert caught.value.partial is not None and caught.value.partial.text == "ab"

    @pytest.mark.parametrize("mode", MODES)
    def test_stall_timeout_ignores_keepalive_events(self, server: Server, mode: str) -> None:
        server.push(Script(["a", "b", "c"], hang_after=2, ping_every=0.05))
        with pytest.raises(rxllm.StreamTimeout) as caught:
            run(make(server, stall_timeout=0.3).stream("hi"), mode)
        assert caught.value.partial is not None and caught.value.partial.text == "ab"
        assert server.last.pings_written >= 2
        assert server.last.wait_closed(2)


class TestCancellation:
    @pytest.mark.parametrize("mode", MODES)
    def test_take_until_closes_the_http_response(self, server: Server, mode: str) -> None:
        server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
        stream = (
            make(server)
            .stream("count")
            .pipe(ops.accumulate(), ops.take_until(lambda s: "w4 " in s.text))
        )
        response = run(stream, mode)
        stopped = time.monotonic()
        assert response.text == "w0 w1 w2 w3 w4 "
        assert response.finish_reason is None
        record = server.last
        assert record.wait_closed(2)
        assert record.client_closed_at is not None
        assert record.client_closed_at - stopped < 0.5
        assert record.chunks_after_close == 0
        assert record.chunks_written <= 8
        assert not record.finished

    @pytest.mark.parametrize("mode", MODES)
    def test_a_stop_while_the_model_is_silent_closes_the_connection(
        self, server: Server, mode: str
    ) -> None:
        server.push(Script(["a", "b", "c"], hang_after=2))
        stop = reactivex.subject.Subject[None]()

        def press_later(chunk: Chunk) -> None:  # the model is silent after "b": stop then
            if chunk.content == "b":
                threading.Timer(0.2, lambda: stop.on_next(None)).start()

        stream = make(server).stream("hi").pipe(rx.do_action(press_later), ops.take_until(stop))
        response = run(stream, mode)
        assert response.text == "ab"
        assert server.last.wait_closed(2)
        assert server.last.chunks_after_close == 0


class TestContinuations:
    def test_retry_resumes_with_the_text_so_far_as_input_items(self, server: Server) -> None:
        server.push(Script(["The answer ", "is forty"], drop_after=2))
        server.push(Script(["is forty", "-two."]))  # repeats the seam, then continues
        stream = make(server).stream("q").pipe(ops.retry(attempts=2, backoff=0))
        chunks = list(rxllm.iterate(stream))
        seen = [c.content for c in chunks]
        assert "".join(seen) == "The answer is forty-two."  # no duplicate reached anyone
        sent = server.requests[1].body["input"]
        assert sent[0] == {"role": "user", "content": "q"}
        assert sent[1] == {"role": "assistant", "content": "The answer is forty"}
        assert sent[2]["role"] == "user" and "Continue" in sent[2]["content"]
        assert "previous_response_id" not in server.requests[1].body
        acc = Accumulator()
        acc.extend(chunks)
        response = acc.response()
        assert response.finish_reason == "stop"
        assert response.raw.output_text == "is forty-two."  # the continuation's own response

    @pytest.mark.parametrize("mode", MODES)
    def test_a_tool_loop_of_two_steps(self, server: Server, mode: str) -> None:
        server.push(
            Script(
                [
                    Chunk(thinking="Both cities."),
                    "Let me check.",
                    call(0, "call_1", "weather", '{"city": "Oslo"}'),
                    call(1, "call_2", "weather", '{"city": "Rome"}'),
                ],
                usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15),
            )
        )
        server.push(Script("Oslo is sunny, Rome is rainy."))
        stream = make(server).stream("Weather in Oslo and Rome?", tools=[weather])
        answer = run(stream.pipe(ops.tool_loop()), mode)
        assert answer.text == "Oslo is sunny, Rome is rainy."
        assert answer.finish_reason == "stop"
        assert [r.output for r in answer.steps[0].tool_results] == ["sunny", "rainy"]
        assert len(server.requests) == 2
        second = server.requests[1].body
        assert second["input"] == [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {"role": "assistant", "content": "Let me check."},
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
                "arguments": '{"city": "Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": "rainy"},
        ]
        assert second["tools"] == server.requests[0].body["tools"]
        # each step's raw is that call's own SDK response
        assert isinstance(answer.steps[0].raw, ParsedResponse)
        assert [item.type for item in answer.steps[0].raw.output] == [
            "reasoning",
            "message",
            "function_call",
            "function_call",
        ]
        assert answer.raw.output_text == "Oslo is sunny, Rome is rainy."


def test_the_provider_is_openai_and_clients_are_shared_with_chat(server: Server) -> None:
    llm = rxllm.openai("test-model", api="responses", base_url=server.url, api_key=KEY)
    provider = llm._provider  # type: ignore[attr-defined]
    assert (llm.provider, llm.model) == ("openai", "test-model")
    server.push(Script("One."))
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "One."
    client = provider.sync_client()
    assert isinstance(client, openai_sdk.OpenAI)
    server.push(Script("Two."))
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "Two."
    assert provider.sync_client() is client


def test_the_next_turn_as_output_items_round_trips(server: Server) -> None:
    # What the lead's hook sends instead of chat-style messages: the answer's own output
    # items (its reasoning kept, by id, as the response was stored) and the tools' outputs.
    llm = make(server)
    server.push(
        Script([Chunk(thinking="Oslo first."), call(0, "call_1", "weather", '{"city": "Oslo"}')])
    )
    first = llm.stream("Weather in Oslo?", tools=[weather])
    answer = rxllm.collect(first, timeout=10)
    results = [rxllm.ToolResult(call=answer.tool_calls[0], output=weather("Oslo"))]
    items = response_input_items(answer)
    assert [item["type"] for item in items] == ["reasoning", "function_call"]
    assert items[0]["id"].startswith("rs_") and items[1]["id"].startswith("fc_")
    request = dataclasses.replace(
        first.request, messages=(*first.request.messages, *items, *tool_output_items(results))
    )
    server.push(Script("Sunny in Oslo."))
    following = CallStream(first.provider, request)
    assert rxllm.collect(following, timeout=10).text == "Sunny in Oslo."
    sent = server.last.body["input"]
    assert sent[1:] == [
        {
            "type": "reasoning",
            "id": items[0]["id"],
            "summary": [{"type": "summary_text", "text": "Oslo first."}],
        },
        {
            "type": "function_call",
            "id": items[1]["id"],
            "call_id": "call_1",
            "name": "weather",
            "arguments": '{"city": "Oslo"}',
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
