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
retry_module = importlib.import_module("rxllm.ops._retry")


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
    seam = retry_module._Seam()
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
