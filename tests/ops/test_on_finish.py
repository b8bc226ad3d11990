"""`on_finish(callback)`: the response so far, exactly once, however the stream ends."""

from __future__ import annotations

import asyncio

import pytest
import reactivex
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm import ops
from rxllm.models import Chunk
from rxllm.ops import Finish
from rxllm.testing import Script, Server

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def test_completed_passes_everything_through_and_reports_once() -> None:
    ended: list[Finish] = []
    scheduler = TestScheduler()
    chunks = [Chunk(content="a"), Chunk(content="b", finish_reason="stop")]
    xs = scheduler.create_hot_observable(
        on_next(210, chunks[0]), on_next(220, chunks[1]), on_completed(230)
    )
    results = scheduler.start(lambda: xs.pipe(ops.on_finish(ended.append)))
    assert results.messages == [on_next(210, chunks[0]), on_next(220, chunks[1]), on_completed(230)]
    assert [(f.outcome, f.response.text, f.response.finish_reason) for f in ended] == [
        ("completed", "ab", "stop")
    ]


def test_an_error_reports_the_partial_and_passes_on() -> None:
    ended: list[Finish] = []
    error = rxllm.StreamInterrupted("dropped")
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, Chunk(content="a")), on_error(220, error))
    results = scheduler.start(lambda: xs.pipe(ops.on_finish(ended.append)))
    assert results.messages == [on_next(210, Chunk(content="a")), on_error(220, error)]
    assert [(f.outcome, f.response.text, f.error) for f in ended] == [("error", "a", error)]


def test_disposal_reports_what_arrived_before_it() -> None:
    ended: list[Finish] = []
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, Chunk(content="a")), on_next(260, Chunk(content="b")), on_completed(270)
    )
    results = scheduler.start(lambda: xs.pipe(ops.on_finish(ended.append)), disposed=250)
    assert results.messages == [on_next(210, Chunk(content="a"))]
    assert xs.subscriptions == [subscribe(200, 250)]
    assert [(f.outcome, f.response.text, f.response.finish_reason) for f in ended] == [
        ("disposed", "a", None)
    ]


def test_a_callback_that_raises_at_the_end_is_the_subscribers_error() -> None:
    def fails(_: Finish) -> None:
        raise RuntimeError("cannot save")

    errors: list[Exception] = []
    reactivex.of(Chunk(content="a")).pipe(ops.on_finish(fails)).subscribe(on_error=errors.append)
    assert [str(e) for e in errors] == ["cannot save"]


def test_snapshots_work_too() -> None:
    ended: list[Finish] = []
    source = reactivex.of(Chunk(content="a"), Chunk(content="b")).pipe(ops.accumulate())
    source.pipe(ops.on_finish(ended.append)).subscribe()
    assert ended[0].response.text == "ab"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_stop_button_keeps_the_half_answer(server: Server, provider: str, mode: str) -> None:
    server.push(Script([f"w{i} " for i in range(200)], delay=0.01))
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    llm = factory("m", base_url=server.url, api_key="sk-test", max_retries=0)
    ended: list[Finish] = []
    stream = llm.stream("talk").pipe(
        ops.on_finish(ended.append),
        ops.accumulate(),
        ops.take_until(lambda s: s.text.count(" ") == 3, inclusive=True),
    )
    if mode == "sync":
        response = rxllm.collect(stream, timeout=10)
    else:
        response = asyncio.run(rxllm.acollect(stream, timeout=10))
    assert response.text == "w0 w1 w2 "
    (finish,) = ended
    assert finish.outcome == "disposed"
    assert finish.response.text == "w0 w1 w2 "  # what had passed when it was stopped
    assert finish.response.finish_reason is None
    assert server.last.wait_closed(2)


def test_a_callback_that_raises_at_disposal_is_logged_and_the_stop_still_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fails(_: Finish) -> None:
        raise RuntimeError("cannot save")

    llm = rxllm.scripted(["One. ", "Two. ", "Three."], delay=0.01)
    stream = llm.stream("count").pipe(
        ops.on_finish(fails), ops.take_until(lambda c: "Two" in c.content)
    )
    assert rxllm.collect(stream, timeout=5).text == "One. Two. "
    assert "callback raised at disposal" in caplog.text and "cannot save" in caplog.text
