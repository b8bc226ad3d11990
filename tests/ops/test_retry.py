"""retry: re-issues retryable failures; resumes provider streams without duplicates."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as rx_ops

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta
from rxllm.testing import Script, Server

KEY = "sk-retry-test"
resume_module = importlib.import_module("rxllm.ops._resume")


def llm(provider: str, server: Server) -> rxllm.LLM:
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    return factory("m", base_url=server.url, api_key=KEY, max_retries=0)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_failure_before_any_chunk_is_simply_retried(server: Server, provider: str) -> None:
    server.push(Script("x", status=503))
    server.push(Script("All good."))
    response = rxllm.collect(
        llm(provider, server).stream("hi").pipe(ops.retry(attempts=3, backoff=0)), timeout=10
    )
    assert response.text == "All good."
    assert len(server.requests) == 2
    assert server.requests[0].body["messages"] == server.requests[1].body["messages"]


def test_anthropic_resumes_with_an_assistant_prefill(server: Server) -> None:
    server.push(
        Script(
            ["Hello ", "wor", "never"],
            drop_after=2,
            usage=rxllm.Usage(input_tokens=5, output_tokens=2, total_tokens=7),
        )
    )
    server.push(
        Script(["ld", "!"], usage=rxllm.Usage(input_tokens=8, output_tokens=2, total_tokens=10))
    )
    seen: list[str] = []
    response = rxllm.collect(
        llm("anthropic", server)
        .stream("greet")
        .pipe(ops.retry(attempts=2, backoff=0), rx_ops.do_action(lambda c: seen.append(c.content))),
        timeout=10,
    )
    assert response.text == "Hello world!"
    assert "".join(seen) == "Hello world!"  # no duplicates reached the subscriber
    assert server.requests[1].body["messages"][-1] == {"role": "assistant", "content": "Hello wor"}
    # usage is summed over attempts: the first attempt's message_start counted 5 in, 1 out
    assert response.usage is not None
    assert response.usage.input_tokens == 5 + 8
    assert response.finish_reason == "stop"


def test_openai_resumes_with_a_continue_instruction_and_drops_a_repeated_seam(
    server: Server,
) -> None:
    server.push(Script(["The answer ", "is forty"], drop_after=2))
    server.push(Script(["is forty", "-two."]))  # the model repeats the end, then continues
    response = rxllm.collect(
        llm("openai", server).stream("q").pipe(ops.retry(attempts=2, backoff=0)), timeout=10
    )
    assert response.text == "The answer is forty-two."
    messages = server.requests[1].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": "The answer is forty"}
    assert messages[-1]["role"] == "user" and "Continue" in messages[-1]["content"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_repeat_spread_over_many_small_chunks_is_dropped(server: Server, provider: str) -> None:
    server.push(Script(["The ", "quick ", "brown ", "fox ", "jumps"], drop_after=5))
    # the model repeats the last words token by token, then continues
    server.push(Script(["quick", " brown", " fox", " jumps", " over", " the", " lazy dog."]))
    seen: list[str] = []
    response = rxllm.collect(
        llm(provider, server)
        .stream("q")
        .pipe(ops.retry(attempts=2, backoff=0), rx_ops.do_action(lambda c: seen.append(c.content))),
        timeout=10,
    )
    assert response.text == "The quick brown fox jumps over the lazy dog."
    assert "".join(seen) == response.text


_seam_text = st.text(alphabet="ab .", min_size=1, max_size=60)


@given(
    delivered=_seam_text,
    overlap=st.integers(0, 60),
    new=st.text(alphabet="xyz", max_size=30),
    cuts=st.lists(st.integers(1, 90), max_size=12),
    starts_with_usage=st.booleans(),
    finish=st.booleans(),
)
def test_the_seam_cuts_exactly_a_repeat_of_eight_or_more_characters(
    delivered: str,
    overlap: int,
    new: str,
    cuts: list[int],
    starts_with_usage: bool,
    finish: bool,
) -> None:
    """Fed in any split, a continuation that repeats the delivered text's last `overlap`
    characters comes out without them (when the repeat is long enough to be sure), with
    every other character and every chunk that is not content, in order."""
    overlap = min(overlap, len(delivered))
    if overlap < 8:
        overlap = 0  # too short to tell from a coincidence: kept
    continuation = delivered[len(delivered) - overlap :] + new
    bounds = sorted(cuts)
    pieces = [continuation[a:b] for a, b in zip([0, *bounds], [*bounds, 10**6], strict=True)]
    chunks = [Chunk(content=piece) for piece in pieces if piece]
    usage = rxllm.Usage(input_tokens=1)
    if starts_with_usage:
        chunks.insert(0, Chunk(usage=usage))
    if finish:
        chunks.append(Chunk(finish_reason="stop"))
    seam = resume_module.Seam()
    seam.expect(delivered)
    out = [ready for chunk in chunks for ready in seam.feed(chunk)]
    if finish:
        assert out and out[-1].finish_reason == "stop"  # a finish releases what was held
    out.extend(seam.release())  # the end of the stream
    assert "".join(c.content for c in out) == new
    assert [c.usage for c in out if c.usage] == ([usage] if starts_with_usage else [])
    assert out[:1] == chunks[:1] or not starts_with_usage


def test_non_retryable_errors_are_not_retried(server: Server) -> None:
    server.push(Script("x", status=400))
    with pytest.raises(rxllm.BadRequestError):
        rxllm.collect(llm("openai", server).stream("hi").pipe(ops.retry(backoff=0)), timeout=10)
    assert len(server.requests) == 1


def test_gives_up_after_attempts_with_everything_received_as_partial(server: Server) -> None:
    server.push(Script(["a", "b"], error_event="overloaded_error"))
    server.push(Script(["c"], error_event="overloaded_error"))
    with pytest.raises(rxllm.ServerError) as caught:
        rxllm.collect(
            llm("anthropic", server).stream("hi").pipe(ops.retry(attempts=2, backoff=0)), timeout=10
        )
    assert len(server.requests) == 2
    assert caught.value.partial is not None and caught.value.partial.text == "abc"


def test_other_sources_raise_after_emitting_instead_of_duplicating() -> None:
    source = (
        rxllm.scripted(["a", "b"], error=rxllm.ServerError("boom"))
        .stream("x")
        .pipe(rx_ops.map(lambda c: c))
    )  # no longer a provider stream
    seen: list[str] = []
    with pytest.raises(rxllm.ServerError):
        rxllm.collect(
            source.pipe(
                ops.retry(attempts=3, backoff=0), rx_ops.do_action(lambda c: seen.append(c.content))
            )
        )
    assert seen == ["a", "b"]


def test_tool_calls_are_not_resumed() -> None:
    llm_ = rxllm.scripted(
        [Chunk(tool_calls=(ToolCallDelta(index=0, id="t", name="f"),))],
        error=rxllm.ServerError("boom"),
    )
    with pytest.raises(rxllm.ServerError):
        rxllm.collect(llm_.stream("x").pipe(ops.retry(attempts=3, backoff=0)))
    assert len(llm_._provider.requests) == 1  # type: ignore[attr-defined]


def test_rate_limit_retry_after_is_waited(server: Server) -> None:
    server.push(Script("x", status=429, headers={"retry-after": "0.3"}))
    server.push(Script("ok"))
    started = time.monotonic()
    rxllm.collect(llm("openai", server).stream("hi").pipe(ops.retry(backoff=0)), timeout=10)
    assert time.monotonic() - started >= 0.3


def test_scripted_resume_continues_the_script() -> None:
    llm_ = rxllm.scripted(["Hel", "lo ", "there"], error=rxllm.StreamInterrupted("cut"))
    # every replay fails at the end, so the retries replay nothing new and then give up
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(llm_.stream("x").pipe(ops.retry(attempts=3, backoff=0)))
    assert caught.value.partial is not None and caught.value.partial.text == "Hello there"
    assert len(llm_._provider.requests) == 3  # type: ignore[attr-defined]


async def test_retry_inside_asyncio_stays_on_the_loop(server: Server) -> None:
    server.push(Script("x", status=500))
    server.push(Script(["on ", "loop"]))
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    response = await rxllm.acollect(
        llm("openai", server)
        .stream("hi")
        .pipe(
            ops.retry(backoff=0.01), rx_ops.do_action(lambda _: threads.add(threading.get_ident()))
        ),
        timeout=10,
    )
    assert response.text == "on loop"
    assert threads == {loop_thread}
    await asyncio.sleep(0)


def test_backoff_in_virtual_time_resubscribes_after_the_delay() -> None:
    from reactivex.testing import ReactiveTest, TestScheduler

    scheduler = TestScheduler()
    boom = rxllm.ServerError("overloaded")
    xs = scheduler.create_cold_observable(ReactiveTest.on_error(10, boom))
    results = scheduler.start(
        lambda: xs.pipe(
            ops.retry(attempts=3, backoff=lambda attempt: 50.0 * attempt, scheduler=scheduler)
        )
    )
    # TestScheduler counts one tick per second: waits of 50 then 100 ticks
    assert [(s.subscribe, s.unsubscribe) for s in xs.subscriptions] == [
        (200, 210),
        (260, 270),
        (370, 380),
    ]
    assert results.messages == [ReactiveTest.on_error(380, boom)]


_OPENAI_FINISHED = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"The answer is 42."},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
)
_ANTHROPIC_FINISHED = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":'
    b'"message","role":"assistant","model":"m","content":[],"stop_reason":null,'
    b'"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"The answer is 42."}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    b'"stop_sequence":null},"usage":{"output_tokens":5}}\n\n'
)


_OPENAI_ROLE_THEN_ERROR = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"error":{"message":"The server is overloaded.","type":"server_error"}}\n\n'
)


@pytest.mark.parametrize(
    ("provider", "body", "events"),
    [("openai", _OPENAI_FINISHED, 2), ("anthropic", _ANTHROPIC_FINISHED, 5)],
)
def test_a_break_after_the_finish_reason_completes_instead_of_continuing(
    server: Server, provider: str, body: bytes, events: int
) -> None:
    # The whole answer and its finish reason arrived, then the connection broke before the
    # end of the stream: there is nothing to continue, and a continuation would add to it.
    server.push(Script(raw_events=body, drop_after=events))
    with pytest.raises(rxllm.StreamInterrupted):  # without retry it is still an error
        rxllm.collect(llm(provider, server).stream("hi"), timeout=10)
    server.push(Script(raw_events=body, drop_after=events))
    server.push(Script([" More text nobody asked for."]))
    response = rxllm.collect(
        llm(provider, server).stream("hi").pipe(ops.retry(attempts=2, backoff=0)), timeout=10
    )
    assert response.text == "The answer is 42."
    assert response.finish_reason == "stop"
    assert len(server.requests) == 2  # one each: the retry made no second call


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_failure_after_chunks_without_text_repeats_the_request_unchanged(
    server: Server, provider: str
) -> None:
    # OpenAI's first chunk only names the role; Anthropic's message_start carries no text.
    # Nothing was said yet, so the retry asks the same question again.
    if provider == "openai":
        server.push(Script(raw_events=_OPENAI_ROLE_THEN_ERROR))
    else:
        server.push(Script([], error_event="overloaded_error"))
    server.push(Script("Fine."))
    seen: list[Chunk] = []
    response = rxllm.collect(
        llm(provider, server)
        .stream("hi")
        .pipe(ops.retry(attempts=2, backoff=0), rx_ops.do_action(seen.append)),
        timeout=10,
    )
    assert response.text == "Fine."
    assert len(server.requests) == 2
    assert server.requests[1].body["messages"] == server.requests[0].body["messages"]
    assert seen[0].content == ""  # the first attempt did emit a chunk before failing


@pytest.mark.parametrize("retry_after", ["3600", "1e300"])
def test_a_retry_after_longer_than_max_wait_raises_at_once(
    server: Server, retry_after: str
) -> None:
    server.push(Script("x", status=429, headers={"retry-after": retry_after}))
    server.push(Script("never asked for"))
    with pytest.raises(rxllm.RateLimitError) as caught:
        rxllm.collect(
            llm("openai", server).stream("hi").pipe(ops.retry(backoff=0, max_wait=5)), timeout=10
        )
    assert len(server.requests) == 1
    assert caught.value.retry_after == float(retry_after)


@pytest.mark.parametrize("retry_after", ["inf", "nan", "-5", "soon", "20s", "Mon, 99 Foo"])
def test_a_retry_after_that_is_no_usable_wait_is_ignored(server: Server, retry_after: str) -> None:
    # As the SDKs do: the error still arrives (it used to hang on "soon"), without a wait.
    server.push(Script("x", status=429, headers={"retry-after": retry_after}))
    with pytest.raises(rxllm.RateLimitError) as caught:
        rxllm.collect(llm("openai", server).stream("hi"), timeout=10)
    assert caught.value.retry_after is None
    server.push(Script("x", status=429, headers={"retry-after": retry_after}))
    server.push(Script("ok"))
    response = rxllm.collect(
        llm("anthropic", server).stream("hi").pipe(ops.retry(backoff=0)), timeout=10
    )
    assert response.text == "ok"


def test_max_wait_must_be_a_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        ops.retry(max_wait=-1)
    with pytest.raises(ValueError, match="max_wait"):
        ops.retry(max_wait=float("nan"))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_backoff_function_that_raises_fails_the_stream(mode: str) -> None:
    # It used to vanish in the worker thread, and collect waited for ever.
    delays = [0.0]  # one entry: the second retry's lookup raises IndexError
    llm_ = rxllm.scripted("x", error=rxllm.ServerError("flaky"))
    source = llm_.stream("hi").pipe(ops.retry(attempts=5, backoff=lambda n: delays[n - 1]))
    with pytest.raises(IndexError) as caught:
        if mode == "sync":
            rxllm.collect(source, timeout=5)
        else:
            asyncio.run(rxllm.acollect(source, timeout=5))
    assert isinstance(caught.value.__context__, rxllm.ServerError)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"backoff": "fast"}, ValueError),
        ({"backoff": -1}, ValueError),
        ({"backoff": float("inf")}, ValueError),
        ({"attempts": "3"}, TypeError),
        ({"attempts": 2.5}, TypeError),
    ],
)
def test_bad_arguments_are_refused_when_the_operator_is_made(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        ops.retry(**kwargs)  # type: ignore[arg-type]
