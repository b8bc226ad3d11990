"""Both providers through the real SDKs against the loopback server: content, requests,
every error class, and cancellation as the server records it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic as anthropic_sdk
import httpx2
import openai as openai_sdk
import pytest
import reactivex
from pydantic import BaseModel, Field
from reactivex import operators as rx

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta
from rxllm.testing import Script, Server

PROVIDERS = ["openai", "anthropic"]
KEY = "sk-test-secret-key-0123456789"


def make(provider: str, server: Server, **kw: object) -> rxllm.LLM:
    factory: Callable[..., rxllm.LLM] = getattr(rxllm, provider)
    kw.setdefault("max_retries", 0)
    return factory("test-model", base_url=server.url, api_key=KEY, **kw)


def run(stream: reactivex.Observable[Chunk], mode: str) -> rxllm.Response:
    if mode == "sync":
        return rxllm.collect(stream, timeout=10)
    return asyncio.run(rxllm.acollect(stream, timeout=10))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_usage_and_stop(server: Server, provider: str, mode: str) -> None:
    server.push(
        Script(
            "The quick brown fox jumps.",
            usage=rxllm.Usage(input_tokens=9, output_tokens=5, total_tokens=14),
        )
    )
    response = run(make(provider, server).stream("Tell me"), mode)
    assert response.text == "The quick brown fox jumps."
    assert response.finish_reason == "stop"
    assert response.usage == rxllm.Usage(input_tokens=9, output_tokens=5, total_tokens=14)
    assert response.provider == provider
    assert response.model == "test-model"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_usage_counts_cached_and_reasoning_tokens(server: Server, provider: str, mode: str) -> None:
    # A prompt of 5210 tokens, 5000 read from the cache and 200 written to it: Anthropic
    # reports input_tokens=10 plus the two cache counts, OpenAI prompt_tokens=5210 with
    # cached_tokens=5000 and cache_write_tokens=200. rxllm's input_tokens is the whole prompt
    # for both. Of the 40 output tokens 30 were reasoning (OpenAI reasoning_tokens,
    # Anthropic output_tokens_details.thinking_tokens).
    usage = rxllm.Usage(
        input_tokens=5210,
        output_tokens=40,
        total_tokens=5250,
        cache_read_tokens=5000,
        cache_write_tokens=200,
        reasoning_tokens=30,
    )
    server.push(Script("Cached.", usage=usage))
    response = run(make(provider, server).stream("again"), mode)
    assert response.usage == usage
    sent = response.raw.usage  # the SDK's own object says the same
    if provider == "anthropic":
        assert (sent.input_tokens, sent.cache_read_input_tokens) == (10, 5000)
        assert sent.cache_creation_input_tokens == 200
        assert sent.output_tokens_details.thinking_tokens == 30
    else:
        assert sent.prompt_tokens == 5210
        assert sent.prompt_tokens_details.cached_tokens == 5000
        assert sent.prompt_tokens_details.cache_write_tokens == 200
        assert sent.completion_tokens_details.reasoning_tokens == 30


def test_anthropic_usage_reported_again_by_message_delta(server: Server) -> None:
    # The Messages API repeats the prompt's counts (cumulative, some null) in message_delta.
    events = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":'
        '"message","role":"assistant","model":"test-model","content":[],"stop_reason":null,'
        '"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1,'
        '"cache_read_input_tokens":100}}}\n\n'
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        '"content_block":{"type":"text","text":""}}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        '"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
        '"end_turn","stop_sequence":null},"usage":{"input_tokens":3,"output_tokens":7,'
        '"cache_read_input_tokens":100,"cache_creation_input_tokens":null}}\n\n'
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    server.push(Script(raw_events=events))
    response = rxllm.collect(make("anthropic", server).stream("hi"), timeout=10)
    assert response.usage == rxllm.Usage(
        input_tokens=103, output_tokens=7, total_tokens=110, cache_read_tokens=100
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parallel_tool_calls(server: Server, provider: str) -> None:
    server.push(
        Script(
            [
                "Checking.",
                Chunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="weather"),)),
                Chunk(tool_calls=(ToolCallDelta(index=0, arguments='{"city": '),)),
                Chunk(tool_calls=(ToolCallDelta(index=0, arguments='"Oslo"}'),)),
                Chunk(
                    tool_calls=(
                        ToolCallDelta(index=1, id="call_2", name="time", arguments='{"tz": "CET"}'),
                    )
                ),
            ]
        )
    )
    response = rxllm.collect(make(provider, server).stream("weather?"), timeout=10)
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
        ("call_1", "weather", {"city": "Oslo"}),
        ("call_2", "time", {"tz": "CET"}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.text == "Checking."


def test_openai_refusal_and_length(server: Server) -> None:
    server.push(
        Script(
            [Chunk(refusal="I can't help"), Chunk(refusal=" with that.", finish_reason="length")]
        )
    )
    response = rxllm.collect(make("openai", server).stream("x"), timeout=10)
    assert response.refusal == "I can't help with that."
    assert response.finish_reason == "length"


def test_anthropic_thinking_and_max_tokens(server: Server) -> None:
    server.push(
        Script(
            [
                Chunk(thinking="Let me think. "),
                Chunk(thinking="Done."),
                Chunk(content="Answer", finish_reason="length"),
            ]
        )
    )
    response = rxllm.collect(make("anthropic", server).stream("x"), timeout=10)
    assert response.thinking == "Let me think. Done."
    assert response.text == "Answer"
    assert response.finish_reason == "length"
    assert response.raw.stop_reason == "max_tokens"
    assert [b.type for b in response.raw.content] == ["thinking", "text"]


def test_openai_response_raw_equals_the_sdk_accumulator(server: Server) -> None:
    script = Script(["Hello", " world"], response_id="chatcmpl-fixed")
    server.push(script)
    ours = rxllm.collect(make("openai", server).stream("hi"), timeout=10).raw
    server.push(script)
    client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    with client.chat.completions.stream(
        model="test-model",
        messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_usage": True},
    ) as s:
        for _ in s:
            pass
        theirs = s.current_completion_snapshot
    ours_dump = ours.model_dump(exclude={"created"})
    theirs_dump = theirs.model_dump(exclude={"created"})
    assert ours_dump == theirs_dump


def test_anthropic_response_raw_equals_the_sdk_accumulator(server: Server) -> None:
    script = Script(
        [
            Chunk(thinking="hm"),
            "Hello",
            " world",
            Chunk(tool_calls=(ToolCallDelta(index=0, id="t1", name="f", arguments='{"a": 1}'),)),
        ],
        response_id="msg_fixed",
    )
    server.push(script)
    ours = rxllm.collect(make("anthropic", server).stream("hi"), timeout=10).raw
    server.push(script)
    client = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    with client.messages.stream(
        model="test-model", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        theirs = s.get_final_message()
    assert ours.model_dump() == theirs.model_dump()


def test_openai_request_carries_everything_in_its_own_format(server: Server) -> None:
    class City(BaseModel):
        name: str

    def weather(city: str) -> str:
        """Current weather."""
        return "sunny"

    server.push(Script("ok"))
    llm = make("openai", server, temperature=0.3)
    rxllm.collect(
        llm.stream(
            "hi",
            system="Be brief.",
            tools=[weather],
            response_format=City,
            audio={"voice": "alloy", "format": "pcm16"},
            max_tokens=50,
        ),
        timeout=10,
    )
    body = server.last.body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.3 and body["max_tokens"] == 50
    assert body["tools"][0]["function"]["name"] == "weather"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["audio"] == {"voice": "alloy", "format": "pcm16"}
    assert body["modalities"] == ["text", "audio"]
    assert server.last.headers["authorization"] == f"Bearer {KEY}"


def test_anthropic_sampling_parameters_reach_the_request_body(server: Server) -> None:
    # anthropic 2.x's messages.create lists no sampling parameters; API.md's own example of
    # a default is temperature, so rxllm sends them as the Messages API names them.
    server.push(Script("ok"))
    llm = make("anthropic", server, temperature=0.2, top_k=5)
    rxllm.collect(llm.stream("hi", top_p=0.9, extra_body={"top_k": 7}), timeout=10)
    body = server.last.body
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 7)
    with pytest.raises(ValueError, match="no parameter 'temprature'"):
        llm.stream("hi", temprature=0.2)
    with pytest.raises(ValueError, match=r"temperature goes from 0 to 1, not 1\.5"):
        llm.stream("hi", temperature=1.5)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streams_own_arguments_as_defaults_apply_to_every_call(
    server: Server, provider: str
) -> None:
    def weather(city: str) -> str:
        """Current weather."""
        return "sunny"

    llm = make(provider, server, system="Be brief.", tools=[weather], response_format=Verdict)
    server.push(Script('{"guilty": false, "reason": "none"}'))
    rxllm.collect(llm.stream("hi"), timeout=10)
    body = server.last.body
    if provider == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["tools"][0]["function"]["name"] == "weather"
        assert body["response_format"]["json_schema"]["name"] == "Verdict"
    else:
        assert body["system"] == "Be brief."
        assert body["tools"][0]["name"] == "weather"
        assert body["output_config"]["format"]["type"] == "json_schema"
    server.push(Script("ok"))
    rxllm.collect(llm.stream("hi", system="Be long."), timeout=10)  # a call's own wins
    sent = server.last.body
    assert "Be long." in str(sent.get("system", sent["messages"][0]))


class Lookup(BaseModel):
    """Find a customer.

    Longer notes that stay out of the description."""

    customer_id: str = Field(description="The id from the CRM, e.g. cus_123")
    limit: int = Field(3, ge=1, description="How many records")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_pydantic_model_as_a_tool_keeps_its_field_descriptions(
    server: Server, provider: str
) -> None:
    server.push(Script("ok"))
    rxllm.collect(make(provider, server).stream("hi", tools=[Lookup]), timeout=10)
    (tool,) = server.last.body["tools"]
    spec = tool["function"] if provider == "openai" else tool
    schema = spec["parameters"] if provider == "openai" else spec["input_schema"]
    assert spec["name"] == "Lookup" and spec["description"] == "Find a customer."
    assert schema["properties"]["customer_id"] == {
        "description": "The id from the CRM, e.g. cus_123",
        "type": "string",
    }
    assert schema["properties"]["limit"]["minimum"] == 1
    assert schema["required"] == ["customer_id"]


class Verdict(BaseModel):
    guilty: bool
    reason: str


def test_anthropic_request_carries_everything_in_its_own_format(server: Server) -> None:
    server.push(Script("ok"))
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
    }
    rxllm.collect(
        make("anthropic", server).stream(
            messages=[{"role": "system", "content": "Sys."}, {"role": "user", "content": "hi"}],
            system="Top.",
            tools=[tool],
            thinking={"type": "enabled", "budget_tokens": 1024},
            response_format=Verdict,
        ),
        timeout=10,
    )
    body = server.last.body
    output_format = body["output_config"]["format"]
    assert output_format["type"] == "json_schema"
    assert set(output_format["schema"]["properties"]) == {"guilty", "reason"}
    assert body["system"] == "Top.\n\nSys."
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 4096
    assert body["tools"] == [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    headers = server.last.headers
    assert KEY in (headers.get("x-api-key", "") + headers.get("authorization", ""))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "error_class", "retryable"),
    [
        (400, rxllm.BadRequestError, False),
        (401, rxllm.AuthenticationError, False),
        (403, rxllm.PermissionDeniedError, False),
        (404, rxllm.NotFoundError, False),
        (429, rxllm.RateLimitError, True),
        (500, rxllm.ServerError, True),
        (529, rxllm.ServerError, True),
    ],
)
def test_http_status_errors(
    server: Server, provider: str, status: int, error_class: type, retryable: bool
) -> None:
    server.push(Script("x", status=status, headers={"retry-after": "7"}))
    with pytest.raises(error_class) as caught:
        rxllm.collect(make(provider, server).stream("hi"), timeout=10)
    error = caught.value
    assert error.retryable is retryable
    assert error.provider == provider
    assert error.status_code == status
    assert error.partial is None
    assert isinstance(error.__cause__, openai_sdk.APIStatusError | anthropic_sdk.APIStatusError)
    assert KEY not in str(error) and KEY not in repr(error)
    if status == 429:
        assert error.retry_after == 7.0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_sdk_retries_before_the_stream_with_max_retries(server: Server, provider: str) -> None:
    server.push(Script("x", status=500, headers={"retry-after-ms": "1"}))
    with pytest.raises(rxllm.ServerError):
        rxllm.collect(make(provider, server, max_retries=2).stream("hi"), timeout=20)
    assert len(server.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("kind", "retryable", "also"),
    [
        ("overloaded_error", True, rxllm.ServerError),
        ("rate_limit_error", True, rxllm.RateLimitError),
        ("invalid_request_error", False, rxllm.StreamError),
        ("timeout_error", True, rxllm.ServerError),  # Anthropic's 504 type
        # OpenAI's rate-limit object: its type names the limit, its code says what it is
        (
            {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"},
            True,
            rxllm.RateLimitError,
        ),
        # vLLM and other OpenAI-compatible servers
        (
            {"object": "error", "message": "boom", "type": "InternalServerError", "code": 500},
            True,
            rxllm.ServerError,
        ),
        ({"message": "busy", "type": None, "code": 503}, True, rxllm.ServerError),
        ({"message": "bad", "type": "BadRequestError", "code": 400}, False, rxllm.StreamError),
    ],
)
def test_error_event_mid_stream_keeps_the_partial(
    server: Server, provider: str, kind: str | dict[str, object], retryable: bool, also: type
) -> None:
    server.push(Script(["Hello", " there"], error_event=kind))
    with pytest.raises(rxllm.StreamError) as caught:
        rxllm.collect(make(provider, server).stream("hi"), timeout=10)
    assert isinstance(caught.value, also)
    assert caught.value.retryable is retryable
    assert caught.value.partial is not None and caught.value.partial.text == "Hello there"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_dropped_connection_is_stream_interrupted_with_partial(
    server: Server, provider: str, mode: str, transport: str
) -> None:
    server.push(Script(["a", "b", "c", "d"], drop_after=2))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        run(make(provider, server).stream("hi"), mode)
    assert caught.value.retryable
    assert caught.value.partial is not None and caught.value.partial.text == "ab"
    # the cause is what the installed bare SDK's stream raises there (OpenAI wraps the
    # transport's error in APIConnectionError; Anthropic let it through before 2.17)
    server.push(Script(["a", "b", "c", "d"], drop_after=2))
    with pytest.raises(Exception) as bare:
        if provider == "openai":
            client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
            list(client.chat.completions.create(model="m", messages=[], stream=True))
        else:
            sdk = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
            list(sdk.messages.create(model="m", max_tokens=9, messages=[], stream=True))
    cause = caught.value.__cause__
    wrapped = not isinstance(bare.value, httpx2.TransportError)
    if transport == "httpx" or wrapped:  # (aiohttp's own transport error is another class)
        assert type(cause) is type(bare.value)
    reason = cause.__cause__ if wrapped else cause
    assert isinstance(reason, httpx2.TransportError)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_event_is_a_stream_error_with_partial(server: Server, provider: str) -> None:
    server.push(Script(["a", "b", "c"], malformed_after=2))
    with pytest.raises(rxllm.StreamError, match="not valid JSON") as caught:
        rxllm.collect(make(provider, server).stream("hi"), timeout=10)
    assert caught.value.partial is not None and caught.value.partial.text == "ab"


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_is_api_connection_error() -> None:
    llm = rxllm.openai("m", base_url=f"http://127.0.0.1:{free_port()}", api_key=KEY, max_retries=0)
    with pytest.raises(rxllm.APIConnectionError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    assert caught.value.retryable


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_stall_timeout_ignores_keep_alive_pings(server: Server, provider: str, mode: str) -> None:
    server.push(Script(["a", "b", "c"], hang_after=2, ping_every=0.05))
    started = time.monotonic()
    with pytest.raises(rxllm.StreamTimeout) as caught:
        run(make(provider, server, stall_timeout=0.3).stream("hi"), mode)
    assert time.monotonic() - started < 3
    assert caught.value.retryable
    assert caught.value.partial is not None and caught.value.partial.text == "ab"
    assert server.last.wait_closed(2)  # and the connection was released


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_take_until_cancels_the_http_stream(server: Server, provider: str, mode: str) -> None:
    server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
    stream = (
        make(provider, server)
        .stream("count")
        .pipe(ops.accumulate(), ops.take_until(lambda s: "w4 " in s.text))
    )
    response = run(stream, mode)
    assert response.text == "w0 w1 w2 w3 w4 "
    assert response.finish_reason is None
    record = server.last
    assert record.wait_closed(2)
    assert record.client_closed_at is not None
    # promptly, by count: the server, writing a chunk every 10 ms, got at most two more
    # out (the stop's own chunk and one in flight) before it saw the close
    assert record.chunks_after_close == 0
    assert record.chunks_written <= 7
    assert not record.finished


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_stop_button_closes_the_connection_while_the_model_is_silent(
    server: Server, provider: str, mode: str
) -> None:
    server.push(Script(["a", "b", "c"], hang_after=2))
    stop = reactivex.subject.Subject[None]()
    fired: list[float] = []

    def press() -> None:
        fired.append(time.monotonic())
        stop.on_next(None)

    def press_later(chunk: Chunk) -> None:  # the model is silent after "b": press then
        if chunk.content == "b":
            threading.Timer(0.2, press).start()

    stream = (
        make(provider, server).stream("hi").pipe(rx.do_action(press_later), ops.take_until(stop))
    )
    response = run(stream, mode)
    assert response.text == "ab"
    record = server.last
    # the script hangs for ever after two chunks: only the stop can have closed it, and
    # after the stop fired
    assert record.wait_closed(2)
    assert record.client_closed_at is not None and fired
    assert record.client_closed_at >= fired[0]
    assert record.chunks_written == 2 and not record.finished


def test_a_stop_fired_on_another_thread_completes_on_the_loop_thread(server: Server) -> None:
    server.push(Script(["a", "b", "c"], hang_after=2))
    stop = reactivex.subject.Subject[None]()

    async def main() -> tuple[str, set[int], int]:
        loop_thread = threading.get_ident()
        seen: set[int] = set()
        stream = (
            make("openai", server)
            .stream("hi")
            .pipe(
                ops.take_until(stop),
                rx.do_action(
                    on_next=lambda _: seen.add(threading.get_ident()),
                    on_completed=lambda: seen.add(threading.get_ident()),
                ),
            )
        )
        threading.Timer(0.3, stop.on_next, args=(None,)).start()  # e.g. a UI thread
        response = await rxllm.acollect(stream, timeout=10)
        return response.text, seen, loop_thread

    text, seen, loop_thread = asyncio.run(main())
    assert text == "ab"
    assert seen == {loop_thread}  # the completion too, not the timer's thread
    assert server.last.wait_closed(2)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stop_signal_that_already_fired_sends_no_request(server: Server, mode: str) -> None:
    server.push(Script("never asked for"))
    stopped = reactivex.subject.BehaviorSubject(True)  # e.g. the Stop button's state
    response = run(make("openai", server).stream("hi").pipe(ops.take_until(stopped)), mode)
    assert response.text == "" and response.chunk_count == 0
    time.sleep(0.1)
    assert server.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dispose_during_first_delay_closes_before_any_chunk(server: Server, provider: str) -> None:
    server.push(Script(["a"], first_delay=5))
    subscription = make(provider, server).stream("hi").subscribe(lambda _: None)
    assert server.wait_for_request(timeout=5)
    time.sleep(0.1)
    disposed = time.monotonic()
    subscription.dispose()
    record = server.last
    assert record.wait_closed(2)
    assert record.client_closed_at is not None
    assert record.client_closed_at - disposed < 0.05
    assert record.chunks_written == 0


def _subscribe_then_dispose(
    stream: reactivex.Observable[Chunk], server: Server, mode: str, *, after: float = 0.1
) -> float:
    """Subscribe (from a running loop in async mode), wait for the request, dispose; returns
    when it disposed."""

    def body() -> float:
        subscription = stream.subscribe(lambda _: None, lambda _: None)
        assert server.wait_for_request(timeout=5)
        time.sleep(after)
        disposed = time.monotonic()
        subscription.dispose()
        return disposed

    if mode == "sync":
        return body()

    async def main() -> float:
        subscription = stream.subscribe(lambda _: None, lambda _: None)
        assert await asyncio.to_thread(server.wait_for_request, timeout=5)
        await asyncio.sleep(after)
        disposed = time.monotonic()
        subscription.dispose()
        await asyncio.sleep(0.2)  # let the cancelled task finish on this loop
        return disposed

    return asyncio.run(main())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_dispose_before_the_response_headers_closes_the_connection(
    server: Server, provider: str, mode: str
) -> None:
    server.push(Script(["a"], headers_delay=5))  # a queued request
    llm = make(provider, server, max_retries=2)  # a shut-down socket must not be retried
    disposed = _subscribe_then_dispose(llm.stream("hi"), server, mode)
    record = server.last
    assert record.wait_closed(2)
    assert record.client_closed_at is not None
    assert record.client_closed_at - disposed < 0.05
    time.sleep(0.3)
    assert len(server.requests) == 1 and record.chunks_written == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_dispose_while_the_sdk_waits_to_retry_sends_no_more_requests(
    server: Server, provider: str, mode: str
) -> None:
    server.push(Script("x", status=529, headers={"retry-after-ms": "400"}))
    llm = make(provider, server, max_retries=4)
    _subscribe_then_dispose(llm.stream("hi"), server, mode, after=0.05)
    time.sleep(1.0)  # the SDK's next attempt would have come after 0.4 s
    assert len(server.requests) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stall_before_the_headers_is_reported_at_the_stall_timeout(
    server: Server, provider: str, mode: str
) -> None:
    server.push(Script(["a"], headers_delay=5))
    llm = make(provider, server, max_retries=2, stall_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(rxllm.StreamTimeout):
        run(llm.stream("hi"), mode)
    # not after the SDK's own read timeout and retries (~2 s more)
    assert time.monotonic() - started < 0.9
    assert server.last.wait_closed(2)
    time.sleep(0.3)
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ready_made_clients_are_used(server: Server, provider: str) -> None:
    server.push(Script("ok"))
    if provider == "openai":
        client = openai_sdk.OpenAI(base_url=server.url, api_key="from-client", max_retries=0)
        llm = rxllm.openai("m", client=client)
        header = "authorization"
    else:
        client = anthropic_sdk.Anthropic(base_url=server.url, api_key="from-client", max_retries=0)
        llm = rxllm.anthropic("m", client=client)
        header = "x-api-key"
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "ok"
    headers = server.last.headers
    assert "from-client" in headers.get(header, "") + headers.get("authorization", "")


def test_threads_do_not_outlive_their_subscriptions(server: Server) -> None:
    before = threading.active_count()
    server.push(Script([f"w{i} " for i in range(100)], delay=0.005))
    llm = make("openai", server)
    for _ in range(5):
        llm.stream("hi").pipe(
            rx.take(3)  # reactivex's own take disposes upstream too
        ).run()
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_key_echoed_by_the_provider_never_reaches_messages(server: Server, provider: str) -> None:
    body = {
        "error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}
    }
    if provider == "anthropic":
        body = {"type": "error", "error": body["error"]}
    server.push(Script("x", status=401, error_body=body))
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(make(provider, server).stream("hi"), timeout=10)
    error = caught.value
    assert "Incorrect API key provided" in str(error)
    assert KEY not in str(error) and KEY not in repr(error)
    assert KEY[:12] not in error.message
    import traceback

    printed = "".join(traceback.format_exception(error))
    assert "Incorrect API key provided" in printed
    assert KEY not in printed  # not in the chained SDK exception either


SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # shaped like an Azure key: no "sk-" to spot


@pytest.mark.parametrize("source", ["api_key", "environment", "client"])
@pytest.mark.parametrize("where", ["http_status", "error_event"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_key_in_messages_wherever_the_key_came_from(
    server: Server, monkeypatch: pytest.MonkeyPatch, provider: str, where: str, source: str
) -> None:
    echo = {"message": f"key {SECRET} is not allowed", "type": "invalid_request_error"}
    if where == "http_status":
        body = {"type": "error", "error": echo} if provider == "anthropic" else {"error": echo}
        server.push(Script("x", status=401, error_body=body))
    else:
        server.push(Script("partial answer", error_event=echo))
    factory: Callable[..., rxllm.LLM] = getattr(rxllm, provider)
    options: dict[str, object] = {"base_url": server.url, "max_retries": 0}
    if source == "api_key":
        options["api_key"] = SECRET
    elif source == "environment":
        monkeypatch.setenv(f"{provider.upper()}_API_KEY", SECRET)
    else:
        sdk = openai_sdk.OpenAI if provider == "openai" else anthropic_sdk.Anthropic
        options = {"client": sdk(base_url=server.url, api_key=SECRET, max_retries=0)}
    with pytest.raises(rxllm.LLMError) as caught:
        rxllm.collect(factory("test-model", **options).stream("hi"), timeout=10)
    import traceback

    printed = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert "is not allowed" in printed
    assert SECRET not in printed
    # nor in the provider's error object, kept on the error and on its SDK cause
    error = caught.value
    bodies = repr(getattr(error, "body", None)) + repr(getattr(error.__cause__, "body", None))
    assert "is not allowed" in bodies
    assert SECRET not in bodies


@pytest.mark.parametrize("given", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_given_client_is_the_model_for_the_other_kind_of_call(
    server: Server, provider: str, given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only client= (or only async_client=) given: a call of the other kind must go where the
    # given client goes, with its key and headers; never to the SDK's default host. The
    # default host is a second loopback server here, so a regression cannot reach the net.
    with Server() as default_host:
        variable = "OPENAI_BASE_URL" if provider == "openai" else "ANTHROPIC_BASE_URL"
        monkeypatch.setenv(variable, default_host.url + ("/v1" if provider == "openai" else ""))
        for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        sdk = openai_sdk if provider == "openai" else anthropic_sdk
        options = {
            "base_url": server.url + ("/v1" if provider == "openai" else ""),
            "api_key": KEY,
            "default_headers": {"X-Team": "blue"},
            "max_retries": 0,
        }
        if given == "sync":
            client = {"client": (sdk.OpenAI if provider == "openai" else sdk.Anthropic)(**options)}
        else:
            client = {
                "async_client": (sdk.AsyncOpenAI if provider == "openai" else sdk.AsyncAnthropic)(
                    **options
                )
            }
        llm = getattr(rxllm, provider)("test-model", **client)
        server.push(Script("Right place."))
        # the other kind of call: asyncio for a sync client, sync for an async one
        response = run(llm.stream("hi"), "async" if given == "sync" else "sync")
        assert response.text == "Right place."
        assert default_host.requests == []
        headers = server.last.headers
        assert headers["x-team"] == "blue"
        assert KEY in headers.get("authorization", "") + headers.get("x-api-key", "")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "credential",
    ["anthropic_auth_token", "anthropic_token_env", "openai_key_provider", "anthropic_header"],
)
def test_credentials_other_than_a_plain_key_work(
    server: Server, credential: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    llm: rxllm.LLM
    if credential == "anthropic_auth_token":
        client = anthropic_sdk.Anthropic(base_url=server.url, auth_token=KEY, max_retries=0)
        llm = rxllm.anthropic("test-model", client=client)
    elif credential == "anthropic_header":
        headers = {"Authorization": f"Bearer {KEY}"}
        client = anthropic_sdk.Anthropic(base_url=server.url, default_headers=headers)
        llm = rxllm.anthropic("test-model", client=client)
    elif credential == "anthropic_token_env":
        monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", KEY)
        llm = rxllm.anthropic("test-model", base_url=server.url, max_retries=0)
    else:
        client = openai_sdk.OpenAI(base_url=server.url + "/v1", api_key=lambda: KEY, max_retries=0)
        llm = rxllm.openai("test-model", client=client)
    server.push(Script("Signed in."))
    assert run(llm.stream("hi"), mode).text == "Signed in."
    assert server.last.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("kind", ["azure", "own_http_client", "bedrock"])
def test_a_given_client_that_cannot_be_copied_says_to_pass_both(server: Server, kind: str) -> None:
    llm: rxllm.LLM
    if kind == "azure":
        client: object = openai_sdk.AzureOpenAI(
            api_key=KEY, azure_endpoint=server.url, api_version="2024-10-21", max_retries=0
        )
    elif kind == "own_http_client":
        client = openai_sdk.OpenAI(
            base_url=server.url + "/v1", api_key=KEY, http_client=openai_sdk.DefaultHttpxClient()
        )
    else:
        bedrock = anthropic_sdk.AnthropicBedrock(
            aws_region="us-east-1", aws_access_key="x", aws_secret_key="y", base_url=server.url
        )
        llm = rxllm.anthropic("test-model", client=bedrock)
        with pytest.raises(rxllm.LLMError, match=r"AnthropicBedrock.*pass async_client="):
            asyncio.run(rxllm.acollect(llm.stream("hi"), timeout=10))
        assert server.requests == []
        return
    llm = rxllm.openai("test-model", client=client)
    server.push(Script("sync is fine"))
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "sync is fine"
    with pytest.raises(rxllm.LLMError, match="async_client=") as caught:
        asyncio.run(rxllm.acollect(llm.stream("hi"), timeout=10))
    assert len(server.requests) == 1  # nothing was sent anywhere
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_llm_serves_sync_then_asyncio_then_sync_calls(server: Server, provider: str) -> None:
    # The client rxllm makes for the first sync call is its own, not a given one: an asyncio
    # call after it makes its own async client as usual (it was refused as "given only
    # client=, with its own http_client").
    llm = make(provider, server)
    for mode in ("sync", "async", "sync", "async"):
        server.push(Script(f"{mode} ok"))
        assert run(llm.stream("hi"), mode).text == f"{mode} ok"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_client_and_api_key_or_base_url_together_are_refused(
    server: Server, provider: str
) -> None:
    sdk = openai_sdk.OpenAI if provider == "openai" else anthropic_sdk.Anthropic
    client = sdk(base_url=server.url, api_key=KEY)
    with pytest.raises(ValueError, match="set them on the client"):
        getattr(rxllm, provider)("m", client=client, api_key="sk-other")
    with pytest.raises(ValueError, match="set them on the client"):
        getattr(rxllm, provider)("m", client=client, base_url="http://127.0.0.1:9")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_given_client_without_credentials_is_an_authentication_error(
    server: Server, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (OpenAI's client refuses to be made without one; Anthropic's is made, and fails later)
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    llm = rxllm.anthropic("m", client=anthropic_sdk.Anthropic(base_url=server.url))
    with pytest.raises(rxllm.AuthenticationError, match="ANTHROPIC_API_KEY"):
        run(llm.stream("hi"), mode)
    assert server.requests == []


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("kind", "body", "says"),
    [
        ("text/html; charset=utf-8", b"<html>Welcome</html>", "check base_url"),
        ("application/json", b'{"choices": [{"message": {"content": "Paris."}}]}', "ignored"),
    ],
)
def test_a_200_that_is_not_an_event_stream_says_why(
    server: Server, provider: str, mode: str, kind: str, body: bytes, says: str
) -> None:
    # A wrong base_url (a web page) or a server that ignores stream=true: this was a
    # retryable StreamInterrupted ("ended before the server said it was done").
    server.push(Script(raw_events=body, headers={"content-type": kind}))
    with pytest.raises(rxllm.LLMError) as caught:
        run(make(provider, server).stream("hi"), mode)
    assert type(caught.value) is rxllm.LLMError
    assert not caught.value.retryable
    assert says in str(caught.value) and body[:10].decode() in str(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_messages_are_the_provider_s_words_and_short(server: Server, provider: str) -> None:
    # Not the SDK's "Error code: 400 - {'type': 'error', ...}" dict repr, and not a proxy's
    # whole 5 KB web page.
    server.push(Script("x", status=400))
    with pytest.raises(rxllm.BadRequestError) as caught:
        rxllm.collect(make(provider, server).stream("hi"), timeout=10)
    assert "Error code" not in str(caught.value) and "{" not in str(caught.value)
    page = "<html><body>" + "Bad gateway. " * 400 + "</body></html>"
    server.push(Script("x", status=502, error_body=page))
    with pytest.raises(rxllm.ServerError) as failed:
        rxllm.collect(make(provider, server, max_retries=0).stream("hi"), timeout=10)
    assert "502" in str(failed.value) and "Bad gateway." in str(failed.value)
    assert len(str(failed.value)) < 400


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_key_where_a_long_message_is_cut_is_scrubbed_first(server: Server, provider: str) -> None:
    # Messages are cut at 300 characters: a key straddling the cut must not leave its
    # first half behind.
    text = "x" * 280 + f" the credential {SECRET} is not valid"
    body: dict[str, Any] = {"error": {"message": text, "type": "authentication_error"}}
    if provider == "anthropic":
        body = {"type": "error", **body}
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    llm = factory("m", base_url=server.url, api_key=SECRET, max_retries=0)
    server.push(Script("x", status=401, error_body=body))
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    assert SECRET[:8] not in str(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_event_stream_labelled_json_still_streams(
    server: Server, provider: str, mode: str
) -> None:
    server.push(Script(["Hello", " there"], headers={"content-type": "application/json"}))
    assert run(make(provider, server).stream("hi"), mode).text == "Hello there"


_SSE_BODIES = {
    "openai": (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"Hello there"},"finish_reason":"stop"}]}'
        b"\n\ndata: [DONE]\n\n"
    ),
    "anthropic": b"".join(
        b"event: %s\ndata: %s\n\n" % (kind.encode(), data.encode())
        for kind, data in [
            (
                "message_start",
                '{"type":"message_start","message":{"id":"m1","type":"message","role":'
                '"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
                '"usage":{"input_tokens":1,"output_tokens":1}}}',
            ),
            (
                "content_block_start",
                '{"type":"content_block_start","index":0,"content_block":{"type":"text",'
                '"text":""}}',
            ),
            (
                "content_block_delta",
                '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
                '"text":"Hello there"}}',
            ),
            ("content_block_stop", '{"type":"content_block_stop","index":0}'),
            (
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"end_turn",'
                '"stop_sequence":null},"usage":{"output_tokens":2}}',
            ),
            ("message_stop", '{"type":"message_stop"}'),
        ]
    ),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("start", "streams"),
    [
        (b"\xef\xbb\xbf", True),  # a byte-order mark before the events
        (b"\n\n", True),  # blank lines first
        (b"\n", False),  # then a whole JSON document: refused, not "interrupted"
    ],
)
def test_the_first_bytes_decide_whatever_comes_first(
    server: Server, provider: str, start: bytes, streams: bool
) -> None:
    document = b'{"id": "x", "choices": [{"message": {"content": "Hello there"}}]}'
    body = start + (_SSE_BODIES[provider] if streams else document)
    server.push(Script(raw_events=body, headers={"content-type": "application/json"}))
    stream = make(provider, server).stream("hi")
    if streams:
        assert rxllm.collect(stream, timeout=10).text == "Hello there"
    else:
        with pytest.raises(rxllm.LLMError, match="ignored stream=true") as caught:
            rxllm.collect(stream, timeout=10)
        assert not caught.value.retryable


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_error_whose_mapping_fails_still_shows_no_key(
    server: Server, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traceback

    from rxllm.providers import http_call

    def broken(*_: object, **__: object) -> rxllm.LLMError:
        raise RuntimeError("a bug in the mapping")

    monkeypatch.setattr(http_call, "map_sdk_error", broken)
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "x"}}
    server.push(Script("x", status=401, error_body=body))
    with pytest.raises(rxllm.LLMError) as caught:
        rxllm.collect(make(provider, server).stream("hi"), timeout=10)
    assert isinstance(caught.value.__context__, RuntimeError)  # the fallback was taken
    assert str(caught.value).startswith(f"{provider}: AuthenticationError")
    assert KEY not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_call_s_own_extra_headers_and_body_add_to_the_defaults(
    server: Server, provider: str
) -> None:
    # A tenant header set once used to vanish from any call that sent a header of its own.
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    llm = factory(
        "m",
        base_url=server.url,
        api_key=KEY,
        extra_headers={"x-tenant": "acme"},
        extra_body={"user_tag": "t1"},
        temperature=0.5,
        max_tokens=50,
    )
    server.push(Script("Hi"))
    rxllm.collect(
        llm.with_params(extra_headers={"x-stage": "beta"}).stream(
            "hi", extra_headers={"x-trace": "42"}, extra_body={"other": 1}
        ),
        timeout=10,
    )
    sent = server.last
    assert (sent.headers["x-tenant"], sent.headers["x-stage"], sent.headers["x-trace"]) == (
        "acme",
        "beta",
        "42",
    )
    assert sent.body["user_tag"] == "t1" and sent.body["other"] == 1
    assert sent.body["temperature"] == 0.5 and sent.body["max_tokens"] == 50


@pytest.mark.parametrize("provider", PROVIDERS)
def test_none_for_a_parameter_overrides_its_default(server: Server, provider: str) -> None:
    # None lifts a default (OpenAI: max_tokens null is no cap; timeout=None no timeout),
    # except where the API requires a value: Anthropic's max_tokens is rxllm's default then,
    # and its sampling parameters are left out rather than sent as null.
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    llm = factory("m", base_url=server.url, api_key=KEY, max_tokens=20, temperature=0.5)
    server.push(Script("Hi", headers_delay=0.3))
    rxllm.collect(
        llm.with_params(timeout=0.1).stream("hi", max_tokens=None, temperature=None, timeout=None),
        timeout=10,
    )  # it would time out at 0.1 s if timeout=None were dropped
    body = server.last.body
    if provider == "openai":
        assert body["max_tokens"] is None and body["temperature"] is None
    else:
        assert body["max_tokens"] == 4096 and "temperature" not in body


def test_openai_own_stream_options_keep_the_usage(server: Server) -> None:
    server.push(Script("Hi", usage=rxllm.Usage(input_tokens=3, output_tokens=1, total_tokens=4)))
    response = rxllm.collect(
        make("openai", server).stream("hi", stream_options={"include_obfuscation": False}),
        timeout=10,
    )
    assert server.last.body["stream_options"] == {
        "include_usage": True,
        "include_obfuscation": False,
    }
    assert response.usage is not None and response.usage.total_tokens == 4
