"""The loopback server, driven by the real OpenAI and Anthropic SDKs (and by raw HTTP)."""

from __future__ import annotations

import asyncio
import doctest
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState

import rxllm
import rxllm.testing
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing import RecordedRequest, Script, Server, _encode, _record, _script, _server

MODEL = "test-model"
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the world"}]
PROMPT_WORDS = 5
CLOSE_NOTICED_WITHIN = 0.05


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as server:
        yield server


@pytest.fixture
def openai_client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def anthropic_client(server: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
async def async_openai(server: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
async def async_anthropic(server: Server) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.url, api_key="test", max_retries=0
    ) as client:
        yield client


OPENAI_DROPPED = (openai.APIConnectionError, httpx2.TransportError)
"""What the bare OpenAI SDK raises when the connection drops mid-body: its own
APIConnectionError (openai >= 3.x wraps it), or the transport's error (3.0 lets it through)."""


def openai_stream(client: openai.OpenAI, **params: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **params)


def anthropic_stream(client: anthropic.Anthropic) -> Any:
    return client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)


def openai_text(client: openai.OpenAI) -> str:
    return "".join(
        chunk.choices[0].delta.content or "" for chunk in openai_stream(client) if chunk.choices
    )


def tool_script() -> Script:
    return Script(
        [
            Chunk(thinking="The user wants "),
            Chunk(thinking="the weather."),
            "Let me ",
            "check.",
            Chunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="weather"),)),
            Chunk(tool_calls=(ToolCallDelta(index=0, arguments='{"city": '),)),
            Chunk(tool_calls=(ToolCallDelta(index=0, arguments='"Oslo"}'),)),
            Chunk(tool_calls=(ToolCallDelta(index=1, name="time", arguments="{}"),)),
        ]
    )


class TestScript:
    """A script normalizes its chunks and checks its options when it is made."""

    def test_text_is_split_into_word_pieces_keeping_all_whitespace(self) -> None:
        text = "Hello  there,\nworld. "
        script = Script(text)
        assert script.chunks == ("Hello  ", "there,\n", "world. ")
        assert "".join(script.chunks) == text

    def test_finish_reason_is_stop_or_tool_calls_unless_scripted(self) -> None:
        assert Script("Hi").finish_reason == "stop"
        assert tool_script().finish_reason == "tool_calls"
        assert Script(["Hi", Chunk(finish_reason="length")]).finish_reason == "length"

    def test_chunks_without_a_delta_are_not_streamed_as_chunks(self) -> None:
        usage = Usage(input_tokens=3, output_tokens=4, total_tokens=7)
        script = Script(["Hi", Chunk(finish_reason="length"), Chunk(usage=usage)])
        assert script.content == ("Hi",)
        assert script.usage == usage

    @pytest.mark.parametrize(
        "options",
        [
            {"delay": -1.0},
            {"first_delay": float("nan")},
            {"status": 200},
            {"drop_after": -1},
            {"hang_after": 1.5},
            {"ping_every": 0.0},
            {"raw_events": [{"type": "ping"}]},
        ],
    )
    def test_bad_options_are_refused(self, options: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="Script"):
            Script("Hi", **options)

    def test_raw_events_as_a_list_of_sse_strings_says_to_join_them(self) -> None:
        with pytest.raises(ValueError, match="join the events into one str"):
            Script(raw_events=["event: ping\ndata: {}\n\n"])  # type: ignore[list-item]

    def test_items_must_be_text_or_chunks(self) -> None:
        with pytest.raises(TypeError, match=r"str or rxllm\.Chunk"):
            Script(["Hi", 42])  # type: ignore[list-item]

    def test_repr_stays_short_for_long_scripts(self) -> None:
        text = repr(Script(["x"] * 100_000, delay=0.5))
        assert text == "Script(<100000 chunks>, delay=0.5)"

    def test_repr_shows_a_zero_count_that_is_set(self) -> None:
        assert repr(Script("a b", drop_after=0)) == "Script(<2 chunks>, drop_after=0)"


class TestOpenAIStream:
    """Scripts streamed to the OpenAI SDK parse into the chunks and completion scripted."""

    def test_text_arrives_as_one_chunk_per_piece(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("Hello there, world."))
        chunks = list(openai_stream(openai_client))
        deltas = [chunk.choices[0].delta for chunk in chunks]
        assert [delta.content for delta in deltas] == ["Hello ", "there, ", "world.", None]
        assert deltas[0].role == "assistant"
        assert [chunk.choices[0].finish_reason for chunk in chunks] == [None, None, None, "stop"]
        assert len({chunk.id for chunk in chunks}) == 1
        assert chunks[0].id.startswith("chatcmpl-")
        assert {chunk.model for chunk in chunks} == {MODEL}
        assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}

    def test_stream_helper_builds_the_final_completion_with_usage(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("Hello there."))
        with openai_client.chat.completions.stream(
            model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
        ) as stream:
            completion = stream.get_final_completion()
        assert completion.choices[0].message.content == "Hello there."
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert completion.usage.prompt_tokens == PROMPT_WORDS
        assert completion.usage.completion_tokens == 2
        assert completion.usage.total_tokens == PROMPT_WORDS + 2

    def test_usage_chunk_only_when_the_request_asks(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("Hi there"))
        assert all(chunk.usage is None for chunk in openai_stream(openai_client))
        chunks = list(openai_stream(openai_client, stream_options={"include_usage": True}))
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None

    def test_stream_state_accumulates_tool_calls(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(tool_script())
        state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
        for chunk in openai_stream(openai_client):
            state.handle_chunk(chunk)
        choice = state.get_final_completion().choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content == "Let me check."
        calls = choice.message.tool_calls or []
        assert [(call.id, call.function.name, call.function.arguments) for call in calls] == [
            ("call_1", "weather", '{"city": "Oslo"}'),
            (calls[1].id, "time", "{}"),
        ]
        assert calls[1].id  # made up when the script gives none: the SDK needs one

    def test_refusal_reasoning_and_audio_deltas(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(
            Script(
                [
                    Chunk(thinking="Hmm."),
                    Chunk(refusal="I can't."),
                    Chunk(audio=b"\x00\x01", audio_transcript="Hel"),
                    Chunk(audio_transcript="lo"),
                ]
            )
        )
        deltas = [chunk.choices[0].delta.to_dict() for chunk in openai_stream(openai_client)]
        assert deltas[0] == {"role": "assistant", "reasoning_content": "Hmm."}
        assert deltas[1] == {"refusal": "I can't."}
        assert deltas[2]["audio"]["data"] == "AAE="
        assert deltas[2]["audio"]["transcript"] == "Hel"
        assert deltas[2]["audio"]["id"].startswith("audio_")
        assert deltas[3] == {"audio": {"transcript": "lo"}}

    def test_scripted_usage_finish_reason_model_and_id(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        usage = Usage(input_tokens=10, output_tokens=20)
        server.push(
            Script(
                ["Hi", Chunk(finish_reason="length")],
                usage=usage,
                model="gpt-test",
                response_id="chatcmpl-42",
            )
        )
        chunks = list(openai_stream(openai_client, stream_options={"include_usage": True}))
        assert chunks[-2].choices[0].finish_reason == "length"
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (10, 20)
        assert chunks[-1].usage.total_tokens == 30
        assert {(chunk.id, chunk.model) for chunk in chunks} == {("chatcmpl-42", "gpt-test")}


class TestAnthropicStream:
    """Scripts streamed to the Anthropic SDK parse into the message scripted."""

    def test_text_events_follow_the_messages_protocol(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("Hello there, world."))
        events = list(anthropic_stream(anthropic_client))
        assert [event.type for event in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert events[0].message.id.startswith("msg_")
        assert events[0].message.usage.input_tokens == PROMPT_WORDS

    def test_final_message_has_the_text_stop_reason_and_usage(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("Hello there, world."))
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=MESSAGES
        ) as stream:
            message = stream.get_final_message()
        assert [block.type for block in message.content] == ["text"]
        assert message.content[0].text == "Hello there, world."  # type: ignore[union-attr]
        assert message.stop_reason == "end_turn"
        assert message.model == MODEL
        assert (message.usage.input_tokens, message.usage.output_tokens) == (PROMPT_WORDS, 3)

    def test_thinking_text_and_tool_calls_become_content_blocks(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(tool_script())
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=MESSAGES
        ) as stream:
            message = stream.get_final_message()
        thinking, text, weather, clock = message.content
        assert thinking.type == "thinking"
        assert thinking.thinking == "The user wants the weather."
        assert thinking.signature
        assert text.type == "text"
        assert text.text == "Let me check."
        assert weather.type == "tool_use"
        assert (weather.id, weather.name, weather.input) == ("call_1", "weather", {"city": "Oslo"})
        assert clock.type == "tool_use"
        assert (clock.name, clock.input) == ("time", {})
        assert clock.id.startswith("toolu_")
        assert message.stop_reason == "tool_use"

    @pytest.mark.parametrize(
        ("finish_reason", "stop_reason"),
        [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
            ("pause_turn", "pause_turn"),
        ],
    )
    def test_finish_reasons_map_to_stop_reasons(
        self,
        server: Server,
        anthropic_client: anthropic.Anthropic,
        finish_reason: str,
        stop_reason: str,
    ) -> None:
        server.push(Script(["Hi", Chunk(finish_reason=finish_reason)]))
        events = list(anthropic_stream(anthropic_client))
        assert events[-2].delta.stop_reason == stop_reason

    def test_scripted_usage_is_reported(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("Hi", usage=Usage(input_tokens=11, output_tokens=22)))
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=MESSAGES
        ) as stream:
            usage = stream.get_final_message().usage
        assert (usage.input_tokens, usage.output_tokens) == (11, 22)

    def test_interleaved_tool_call_fragments_are_refused_with_a_reason(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        calls = [ToolCallDelta(index=0, name="a"), ToolCallDelta(index=1, name="b")]
        server.push(Script([Chunk(tool_calls=(call,)) for call in [*calls, calls[0]]]))
        with pytest.raises(anthropic.BadRequestError, match="not contiguous"):
            list(anthropic_stream(anthropic_client))


class TestAsyncClients:
    """The async SDK clients read the same streams, and their cancellation is seen."""

    async def test_the_waits_have_forms_that_do_not_block_the_loop(self, server: Server) -> None:
        # The blocking waits, called on the loop's thread, kept the call they waited for
        # from running: a TimeoutError, or a close seen only after 146 chunks.
        server.push(Script(["a"] * 200, delay=0.005))
        llm = rxllm.openai("m", base_url=server.url, api_key="test")
        task = asyncio.ensure_future(
            rxllm.acollect(llm.stream("hi").pipe(ops.take_until(lambda c: c.content == "a")))
        )
        request = await server.wait_for_request_async(timeout=5)
        await task
        assert await request.wait_closed_async(timeout=5)
        assert request.chunks_written < 20

    def test_a_recorded_request_shows_no_credential(self, server: Server) -> None:
        server.push(Script("Hi"))
        rxllm.collect(rxllm.openai("m", base_url=server.url, api_key="sk-secret-1").stream("x"))
        assert "sk-secret-1" not in repr(server.last)
        assert "sk-secret-1" not in repr(server.last.headers)  # an assert diff on them
        assert server.last.headers["authorization"] == "Bearer sk-secret-1"  # kept for asserts

    async def test_async_openai_reads_the_text(
        self, server: Server, async_openai: openai.AsyncOpenAI
    ) -> None:
        server.push(Script("Hello there.", delay=0.001))
        stream = await async_openai.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        assert text == "Hello there."
        assert server.last.wait_done()
        assert server.last.completed_normally

    async def test_async_anthropic_final_message(
        self, server: Server, async_anthropic: anthropic.AsyncAnthropic
    ) -> None:
        server.push(tool_script())
        async with async_anthropic.messages.stream(
            model=MODEL, max_tokens=100, messages=MESSAGES
        ) as stream:
            message = await stream.get_final_message()
        assert [block.type for block in message.content] == [
            "thinking",
            "text",
            "tool_use",
            "tool_use",
        ]

    async def test_async_openai_close_is_noticed_at_once(
        self, server: Server, async_openai: openai.AsyncOpenAI
    ) -> None:
        server.push(Script(["word "] * 100, delay=0.05))
        stream = await async_openai.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        received = 0
        async for _chunk in stream:
            received += 1
            if received == 2:
                break
        closed_at = time.monotonic()
        await stream.close()
        recorded = server.last
        assert await asyncio.to_thread(recorded.wait_closed)
        assert recorded.client_closed_at is not None
        assert recorded.client_closed_at - closed_at < CLOSE_NOTICED_WITHIN
        assert recorded.chunks_after_close == 0
        assert recorded.chunks_written == 2


class TestHTTPErrors:
    """A scripted status is an HTTP error in the provider's format, mapped by the SDKs."""

    def test_rate_limit_with_retry_after(
        self,
        server: Server,
        openai_client: openai.OpenAI,
        anthropic_client: anthropic.Anthropic,
    ) -> None:
        server.push(Script(status=429, headers={"retry-after": "2"}))
        with pytest.raises(openai.RateLimitError) as openai_error:
            openai_stream(openai_client)
        assert openai_error.value.response.headers["retry-after"] == "2"
        assert openai_error.value.code == "rate_limit_exceeded"
        with pytest.raises(anthropic.RateLimitError) as anthropic_error:
            anthropic_stream(anthropic_client)
        assert anthropic_error.value.response.headers["retry-after"] == "2"
        assert anthropic_error.value.body == {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "Rate limit exceeded (scripted)."},
        }
        assert server.last.status == 429
        assert server.last.finished
        assert not server.last.completed_normally

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, openai.BadRequestError),
            (401, openai.AuthenticationError),
            (404, openai.NotFoundError),
            (500, openai.InternalServerError),
            (529, openai.InternalServerError),
        ],
    )
    def test_openai_status_errors(
        self,
        server: Server,
        openai_client: openai.OpenAI,
        status: int,
        error: type[openai.APIStatusError],
    ) -> None:
        server.push(Script("never sent", status=status))
        with pytest.raises(error) as raised:
            openai_stream(openai_client)
        assert raised.value.status_code == status
        assert isinstance(raised.value.body, dict)
        assert set(raised.value.body) == {"message", "type", "param", "code"}

    @pytest.mark.parametrize(
        ("status", "error", "error_type"),
        [
            (400, anthropic.BadRequestError, "invalid_request_error"),
            (401, anthropic.AuthenticationError, "authentication_error"),
            (500, anthropic.InternalServerError, "api_error"),
            (529, anthropic.OverloadedError, "overloaded_error"),
        ],
    )
    def test_anthropic_status_errors(
        self,
        server: Server,
        anthropic_client: anthropic.Anthropic,
        status: int,
        error: type[anthropic.APIStatusError],
        error_type: str,
    ) -> None:
        server.push(Script("never sent", status=status))
        with pytest.raises(error) as raised:
            anthropic_stream(anthropic_client)
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["error"]["type"] == error_type

    def test_error_body_replaces_the_provider_body(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        body = {"error": {"message": "Custom.", "type": "custom", "param": None, "code": "x"}}
        server.push(Script(status=503, error_body=body))
        with pytest.raises(openai.InternalServerError, match="Custom") as raised:
            openai_stream(openai_client)
        assert raised.value.code == "x"

    def test_without_a_script_the_answer_is_a_400_that_says_what_to_do(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        # A 400, which no client retries: a forgotten push is the test's own mistake (a
        # 500 was retried as an outage, 9 requests under ops.retry).
        with pytest.raises(openai.BadRequestError, match=r"server\.push"):
            openai_stream(openai_client)
        assert server.last.status == 400
        assert len(server.requests) == 1

    @pytest.mark.parametrize(
        ("method", "path", "body", "status"),
        [
            ("POST", "/v1/embeddings", {"stream": True}, 404),
            ("GET", "/v1/messages", None, 405),
            ("POST", "/v1/chat/completions", {"model": MODEL}, 400),
            ("POST", "/v1/messages", [1, 2], 400),
        ],
    )
    def test_requests_that_are_not_streams_get_json_errors(
        self, server: Server, method: str, path: str, body: Any, status: int
    ) -> None:
        server.push(Script("Hi"))
        response = httpx2.request(method, server.url + path, json=body)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["message"]
        assert server.requests == []


class TestErrorEvents:
    """An error event after the chunks raises in the SDKs, after the chunks arrived."""

    def test_openai_error_event_is_an_api_error(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("Hello there", error_event="server_error"))
        received: list[str] = []
        with pytest.raises(openai.APIError, match="server had an error") as raised:
            for chunk in openai_stream(openai_client):
                received.append(chunk.choices[0].delta.content)
        assert received == ["Hello ", "there"]
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["type"] == "server_error"
        assert server.last.chunks_written == 2
        assert server.last.finished
        assert not server.last.completed_normally

    def test_anthropic_error_event_is_an_api_status_error(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("Hello there", error_event="overloaded_error"))
        with pytest.raises(anthropic.APIStatusError) as raised:
            list(anthropic_stream(anthropic_client))
        assert raised.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }

    def test_an_error_object_is_sent_as_given(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        error = {"message": "Slow down.", "type": "rate_limit_error", "param": None, "code": "x"}
        server.push(Script("Hi", error_event=error))
        with pytest.raises(openai.APIError, match="Slow down") as raised:
            list(openai_stream(openai_client))
        assert raised.value.body == error


class TestBrokenStreams:
    """Malformed events, dropped and hanging connections reach the client as such."""

    def test_a_drop_fails_the_openai_stream_after_the_chunks(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("one two three four", drop_after=2))
        received: list[str] = []
        with pytest.raises(OPENAI_DROPPED):
            for chunk in openai_stream(openai_client):
                received.append(chunk.choices[0].delta.content)
        assert received == ["one ", "two "]
        recorded = server.last
        assert recorded.wait_done()
        assert (recorded.chunks_written, recorded.finished) == (2, True)
        assert not recorded.completed_normally

    def test_a_drop_is_an_incomplete_body_for_anthropic(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("one two three four", drop_after=3))
        received: list[str] = []
        # anthropic < 2.17 lets the transport's error through, later ones wrap it
        with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)) as drop:
            for event in anthropic_stream(anthropic_client):
                if event.type == "content_block_delta":
                    received.append(event.delta.text)
        assert received == ["one ", "two ", "three "]
        error = drop.value
        transport = error if isinstance(error, httpx2.RemoteProtocolError) else error.__cause__
        assert isinstance(transport, httpx2.RemoteProtocolError)
        assert "incomplete" in str(transport)

    @pytest.mark.parametrize("protocol", ["openai", "anthropic"])
    def test_a_malformed_event_fails_to_parse(
        self,
        server: Server,
        openai_client: openai.OpenAI,
        anthropic_client: anthropic.Anthropic,
        protocol: str,
    ) -> None:
        server.push(Script("one two three", malformed_after=1))
        with pytest.raises(json.JSONDecodeError):
            if protocol == "openai":
                list(openai_stream(openai_client))
            else:
                list(anthropic_stream(anthropic_client))
        assert server.last.chunks_written == 1

    @pytest.mark.parametrize(
        ("path", "ping"),
        [
            ("/chat/completions", b": keep-alive\n\n"),
            ("/v1/messages", b'event: ping\ndata: {"type": "ping"}\n\n'),
        ],
    )
    def test_a_hang_sends_keep_alives_until_the_client_leaves(
        self, server: Server, path: str, ping: bytes
    ) -> None:
        server.push(Script("one two three", hang_after=1, ping_every=0.01))
        body = b""
        with httpx2.stream("POST", server.url + path, json={"stream": True}) as response:
            for data in response.iter_raw():
                body += data
                if body.count(ping) >= 3:
                    break
        recorded = server.last
        assert recorded.wait_closed()
        assert recorded.pings_written >= 3
        assert recorded.chunks_written == 1
        assert b"two" not in body

    def test_a_slow_stream_pings_between_chunks(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("one two", first_delay=0.06, delay=0.06, ping_every=0.02))
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=MESSAGES
        ) as stream:
            assert stream.get_final_text() == "one two"
        assert server.last.pings_written >= 4


class TestCancellation:
    """The server notices a client that leaves at once, and writes nothing after it."""

    def test_openai_client_closing_between_chunks(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script(["word "] * 100, delay=0.05))
        stream = openai_stream(openai_client)
        chunks = iter(stream)
        next(chunks), next(chunks)
        closed_at = time.monotonic()
        stream.close()
        recorded = server.last
        assert recorded.wait_closed()
        assert recorded.client_closed_at is not None
        assert recorded.client_closed_at - closed_at < CLOSE_NOTICED_WITHIN
        assert recorded.chunks_after_close == 0
        assert recorded.chunks_written == 2
        assert not recorded.finished

    def test_anthropic_client_closing_between_chunks(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script(["word "] * 100, delay=0.05))
        stream = anthropic_stream(anthropic_client)
        events = iter(stream)
        for _ in range(4):  # message_start, block start, two deltas
            next(events)
        closed_at = time.monotonic()
        stream.close()
        recorded = server.last
        assert recorded.wait_closed()
        assert recorded.client_closed_at is not None
        assert recorded.client_closed_at - closed_at < CLOSE_NOTICED_WITHIN
        assert recorded.chunks_after_close == 0
        assert recorded.chunks_written == 2

    @pytest.mark.parametrize(
        "script",
        [Script("one two", hang_after=1), Script("one two", hang_after=1, ping_every=0.5)],
    )
    def test_client_closing_during_a_hang(
        self, server: Server, openai_client: openai.OpenAI, script: Script
    ) -> None:
        server.push(script)
        stream = openai_stream(openai_client)
        next(iter(stream))
        time.sleep(0.02)  # the server is hanging now, writing nothing
        closed_at = time.monotonic()
        stream.close()
        recorded = server.last
        assert recorded.wait_closed()
        assert recorded.client_closed_at is not None
        assert recorded.client_closed_at - closed_at < CLOSE_NOTICED_WITHIN
        assert (recorded.chunks_written, recorded.chunks_after_close) == (1, 0)

    def test_client_closing_before_the_first_chunk(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        server.push(Script("one two", first_delay=5.0))
        stream = anthropic_stream(anthropic_client)  # returns once the headers arrived
        closed_at = time.monotonic()
        stream.close()
        recorded = server.last
        assert recorded.wait_closed()
        assert recorded.client_closed_at is not None
        assert recorded.client_closed_at - closed_at < CLOSE_NOTICED_WITHIN
        assert (recorded.chunks_written, recorded.events_written) == (0, 0)
        assert recorded.first_byte_at is None

    def test_client_leaving_a_fast_stream_stops_it(self, server: Server) -> None:
        server.push(Script(["word "] * 100_000))
        with httpx2.stream("POST", server.url + "/chat/completions", json={"stream": True}) as r:
            next(r.iter_raw())
        recorded = server.last
        assert recorded.wait_done()
        assert recorded.client_closed_at is not None
        assert recorded.chunks_written < 100_000
        assert not recorded.finished

    def test_a_stream_read_to_the_end_is_not_a_close(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("one two three", delay=0.001))
        assert openai_text(openai_client) == "one two three"
        recorded = server.last
        assert not recorded.wait_closed()
        assert recorded.client_closed_at is None
        assert recorded.completed_normally


class TestRecording:
    """Every request is recorded with its body and the server's progress on it."""

    def test_request_protocol_path_headers_and_body(
        self,
        server: Server,
        openai_client: openai.OpenAI,
        anthropic_client: anthropic.Anthropic,
    ) -> None:
        server.push(Script("Hi"))
        openai_text(openai_client)
        list(anthropic_stream(anthropic_client))
        first, second = server.requests
        assert (first.protocol, first.path) == ("openai", "/chat/completions")
        assert first.headers["authorization"] == "Bearer test"
        assert first.body == {"model": MODEL, "messages": MESSAGES, "stream": True}
        assert (second.protocol, second.path) == ("anthropic", "/v1/messages")
        assert "anthropic-version" in second.headers
        assert second.body["max_tokens"] == 100

    @pytest.mark.parametrize(
        ("protocol", "events"),
        [("openai", 3 + 2), ("anthropic", 1 + 1 + 3 + 1 + 2)],
    )
    def test_counts_and_times_of_a_whole_stream(
        self,
        server: Server,
        openai_client: openai.OpenAI,
        anthropic_client: anthropic.Anthropic,
        protocol: str,
        events: int,
    ) -> None:
        server.push(Script("one two three", first_delay=0.02))
        if protocol == "openai":
            openai_text(openai_client)
        else:
            list(anthropic_stream(anthropic_client))
        recorded = server.last
        assert recorded.chunks_written == 3
        assert recorded.events_written == events
        assert recorded.finished
        assert recorded.completed_normally
        assert recorded.first_byte_at is not None
        assert recorded.first_byte_at - recorded.started_at >= 0.02

    def test_scripts_are_taken_in_order_and_the_last_one_is_reused(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("first"))
        server.push("second")
        assert [openai_text(openai_client) for _ in range(3)] == ["first", "second", "second"]

    def test_wait_for_request_returns_each_request_once(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        server.push(Script("Hi", first_delay=0.05))
        worker = threading.Thread(target=lambda: [openai_text(openai_client) for _ in range(2)])
        worker.start()
        first = server.wait_for_request()
        second = server.wait_for_request()
        worker.join()
        assert first is not second
        assert server.requests == [first, second]
        with pytest.raises(TimeoutError, match="no new request"):
            server.wait_for_request(timeout=0.01)

    def test_last_without_a_request_is_a_lookup_error(self, server: Server) -> None:
        with pytest.raises(LookupError, match="no request has reached the server"):
            _ = server.last

    def test_requests_is_a_snapshot(self, server: Server, openai_client: openai.OpenAI) -> None:
        server.push(Script("Hi"))
        before = server.requests
        openai_text(openai_client)
        assert before == []
        assert len(server.requests) == 1
        assert isinstance(server.last, RecordedRequest)


class TestRawEvents:
    """Recorded events are replayed verbatim, with the script's timing and faults."""

    def test_openai_event_dicts_get_a_done(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {
                "id": "chatcmpl-rec",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-rec",
                "choices": [choice],
            }

        server.push(
            Script(
                raw_events=[
                    chunk({"role": "assistant", "content": ""}),
                    chunk({"content": "Recorded."}),
                    chunk({}, "stop"),
                ]
            )
        )
        assert openai_text(openai_client) == "Recorded."
        recorded = server.last
        assert (recorded.chunks_written, recorded.events_written) == (3, 4)
        assert recorded.completed_normally

    def test_anthropic_event_dicts_are_named_by_their_type(
        self, server: Server, anthropic_client: anthropic.Anthropic
    ) -> None:
        message: dict[str, Any] = {
            "id": "msg_rec",
            "type": "message",
            "role": "assistant",
            "model": "claude-rec",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        }
        server.push(
            Script(
                raw_events=[
                    {"type": "message_start", "message": message},
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "Recorded."},
                    },
                    {"type": "content_block_stop", "index": 0},
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": 2},
                    },
                    {"type": "message_stop"},
                ]
            )
        )
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=100, messages=MESSAGES
        ) as stream:
            message_out = stream.get_final_message()
        assert message_out.id == "msg_rec"
        assert message_out.content[0].text == "Recorded."  # type: ignore[union-attr]

    def test_a_recorded_body_is_written_as_is_one_event_at_a_time(
        self, server: Server, openai_client: openai.OpenAI
    ) -> None:
        pieces = ["Re", "cor", "ded."]
        body = "".join(
            "data: "
            + json.dumps(
                {
                    "id": "chatcmpl-rec",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "gpt-rec",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
            + "\r\n\r\n"
            for piece in pieces
        )
        server.push(Script(raw_events=body + "data: [DONE]\n\n", delay=0.02))
        started = time.monotonic()
        assert openai_text(openai_client) == "Recorded."
        assert time.monotonic() - started >= 3 * 0.02
        assert server.last.events_written == 4

    def test_faults_apply_to_raw_events(self, server: Server, openai_client: openai.OpenAI) -> None:
        event = {
            "id": "chatcmpl-rec",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-rec",
            "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
        }
        server.push(Script(raw_events=[event] * 5, drop_after=2))
        with pytest.raises(OPENAI_DROPPED):
            openai_text(openai_client)
        assert server.last.chunks_written == 2


class TestServer:
    """The server binds loopback only, serves many streams at once and stops promptly."""

    def test_binds_loopback_on_an_ephemeral_port(self) -> None:
        with Server() as first, Server() as second:
            assert first.url.startswith("http://127.0.0.1:")
            assert first.url != second.url
            assert first._listener is not None
            assert first._listener.getsockname()[0] == "127.0.0.1"

    def test_close_ends_hanging_streams_promptly(self) -> None:
        server = Server(Script("one two", hang_after=1, ping_every=0.01)).start()
        with openai.OpenAI(base_url=server.url, api_key="test", max_retries=0) as client:
            stream = openai_stream(client)
            chunks = iter(stream)
            next(chunks)
            started = time.monotonic()
            server.close()
            assert time.monotonic() - started < 1.0
            with pytest.raises(OPENAI_DROPPED):
                list(chunks)
        recorded = server.last
        assert recorded.wait_done(timeout=0)
        assert recorded.client_closed_at is None
        with pytest.raises(RuntimeError, match="closed"):
            server.start()

    def test_serves_many_concurrent_streams(self, server: Server) -> None:
        server.push(Script(["word "] * 20, delay=0.01))

        async def stream_all() -> list[bytes]:
            limits = httpx2.Limits(max_connections=300)
            async with httpx2.AsyncClient(limits=limits, timeout=30) as client:

                async def one() -> bytes:
                    body = {"stream": True}
                    async with client.stream("POST", server.url + "/v1/messages", json=body) as r:
                        return b"".join([data async for data in r.aiter_raw()])

                return await asyncio.gather(*[one() for _ in range(300)])

        bodies = asyncio.run(stream_all())
        assert all(
            body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
            for body in bodies
        )
        assert len(server.requests) == 300
        assert all(recorded.completed_normally for recorded in server.requests)

    def test_writes_a_100k_chunk_stream_within_two_seconds(self, server: Server) -> None:
        server.push(Script(["word "] * 100_000))
        with httpx2.stream("POST", server.url + "/chat/completions", json={"stream": True}) as r:
            size = sum(len(data) for data in r.iter_raw())
        recorded = server.last
        assert recorded.wait_done()
        assert recorded.chunks_written == 100_000
        assert recorded.completed_normally
        assert size > 100_000 * 100
        assert time.monotonic() - recorded.started_at < 2.0


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    with Server() as server:
        yield server


class TestProperties:
    """Whatever the text pieces, each SDK puts them back together exactly."""

    @settings(max_examples=30, deadline=None)
    @given(pieces=st.lists(st.text(min_size=1), max_size=12))
    def test_openai_deltas_concatenate_to_the_text(
        self, shared_server: Server, pieces: list[str]
    ) -> None:
        shared_server.push(Script(pieces))
        with openai.OpenAI(base_url=shared_server.url, api_key="test", max_retries=0) as client:
            state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
            for chunk in openai_stream(client):
                state.handle_chunk(chunk)
        assert (state.get_final_completion().choices[0].message.content or "") == "".join(pieces)

    @settings(max_examples=30, deadline=None)
    @given(pieces=st.lists(st.text(min_size=1), max_size=12))
    def test_anthropic_deltas_concatenate_to_the_text(
        self, shared_server: Server, pieces: list[str]
    ) -> None:
        shared_server.push(Script(pieces))
        url = shared_server.url
        with (
            anthropic.Anthropic(base_url=url, api_key="test", max_retries=0) as client,
            client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream,
        ):
            content = stream.get_final_message().content
        assert "".join(block.text for block in content if block.type == "text") == "".join(pieces)


class TestPackage:
    """The package exports its three names, each documented with examples that run."""

    def test_exports(self) -> None:
        assert rxllm.testing.__all__ == ["RecordedRequest", "Script", "Server"]
        for name in rxllm.testing.__all__:
            assert getattr(rxllm.testing, name).__doc__

    @pytest.mark.parametrize("module", [rxllm.testing, _script, _encode, _record, _server])
    def test_docstring_examples(self, module: ModuleType) -> None:
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failures == 0
        assert tried > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"usage": {"input_tokens": 3}}, "rxllm.Usage"),
        ({"error_event": 500}, "error type"),
        ({"error_body": 42}, "error_body"),
        ({"status": "429"}, "int HTTP status"),
        ({"raw_events": {"type": "ping"}}, "wrap a single event in a list"),
    ],
)
def test_script_options_of_the_wrong_type_fail_when_the_script_is_made(
    kwargs: dict[str, Any], match: str
) -> None:
    # They used to crash the server's thread later: the client saw a dropped connection.
    with pytest.raises(TypeError, match=match):
        Script("Hi", **kwargs) if "raw_events" not in kwargs else Script(**kwargs)
