"""`race()`: the first source to produce content wins; the others are cancelled then."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as rx_ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.race import race

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

META = Chunk(model="m", id="r1")
USAGE = Chunk(usage=Usage(input_tokens=5, total_tokens=5))


def text(content: str) -> Chunk:
    return Chunk(content=content)


class TestWinner:
    """Who wins, and what the output is."""

    def test_first_content_wins_and_its_metadata_is_replayed(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(205, META), on_next(230, text("a")), on_next(240, text("b")), on_completed(250)
        )
        ys = scheduler.create_hot_observable(
            on_next(202, USAGE), on_next(235, text("x")), on_completed(260)
        )
        results = scheduler.start(lambda: race(ys, xs))
        assert results.messages == [
            on_next(230, META),
            on_next(230, text("a")),
            on_next(240, text("b")),
            on_completed(250),
        ]
        assert xs.subscriptions == [subscribe(200, 250)]
        assert ys.subscriptions == [subscribe(200, 230)]  # cancelled when xs won

    @pytest.mark.parametrize(
        "content",
        [
            Chunk(thinking="hmm"),
            Chunk(refusal="no"),
            Chunk(audio=b"\x00\x01"),
            Chunk(audio_transcript="hi"),
            Chunk(tool_calls=(ToolCallDelta(index=0, name="f"),)),
        ],
    )
    def test_every_kind_of_content_counts(self, content: Chunk) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(finish_reason="stop")), on_next(220, content)
        )
        ys = scheduler.create_hot_observable(on_next(230, text("late")))
        results = scheduler.start(lambda: race(xs, ys))
        assert results.messages == [
            on_next(220, Chunk(finish_reason="stop")),
            on_next(220, content),
        ]
        assert ys.subscriptions == [subscribe(200, 220)]

    def test_the_winners_error_is_delivered(self) -> None:
        error = RuntimeError("mid-stream")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, text("a")), on_error(220, error))
        ys = scheduler.create_hot_observable(on_next(230, text("x")), on_completed(240))
        results = scheduler.start(lambda: race(xs, ys))
        assert results.messages == [on_next(210, text("a")), on_error(220, error)]
        assert ys.subscriptions == [subscribe(200, 210)]

    def test_disposal_disposes_every_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, META))
        ys = scheduler.create_hot_observable(on_next(220, USAGE))
        results = scheduler.start(lambda: race(xs, ys), disposed=300)
        assert results.messages == []
        assert xs.subscriptions == [subscribe(200, 300)]
        assert ys.subscriptions == [subscribe(200, 300)]

    def test_disposal_after_the_win_disposes_the_winner(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, text("a")), on_next(400, text("b")))
        ys = scheduler.create_hot_observable(on_next(500, text("never seen")))
        results = scheduler.start(lambda: race(xs, ys), disposed=300)
        assert results.messages == [on_next(210, text("a"))]
        assert xs.subscriptions == [subscribe(200, 300)]
        assert ys.subscriptions == [subscribe(200, 210)]

    def test_a_source_that_wins_while_subscribed_stops_the_rest_being_subscribed(self) -> None:
        later = 0

        def synchronous(
            observer: abc.ObserverBase[Chunk], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            observer.on_next(META)
            observer.on_next(text("now"))
            observer.on_completed()
            return reactivex.disposable.Disposable()

        def count(
            _: abc.ObserverBase[Any], __: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            nonlocal later
            later += 1
            return reactivex.disposable.Disposable()

        out: list[Chunk] = []
        race(reactivex.create(synchronous), reactivex.create(count)).subscribe(out.append)
        assert out == [META, text("now")]
        assert later == 0

    def test_needs_a_source(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            race()


class TestDropped:
    """Sources that end before anyone won."""

    def test_an_error_before_the_win_drops_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(205, META), on_error(210, RuntimeError("429")))
        ys = scheduler.create_hot_observable(on_next(220, text("x")), on_completed(230))
        results = scheduler.start(lambda: race(xs, ys))
        assert results.messages == [on_next(220, text("x")), on_completed(230)]

    def test_all_failing_delivers_the_last_error(self) -> None:
        first, last = RuntimeError("first"), RuntimeError("last")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(205, META), on_error(220, last))
        ys = scheduler.create_hot_observable(on_error(210, first))
        results = scheduler.start(lambda: race(xs, ys))
        assert results.messages == [on_error(220, last)]

    def test_a_completion_without_content_drops_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(205, USAGE), on_completed(210))
        ys = scheduler.create_hot_observable(on_next(220, text("x")), on_completed(230))
        results = scheduler.start(lambda: race(xs, ys))
        assert results.messages == [on_next(220, text("x")), on_completed(230)]

    def test_all_completing_without_content_completes(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(205, USAGE), on_completed(210))
        ys = scheduler.create_hot_observable(on_error(215, RuntimeError("down")))
        zs = scheduler.create_hot_observable(on_completed(220))
        results = scheduler.start(lambda: race(xs, ys, zs))
        assert results.messages == [on_completed(220)]


class TestWithProviders:
    """Hedged calls with real threads: the loser's call is cancelled."""

    def test_the_slow_call_is_cancelled(self) -> None:
        slow_chunks: list[str] = []
        slow_done = threading.Event()
        slow = rxllm.scripted("Slow answer here.", delay=0.3)

        def record(chunk: Chunk) -> None:
            slow_chunks.append(chunk.content)

        fast = rxllm.scripted("Fast answer.", delay=0.01)
        slow_stream = slow.stream("q").pipe(
            rx_ops.do_action(record),
            rx_ops.finally_action(slow_done.set),
        )
        response = rxllm.collect(race(slow_stream, fast.stream("q")), timeout=5)
        assert response.text == "Fast answer."
        assert slow_done.wait(1)  # disposed when the fast one produced content
        threading.Event().wait(0.4)  # longer than the slow call's first delay
        assert slow_chunks == []
        assert len(slow._provider.requests) == 1  # type: ignore[attr-defined]

    def test_an_erroring_call_is_dropped(self) -> None:
        broken = rxllm.scripted([], error=rxllm.ServerError("overloaded"))
        ok = rxllm.scripted("Fine.", delay=0.02)
        assert rxllm.collect(race(broken.stream("q"), ok.stream("q")), timeout=5).text == "Fine."

    def test_all_calls_failing_raise_the_last_error(self) -> None:
        a = rxllm.scripted([], error=rxllm.ServerError("a"))
        b = rxllm.scripted([Chunk(model="m")], delay=0.05, error=rxllm.RateLimitError("b"))
        with pytest.raises(rxllm.RateLimitError):
            rxllm.collect(race(a.stream("q"), b.stream("q")), timeout=5)
