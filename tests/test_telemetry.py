"""OpenTelemetry spans of calls and tool runs (`rxllm.telemetry`), read back through the
SDK's span processors (the `spans` fixture of conftest.py): what a span says, when it
ends (once), whose child it is, and what it never holds (content unless opted in, keys).

The loopback counterparts (real SDKs, `server.address`, the Anthropic SDK's own span
switched off) are in tests/providers/test_telemetry_loopback.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pydantic
import pytest
import reactivex
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from reactivex import operators as rx
from reactivex.subject import Subject

import rxllm
from rxllm import Chunk, ToolCallDelta, Usage, ops
from rxllm.bridge import CallControl, IteratorCall, call_observable
from rxllm.providers.in_process import InProcessCodec
from rxllm.telemetry import CAPTURE_CONTENT, provider_name

tracer = trace.get_tracer("tests")

CONTENT_ATTRIBUTES = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)


@pytest.fixture(autouse=True)
def _content_not_captured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Content capture off unless a test opts in, whatever the environment says."""
    monkeypatch.delenv(CAPTURE_CONTENT, raising=False)


def chat_spans(finished: list[Any]) -> list[Any]:
    return [s for s in finished if s.attributes.get("gen_ai.operation.name") == "chat"]


def tool_spans(finished: list[Any]) -> list[Any]:
    return [s for s in finished if s.attributes.get("gen_ai.operation.name") == "execute_tool"]


def parent_of(span: Any) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: Any) -> int:
    return (
        int(span.context.span_id) if hasattr(span, "context") else span.get_span_context().span_id
    )


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def tool_call(
    name: str = "weather", arguments: str = '{"city": "Oslo"}', call_id: str = "c1"
) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=0, id=call_id, name=name, arguments=arguments),))


# --- what a span says -------------------------------------------------------------------


def test_a_completed_call_is_one_client_span_named_after_the_operation_and_model(spans):
    usage = Usage(
        input_tokens=12,
        output_tokens=5,
        cache_read_tokens=4,
        cache_write_tokens=2,
        reasoning_tokens=3,
    )
    llm = rxllm.scripted(["Hel", "lo"], model="tiny-1", usage=usage, temperature=0.3)
    response = rxllm.collect(llm.stream("hi", max_tokens=20, top_p=0.9, stop=["\n"], seed=7, n=2))

    [span] = spans.settled(1)
    assert span.name == "chat tiny-1"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "rxllm"
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes)
    assert attributes.pop("gen_ai.response.time_to_first_chunk") > 0
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "tiny-1",
        "gen_ai.request.stream": True,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("\n",),
        "gen_ai.request.choice.count": 2,
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 4,
        "gen_ai.usage.cache_creation.input_tokens": 2,
        "gen_ai.usage.reasoning.output_tokens": 3,
    }


def test_the_response_id_and_a_structured_output_request_are_recorded(spans):
    class City(pydantic.BaseModel):
        name: str

    llm = rxllm.scripted([Chunk(content='{"name": "Oslo"}', id="resp-42")])
    rxllm.collect(llm.stream("a city", response_format=City))
    [span] = spans.settled(1)
    assert span.attributes["gen_ai.response.id"] == "resp-42"
    assert span.attributes["gen_ai.output.type"] == "json"


def test_the_first_chunk_is_one_event_however_many_chunks_follow(spans):
    llm = rxllm.scripted([f"w{i} " for i in range(50)])
    rxllm.collect(llm.stream("talk"))
    [span] = spans.settled(1)
    events = [e for e in span.events if e.name == "rxllm.first_chunk"]
    assert len(events) == 1
    assert span.start_time <= events[0].timestamp <= span.end_time
    ttfc = events[0].attributes["gen_ai.response.time_to_first_chunk"]
    assert ttfc == span.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttfc * 1e9 <= span.end_time - span.start_time


@pytest.mark.parametrize(
    ("rxllm_name", "convention"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("groq", "groq"),
        ("deepseek", "deepseek"),
        ("mistral", "mistral_ai"),
        ("xai", "x_ai"),
        ("gemini", "gcp.gemini"),
        ("azure", "azure.ai.openai"),
        ("bedrock", "aws.bedrock"),
        ("vertex", "gcp.vertex_ai"),
        ("ollama", "ollama"),
        ("scripted", "scripted"),
    ],
)
def test_the_provider_name_is_the_conventions_well_known_value_where_there_is_one(
    rxllm_name, convention
):
    assert provider_name(rxllm_name) == convention


# --- how a span ends: once, and how ------------------------------------------------------


def test_an_error_ends_the_span_with_status_error_and_the_error_class(spans):
    llm = rxllm.scripted(["Hel", "lo"], error=rxllm.ServerError("overloaded", provider="x"))
    with pytest.raises(rxllm.ServerError):
        rxllm.collect(llm.stream("hi"))

    [span] = spans.settled(1)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ServerError"
    [exception] = [e for e in span.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "rxllm.errors.ServerError"
    assert "overloaded" in exception.attributes["exception.message"]
    assert "Traceback" in exception.attributes["exception.stacktrace"]
    assert "rxllm.cancelled" not in span.attributes
    assert span.attributes["gen_ai.response.model"] == "scripted"  # from what arrived before


def test_a_call_that_cannot_start_is_a_failed_span_too(spans, no_keys):
    with pytest.raises(rxllm.AuthenticationError):
        rxllm.collect(rxllm.openai("gpt-4o-mini").stream("hi"))
    [span] = spans.settled(1)
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["error.type"] == "AuthenticationError"
    assert not [e for e in span.events if e.name == "rxllm.first_chunk"]


class _KeyCodec(InProcessCodec):
    def secrets(self) -> tuple[str, ...]:
        return ("a1b2c3d4e5f60718293a4b5c6d7e8f90",)


class _Refusing:
    """A provider whose calls cannot even be made, saying so with its key."""

    name = "refusing"
    model = "m"

    def check(self, request: Any) -> None:
        pass

    def codec(self, request: Any) -> _KeyCodec:
        return _KeyCodec()

    def make_call(self, request: Any) -> Any:
        raise ValueError("cannot use key a1b2c3d4e5f60718293a4b5c6d7e8f90")


def test_a_call_that_cannot_be_made_is_scrubbed_with_its_providers_secrets(spans):
    with pytest.raises(ValueError):
        rxllm.collect(rxllm.LLM(_Refusing()).stream("hi"))  # type: ignore[arg-type]
    [span] = spans.settled(1)
    assert span.attributes["error.type"] == "ValueError"
    [exception] = [e for e in span.events if e.name == "exception"]
    assert exception.attributes["exception.message"] == "cannot use key ***"
    assert "a1b2c3d4" not in exception.attributes["exception.stacktrace"]
    assert "a1b2c3d4" not in (span.status.description or "")


def test_a_subscriber_that_raises_fails_the_span_with_its_exception_class(spans):
    def explode(chunk: Chunk) -> None:
        raise KeyError("boom")

    failures: list[Exception] = []
    done = threading.Event()
    rxllm.scripted(["a", "b"]).stream("hi").subscribe(
        explode, lambda e: (failures.append(e), done.set()), done.set
    )
    assert done.wait(10)
    [span] = spans.settled(1)
    assert isinstance(failures[0], KeyError)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"


def test_a_stall_is_a_stream_timeout_error(spans):
    llm = rxllm.scripted(["a", "b"], delay=5, stall_timeout=0.05)
    with pytest.raises(rxllm.StreamTimeout):
        rxllm.collect(llm.stream("hi"), timeout=10)
    [span] = spans.settled(1)
    assert span.attributes["error.type"] == "StreamTimeout"


def test_a_take_until_stop_is_a_cancellation_not_an_error(spans):
    llm = rxllm.scripted([f"w{i} " for i in range(20)], delay=0.001)
    stopped = llm.stream("talk").pipe(ops.take_until(lambda c: c.content == "w3 "))
    assert rxllm.collect(stopped).text == "w0 w1 w2 w3 "

    [span] = spans.settled(1)
    assert span.attributes["rxllm.cancelled"] is True
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert not [e for e in span.events if e.name == "exception"]
    assert "gen_ai.response.finish_reasons" not in span.attributes  # it never said why
    assert spans.ends[span.context.span_id] == 1


def test_disposing_from_another_thread_ends_the_span_once_as_cancelled(spans):
    llm = rxllm.scripted([f"w{i} " for i in range(1000)], delay=0.005)
    first = threading.Event()
    subscription = llm.stream("talk").subscribe(lambda _: first.set())
    assert first.wait(10)
    subscription.dispose()
    subscription.dispose()
    [span] = spans.settled(1)
    assert span.attributes["rxllm.cancelled"] is True
    assert list(spans.ends.values()) == [1]


async def test_a_take_until_stop_on_asyncio_is_a_cancellation(spans):
    llm = rxllm.scripted([f"w{i} " for i in range(20)], delay=0.001)
    stopped = llm.stream("talk").pipe(ops.take_until(lambda c: c.content == "w2 "))
    assert (await rxllm.acollect(stopped)).text == "w0 w1 w2 "
    [span] = await asyncio.to_thread(spans.settled, 1)
    assert span.attributes["rxllm.cancelled"] is True
    assert span.status.status_code is StatusCode.UNSET


async def test_a_call_disposed_before_its_task_runs_ends_its_span_as_cancelled(spans):
    subscription = rxllm.scripted("never sent").stream("hi").subscribe()
    subscription.dispose()  # the call's task has not run yet
    await asyncio.sleep(0.01)
    [span] = await asyncio.to_thread(spans.settled, 1)
    assert span.attributes["rxllm.cancelled"] is True
    assert not [e for e in span.events if e.name == "rxllm.first_chunk"]


@pytest.mark.parametrize("first_step", [False, True])
def test_a_call_left_running_when_its_loop_shuts_down_ends_its_span(spans, first_step):
    """`asyncio.run` cancels the tasks left: the call's span ends as cancelled, whether its
    task already ran (it is cancelled mid-call) or never did (its coroutine never starts)."""

    async def subscribe_and_leave() -> None:
        rxllm.scripted(["a", "b"], delay=5).stream("hi").subscribe()
        if first_step:
            await asyncio.sleep(0.01)

    asyncio.run(subscribe_and_leave())
    [span] = spans.settled(1)
    assert span.attributes["rxllm.cancelled"] is True


# --- parents -----------------------------------------------------------------------------


def test_a_call_is_a_child_of_the_span_current_where_it_was_subscribed(spans):
    llm = rxllm.scripted("Hi there.")
    with tracer.start_as_current_span("request") as parent:
        rxllm.collect(llm.stream("hi"))
    rxllm.collect(llm.stream("hi"))  # subscribed with no span current: a root

    finished = spans.settled(3)
    first, second = chat_spans(finished)
    assert parent_of(first) == span_id(parent)
    assert first.context.trace_id == parent.get_span_context().trace_id
    assert second.parent is None


async def test_on_asyncio_a_call_is_a_child_of_the_span_current_where_it_was_subscribed(spans):
    llm = rxllm.scripted("Hi there.")

    async def request(name: str) -> int:
        with tracer.start_as_current_span(name) as parent:
            await asyncio.sleep(0)
            await rxllm.acollect(llm.stream(name))
            return span_id(parent)

    parents = await asyncio.gather(*(request(f"request {i}") for i in range(5)))
    finished = await asyncio.to_thread(spans.settled, 10)
    assert sorted(parent_of(s) for s in chat_spans(finished)) == sorted(parents)


class _Probe(IteratorCall):
    """A call that records the current span while it makes its request (before its
    first chunk)."""

    provider = "probe"
    stall_timeout = None
    codec = InProcessCodec()

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def iter_sync(self, control: CallControl) -> Iterator[Chunk]:
        self.seen.append(trace.get_current_span())
        yield Chunk(content="a")
        yield Chunk(content="b", finish_reason="stop")

    async def iter_async(self, control: CallControl) -> AsyncIterator[Chunk]:
        self.seen.append(trace.get_current_span())
        yield Chunk(content="a")
        yield Chunk(content="b", finish_reason="stop")

    def map_error(self, error: BaseException, *, received: int) -> rxllm.LLMError:
        return rxllm.LLMError(str(error))


@pytest.mark.parametrize("path", ["sync", "asyncio"])
def test_the_request_runs_under_the_call_span_and_notifications_under_the_subscriber(spans, path):
    """An HTTP client's own spans belong to the call; what a subscriber does (and the calls
    it starts) belongs to the subscriber, not to the call that happened to notify it."""
    during_request: list[Any] = []
    in_notifications: list[Any] = []
    source = call_observable(lambda: _Probe(during_request))
    record = lambda *_: in_notifications.append(trace.get_current_span())  # noqa: E731

    def run() -> int:
        with tracer.start_as_current_span("request") as parent:
            if path == "sync":
                done = threading.Event()
                source.subscribe(record, lambda e: done.set(), lambda: (record(), done.set()))
                assert done.wait(10)
            else:

                async def main() -> None:
                    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    source.subscribe(
                        record,
                        finished.set_exception,
                        lambda: (record(), finished.set_result(None)),
                    )
                    await finished

                asyncio.run(main())
            return span_id(parent)

    parent = run()
    [call] = chat_spans(spans.settled(2))
    assert call.name == "chat"  # a Call without a request: the operation alone
    assert call.attributes["gen_ai.provider.name"] == "probe"
    assert [span_id(s) for s in during_request] == [call.context.span_id]
    assert [span_id(s) for s in in_notifications] == [parent, parent, parent]


def test_later_attempts_of_a_retry_are_children_of_the_retrys_subscription(spans):
    llm = rxllm.scripted([], error=rxllm.ServerError("overloaded"))
    with tracer.start_as_current_span("request") as parent, pytest.raises(rxllm.ServerError):
        rxllm.collect(llm.stream("hi").pipe(ops.retry(attempts=3, backoff=0.01)), timeout=10)
    attempts = chat_spans(spans.settled(4))
    assert len(attempts) == 3
    assert {parent_of(s) for s in attempts} == {span_id(parent)}
    assert all(s.attributes["error.type"] == "ServerError" for s in attempts)


# --- tool loops and tool runs -------------------------------------------------------------


def _loop_llm() -> Any:
    return rxllm.scripted([tool_call()], then=["It is sunny in Oslo."])


def _check_loop_spans(finished: list[Any], parent: int) -> None:
    first, second = sorted(chat_spans(finished), key=lambda s: s.start_time)
    [tool] = tool_spans(finished)
    assert parent_of(first) == parent
    assert parent_of(second) == parent  # not a child of the call whose tool completed it
    assert parent_of(tool) == first.context.span_id
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert second.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert tool.name == "execute_tool weather"
    assert tool.kind is SpanKind.INTERNAL
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "weather"
    assert tool.attributes["gen_ai.tool.call.id"] == "c1"
    assert tool.status.status_code is StatusCode.UNSET
    assert first.end_time <= tool.start_time <= tool.end_time <= second.start_time


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_tool_loop_is_two_call_spans_and_a_tool_span_under_the_first(spans, concurrency):
    def slow_weather(city: str) -> str:
        """The weather in a city."""
        time.sleep(0.05)  # with concurrency 2 it ends on a worker thread, which goes on
        return weather(city)  # to subscribe the next call: from a context of its own

    with tracer.start_as_current_span("request") as parent:
        answer = rxllm.collect(
            _loop_llm()
            .stream("Weather in Oslo?", tools=[weather])
            .pipe(ops.tool_loop({"weather": slow_weather}, concurrency=concurrency))
        )
    assert answer.text == "It is sunny in Oslo."
    _check_loop_spans(spans.settled(4), span_id(parent))


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_an_asyncio_tool_loop_with_async_tools_has_the_same_parents(spans, concurrency):
    async def weather(city: str) -> str:
        """The weather in a city."""
        await asyncio.sleep(0)
        with tracer.start_as_current_span("inside the tool") as inner:
            seen.append(inner)
        return f"sunny in {city}"

    seen: list[Any] = []
    with tracer.start_as_current_span("request") as parent:
        answer = await rxllm.acollect(
            _loop_llm()
            .stream("Weather in Oslo?", tools=[weather])
            .pipe(ops.tool_loop(concurrency=concurrency))
        )
    assert answer.text == "It is sunny in Oslo."
    finished = await asyncio.to_thread(spans.settled, 5)
    _check_loop_spans([s for s in finished if s.name != "inside the tool"], span_id(parent))
    [inner] = [s for s in finished if s.name == "inside the tool"]
    assert parent_of(inner) == tool_spans(finished)[0].context.span_id  # current while it ran


def test_a_tool_that_raises_is_an_error_span_and_the_loop_goes_on(spans):
    def weather(city: str) -> str:
        """The weather in a city."""
        raise ValueError(f"no station in {city}")

    answer = rxllm.collect(
        _loop_llm().stream("Weather in Oslo?", tools=[weather]).pipe(ops.tool_loop())
    )
    assert "no station" in (answer.steps[0].tool_results[0].error or "")
    [tool] = tool_spans(spans.settled(3))
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes["error.type"] == "ValueError"
    [exception] = [e for e in tool.events if e.name == "exception"]
    assert "no station in Oslo" in exception.attributes["exception.message"]


def test_tool_results_outside_a_loop_runs_each_tool_under_the_call_that_asked(spans):
    def add(a: int, b: int) -> int:
        return a + b

    llm = rxllm.scripted(
        [
            tool_call("add", '{"a": 1, "b": 2}', "c1"),
            Chunk(tool_calls=(ToolCallDelta(index=1, id="c2", name="nope", arguments="{}"),)),
        ]
    )
    results = list(
        rxllm.iterate(llm.stream("1+2?").pipe(ops.tool_calls(), ops.tool_results([add])))
    )
    assert [r.output for r in results] == [3, None]
    finished = spans.settled(3)
    [call] = chat_spans(finished)
    added, unknown = sorted(tool_spans(finished), key=lambda s: s.start_time)
    assert parent_of(added) == parent_of(unknown) == call.context.span_id
    assert added.status.status_code is StatusCode.UNSET
    assert unknown.status.status_code is StatusCode.ERROR
    assert unknown.attributes["error.type"] == "unknown_tool"


async def test_a_stop_while_an_async_tool_runs_cancels_its_span(spans):
    started = asyncio.Event()

    async def weather(city: str) -> str:
        """The weather in a city."""
        started.set()
        await asyncio.sleep(30)
        return "never"

    stop: Subject[bool] = Subject()
    looping = _loop_llm().stream("Weather?", tools=[weather]).pipe(ops.tool_loop())
    collecting = asyncio.ensure_future(rxllm.acollect(looping.pipe(ops.take_until(stop))))
    await asyncio.wait_for(started.wait(), 10)
    stop.on_next(True)
    await asyncio.wait_for(collecting, 10)
    finished = await asyncio.to_thread(spans.settled, 2)
    [tool] = tool_spans(finished)
    assert tool.attributes["rxllm.cancelled"] is True
    assert tool.status.status_code is StatusCode.UNSET


# --- content: only when opted in, never a key ----------------------------------------------


def _conversation_llm() -> Any:
    return rxllm.scripted([Chunk(thinking="Oslo, so."), tool_call()], then=["It is sunny in Oslo."])


def test_no_message_content_is_recorded_by_default(spans, monkeypatch):
    monkeypatch.delenv(CAPTURE_CONTENT, raising=False)
    rxllm.collect(
        _conversation_llm()
        .stream("Weather in Oslo?", system="Be brief.", tools=[weather])
        .pipe(ops.tool_loop())
    )
    for span in spans.settled(3):
        assert not set(CONTENT_ATTRIBUTES) & set(span.attributes), span.name


def test_content_is_recorded_as_the_conventions_json_when_opted_in(spans, monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT, "true")
    rxllm.collect(
        _conversation_llm()
        .stream("Weather in Oslo?", system="Be brief.", tools=[weather])
        .pipe(ops.tool_loop())
    )
    finished = spans.settled(3)
    first, second = sorted(chat_spans(finished), key=lambda s: s.start_time)
    [tool] = tool_spans(finished)

    assert json.loads(first.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(first.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]}
    ]
    assert json.loads(first.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Oslo, so."},
                {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}},
            ],
            "finish_reason": "tool_call",
        }
    ]
    # the second call's input is the whole exchange: question, the tool call, its result
    inputs = json.loads(second.attributes["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}} in (
        inputs[1]["parts"]
    )
    assert inputs[2]["parts"] == [
        {"type": "tool_call_response", "id": "c1", "response": "sunny in Oslo"}
    ]
    assert json.loads(second.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "It is sunny in Oslo."}],
            "finish_reason": "stop",
        }
    ]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"city": "Oslo"}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"]) == "sunny in Oslo"


def test_the_opt_in_is_read_when_each_call_starts(spans, monkeypatch):
    llm = rxllm.scripted("Hi.")
    monkeypatch.setenv(CAPTURE_CONTENT, "false")
    rxllm.collect(llm.stream("one"))
    monkeypatch.setenv(CAPTURE_CONTENT, "True")
    rxllm.collect(llm.stream("two"))
    first, second = sorted(spans.settled(2), key=lambda s: s.start_time)
    assert "gen_ai.input.messages" not in first.attributes
    assert "two" in second.attributes["gen_ai.input.messages"]


def test_input_parts_of_both_formats_are_read(spans, monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT, "true")
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hmm."}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBBB"},
                },
                {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
            ],
        },
    ]
    rxllm.collect(rxllm.scripted("A cat.").stream(messages=messages))
    [span] = spans.settled(1)
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is this?"},
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "AAAA"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
            ],
        },
        {"role": "assistant", "parts": [{"type": "reasoning", "content": "Hmm."}]},
        {
            "role": "user",
            "parts": [
                {"type": "blob", "modality": "image", "mime_type": "image/jpeg", "content": "BBBB"},
                {"type": "tool_call_response", "id": "t1", "response": "42"},
            ],
        },
    ]


def test_each_call_leaves_one_debug_log_record_linked_to_its_span(spans, caplog):
    """One record per call on the `rxllm` logger, made while the call's span is current
    (what OpenTelemetry's logging handler reads to link a record to a span)."""
    current: list[int] = []

    class Linked(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            current.append(trace.get_current_span().get_span_context().span_id)

    caplog.set_level(logging.DEBUG, logger="rxllm")
    handler = Linked()
    logging.getLogger("rxllm").addHandler(handler)
    try:
        llm = rxllm.scripted(["a"], error=rxllm.ServerError("overloaded"))
        with pytest.raises(rxllm.ServerError):
            rxllm.collect(llm.stream("hi"))
        rxllm.collect(rxllm.scripted("ok").stream("hi"))
    finally:
        logging.getLogger("rxllm").removeHandler(handler)
    failed, completed = sorted(spans.settled(2), key=lambda s: s.start_time)
    records = [r.getMessage() for r in caplog.records if r.name == "rxllm"]
    assert records == [
        "scripted:scripted failed: ServerError: overloaded",
        "scripted:scripted completed",
    ]
    assert current == [failed.context.span_id, completed.context.span_id]


# --- many at once ------------------------------------------------------------------------


async def test_200_concurrent_calls_with_random_stops_each_end_their_span_once(spans):
    """Every span ends exactly once (on_end counted per span), under the request that
    subscribed it, and none is left open: completed, failed, stopped by a predicate and
    stopped from outside at a random moment, all at once on one loop."""
    rng = random.Random(20240917)
    words = [f"w{i} " for i in range(30)]
    plain = rxllm.scripted(words, delay=0.001)
    failing = rxllm.scripted(words[:10], delay=0.001, error=rxllm.ServerError("overloaded"))
    outcomes: dict[str, str] = {}

    async def request(i: int) -> None:
        kind = rng.choice(["complete", "fail", "predicate", "outside", "first"])
        name = f"request {i}"
        with tracer.start_as_current_span(name):
            source: reactivex.Observable[Chunk] = (failing if kind == "fail" else plain).stream(
                name
            )
            if kind == "predicate":
                stop_word = rng.choice(words)
                source = source.pipe(ops.take_until(lambda c, w=stop_word: c.content == w))
            elif kind == "outside":
                stop: Subject[bool] = Subject()
                asyncio.get_running_loop().call_later(rng.uniform(0, 0.04), stop.on_next, True)
                source = source.pipe(ops.take_until(stop))
            elif kind == "first":
                source = source.pipe(rx.take(1))
            try:
                await rxllm.acollect(source, timeout=30)
            except rxllm.ServerError:
                assert kind == "fail"
        outcomes[name] = kind

    await asyncio.gather(*(request(i) for i in range(200)))
    finished = await asyncio.to_thread(spans.settled, 400, 30)

    assert len(spans.started) == 400
    assert set(spans.ends.values()) == {1}  # every span ended, and exactly once
    assert spans.open() == []
    requests = {s.context.span_id: s.name for s in finished if s.name.startswith("request ")}
    calls = chat_spans(finished)
    assert sorted(requests[parent_of(c)] for c in calls) == sorted(requests.values())
    for call in calls:
        kind = outcomes[requests[parent_of(call)]]
        cancelled = call.attributes.get("rxllm.cancelled") is True
        failed = call.status.status_code is StatusCode.ERROR
        if kind == "complete":
            assert not cancelled and not failed
            assert call.attributes["gen_ai.response.finish_reasons"] == ("stop",)
        elif kind == "fail":
            assert failed and not cancelled
        elif kind in ("predicate", "first"):
            assert not failed  # a stop is never an error (a predicate on the last word
            # may see the call complete first)
        else:
            assert not failed
