"""The bridge: cold, one call per subscription, cancellable from anywhere, errors with partial."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import reactivex
from reactivex import operators as rx_ops

import rxllm
from rxllm import ops
from rxllm.bridge import IteratorCall
from rxllm.models import Chunk
from rxllm.providers.in_process import InProcessCodec


def test_cold_each_subscription_is_one_call() -> None:
    llm = rxllm.scripted(["a", "b"])
    stream = llm.stream("x")
    assert llm._provider.requests == []  # type: ignore[attr-defined]
    rxllm.collect(stream)
    rxllm.collect(stream)
    assert len(llm._provider.requests) == 2  # type: ignore[attr-defined]


def test_sync_subscription_runs_off_the_callers_thread() -> None:
    threads: list[int] = []
    done = threading.Event()
    rxllm.scripted(["a"]).stream("x").subscribe(
        lambda _: threads.append(threading.get_ident()), on_completed=done.set
    )
    assert done.wait(5)
    assert threads and threads[0] != threading.get_ident()


async def test_async_subscription_delivers_on_the_loop_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    response = await rxllm.acollect(
        rxllm.scripted(["a", "b"], delay=0.001)
        .stream("x")
        .pipe(rx_ops.do_action(lambda _: seen.append(threading.get_ident())))
    )
    assert response.text == "ab"
    assert set(seen) == {loop_thread}


def test_dispose_stops_a_delayed_stream_promptly() -> None:
    llm = rxllm.scripted(["a"] * 100, delay=0.05)
    received: list[Chunk] = []
    subscription = llm.stream("x").subscribe(received.append)
    time.sleep(0.12)
    subscription.dispose()
    count = len(received)
    time.sleep(0.2)
    assert 1 <= count <= 4
    assert len(received) == count  # nothing after the dispose


def test_on_next_exception_reaches_on_error_and_stops_the_call() -> None:
    errors: list[Exception] = []
    received: list[Chunk] = []
    done = threading.Event()

    def on_next(chunk: Chunk) -> None:
        received.append(chunk)
        if len(received) == 2:
            raise KeyError("subscriber bug")

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    rxllm.scripted(["a"] * 50, delay=0.001).stream("x").subscribe(on_next, on_error)
    assert done.wait(5)
    assert isinstance(errors[0], KeyError)
    time.sleep(0.05)
    assert len(received) == 2


def test_error_after_chunks_carries_the_partial_response() -> None:
    llm = rxllm.scripted(["Hel", "lo"], error=rxllm.ServerError("overloaded"))
    with pytest.raises(rxllm.ServerError) as caught:
        rxllm.collect(llm.stream("x"))
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Hello"
    assert caught.value.partial.finish_reason is None
    assert caught.value.retryable and caught.value.provider == "scripted"


def test_a_non_rxllm_error_is_wrapped_with_its_cause() -> None:
    llm = rxllm.scripted(["x"], error=OSError("disk"))
    with pytest.raises(rxllm.LLMError) as caught:
        rxllm.collect(llm.stream("x"))
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stall_timeout_fails_with_stream_timeout_and_partial(mode: str) -> None:
    llm = rxllm.scripted(["a", "b", "c"], delay=0.3, stall_timeout=0.1)
    if mode == "sync":
        with pytest.raises(rxllm.StreamTimeout) as caught:
            rxllm.collect(llm.stream("x"))
    else:
        with pytest.raises(rxllm.StreamTimeout) as caught:
            asyncio.run(rxllm.acollect(llm.stream("x")))
    assert caught.value.retryable
    assert caught.value.partial is None  # the first chunk never came


def test_run_and_take_until_with_a_subject_from_another_thread() -> None:
    stop = reactivex.subject.Subject[None]()
    llm = rxllm.scripted(["a"] * 1000, delay=0.01)
    threading.Timer(0.1, lambda: stop.on_next(None)).start()
    started = time.monotonic()
    response = llm.stream("x").pipe(ops.take_until(stop), ops.to_response()).run()
    assert time.monotonic() - started < 1
    assert 1 <= response.chunk_count < 100
    assert response.finish_reason is None


class Countdown(IteratorCall):
    """A minimal custom provider call written as generators (`IteratorCall` pumps them)."""

    provider = "custom"
    stall_timeout = None
    codec = InProcessCodec()  # OpenAI's message format, no credentials

    def __init__(self) -> None:
        self.closed = threading.Event()

    def iter_sync(self, control):  # type: ignore[no-untyped-def]
        try:
            for word in ["three ", "two ", "one"]:
                if control.wait(0.01):
                    return
                yield Chunk(content=word, provider="custom")
        finally:
            self.closed.set()

    async def iter_async(self, control):  # type: ignore[no-untyped-def]
        for word in ["three ", "two ", "one"]:
            await asyncio.sleep(0.01)
            yield Chunk(content=word, provider="custom")

    def map_error(self, error, *, received):  # type: ignore[no-untyped-def]
        return rxllm.LLMError(str(error), provider="custom")


def test_call_observable_runs_a_custom_provider_call_sync_and_async() -> None:
    from rxllm.bridge import call_observable

    assert rxllm.collect(call_observable(Countdown)).text == "three two one"
    assert asyncio.run(rxllm.acollect(call_observable(Countdown))).text == "three two one"
    call = Countdown()
    response = (
        call_observable(lambda: call)
        .pipe(ops.take_until(lambda c: c.content == "two "), ops.to_response())
        .run()
    )
    assert response.text == "three two "
    assert call.closed.wait(1)  # the generator was closed when take_until cancelled


async def test_await_a_single_item_observable_and_run_from_sync_code() -> None:
    llm = rxllm.scripted(["Hel", "lo"], delay=0.001)
    response = await llm.stream("x").pipe(ops.to_response())
    assert response.text == "Hello"


def test_run_blocks_for_the_last_item() -> None:
    llm = rxllm.scripted(["Hel", "lo"], delay=0.001)
    assert llm.stream("x").pipe(ops.to_response()).run().text == "Hello"


# --- accumulate() fused into the call ------------------------------------------------------


def _snapshots(source: reactivex.Observable[Chunk]) -> list[tuple[int, str, str | None]]:
    return [
        (s.index, s.text, s.finish_reason) for s in rxllm.iterate(source.pipe(ops.accumulate()))
    ]


def test_accumulate_on_a_call_is_fused_and_emits_the_same_snapshots() -> None:
    llm = rxllm.scripted(["Av", "eng", "ers", "!"])
    fused = llm.stream("x").pipe(ops.accumulate())
    assert not isinstance(fused, type(llm.stream("x")))  # a snapshot stream, not a CallStream
    # the same chunks through the generic operator (the source is not a call)
    chunks = list(rxllm.iterate(llm.stream("x")))
    assert _snapshots(llm.stream("x")) == _snapshots(reactivex.from_iterable(chunks))
    last = rxllm.collect(fused)
    assert last.text == "Avengers!" and last.finish_reason == "stop"


def test_fused_accumulate_error_carries_the_partial_and_on_next_errors_stop_the_call() -> None:
    failing = rxllm.scripted(["a", "b"], error=rxllm.StreamInterrupted("cut"))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(failing.stream("x").pipe(ops.accumulate()))
    assert caught.value.partial is not None and caught.value.partial.text == "ab"

    llm = rxllm.scripted(["a"] * 50, delay=0.001)
    seen: list[str] = []

    def boom(snapshot: rxllm.Snapshot) -> None:
        seen.append(snapshot.text)
        if len(seen) == 3:
            raise ValueError("subscriber bug")

    errors: list[Exception] = []
    done = threading.Event()
    llm.stream("x").pipe(ops.accumulate()).subscribe(
        boom, lambda e: (errors.append(e), done.set()), done.set
    )
    assert done.wait(5)
    time.sleep(0.05)
    assert seen == ["a", "aa", "aaa"] and isinstance(errors[0], ValueError)


async def test_fused_accumulate_delivers_on_the_loop_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    response = await rxllm.acollect(
        rxllm.scripted(["a", "b"], delay=0.001)
        .stream("x")
        .pipe(ops.accumulate(), rx_ops.do_action(lambda _: seen.append(threading.get_ident())))
    )
    assert response.text == "ab" and set(seen) == {loop_thread}


class BrokenMapping(Countdown):
    """A call that fails, and whose error mapping itself raises."""

    def iter_sync(self, control):  # type: ignore[no-untyped-def]
        yield Chunk(content="so far", provider="custom")
        raise OSError("the provider failed")

    async def iter_async(self, control):  # type: ignore[no-untyped-def]
        yield Chunk(content="so far", provider="custom")
        raise OSError("the provider failed")

    def map_error(self, error, *, received):  # type: ignore[no-untyped-def]
        raise ValueError("a bug in the mapping")


def test_an_error_whose_mapping_fails_still_arrives_with_its_partial() -> None:
    # It used to vanish in the worker thread: the subscriber waited for ever.
    from rxllm.bridge import call_observable

    with pytest.raises(rxllm.LLMError, match="the provider failed") as caught:
        rxllm.collect(call_observable(BrokenMapping), timeout=5)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.partial is not None and caught.value.partial.text == "so far"
    with pytest.raises(rxllm.LLMError, match="the provider failed"):
        asyncio.run(rxllm.acollect(call_observable(BrokenMapping), timeout=5))


async def test_run_inside_a_running_loop_says_to_await_instead_of_hanging() -> None:
    # .run() blocks the loop's thread, and the call would have been a task on that loop.
    stream = rxllm.scripted("hi").stream("x")
    with pytest.raises(RuntimeError, match="acollect"):
        stream.pipe(ops.to_response()).run()
    assert (await rxllm.acollect(stream)).text == "hi"
    assert (await stream.pipe(ops.to_response())).text == "hi"  # awaiting works too


async def test_a_subscription_with_a_new_thread_scheduler_on_a_loop_still_runs() -> None:
    # Only reactivex's own .run() is refused on a loop's thread: a plain subscription that
    # names a NewThreadScheduler does not block the loop.
    from reactivex.scheduler import NewThreadScheduler

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    got: list[str] = []
    rxllm.scripted("hi").stream("x").subscribe(
        lambda c: got.append(c.content),
        on_completed=lambda: loop.call_soon_threadsafe(done.set),
        scheduler=NewThreadScheduler(),
    )
    await asyncio.wait_for(done.wait(), 5)
    assert "".join(got) == "hi"
