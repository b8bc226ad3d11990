"""accumulate, take_until, text, to_response in virtual time, with source subscriptions."""

from __future__ import annotations

import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

from rxllm import ops
from rxllm.models import Chunk, Usage

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def c(text: str, **kw: object) -> Chunk:
    return Chunk(content=text, **kw)  # type: ignore[arg-type]


class TestTakeUntilPredicate:
    """take_until(predicate) emits through the match, completes, and disposes the source."""

    def test_inclusive_match_completes_and_unsubscribes_at_the_match(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, c("a")),
            on_next(220, c("b")),
            on_next(230, c("STOP")),
            on_next(240, c("d")),
            on_completed(250),
        )
        results = scheduler.start(lambda: xs.pipe(ops.take_until(lambda x: x.content == "STOP")))
        assert results.messages == [
            on_next(210, c("a")),
            on_next(220, c("b")),
            on_next(230, c("STOP")),
            on_completed(230),
        ]
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_exclusive_match_is_not_emitted(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 2), on_next(230, 3))
        results = scheduler.start(
            lambda: xs.pipe(ops.take_until(lambda x: x == 2, inclusive=False))
        )
        assert results.messages == [on_next(210, 1), on_completed(220)]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_predicate_error_goes_to_on_error_and_unsubscribes(self) -> None:
        scheduler = TestScheduler()
        boom = ValueError("bad predicate")
        xs = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 2))

        def predicate(x: int) -> bool:
            if x == 2:
                raise boom
            return False

        results = scheduler.start(lambda: xs.pipe(ops.take_until(predicate)))
        assert results.messages == [on_next(210, 1), on_error(220, boom)]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_source_completion_and_error_pass_through(self) -> None:
        scheduler = TestScheduler()
        error = RuntimeError("upstream")
        xs = scheduler.create_hot_observable(on_next(210, 1), on_error(220, error))
        results = scheduler.start(lambda: xs.pipe(ops.take_until(lambda x: False)))
        assert results.messages == [on_next(210, 1), on_error(220, error)]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_disposal_by_the_subscriber(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, 1), on_next(300, 2))
        results = scheduler.start(lambda: xs.pipe(ops.take_until(lambda x: False)), disposed=260)
        assert results.messages == [on_next(210, 1)]
        assert xs.subscriptions == [subscribe(200, 260)]


class TestTakeUntilObservable:
    """take_until(observable) stops on the signal's first item, also with no source item."""

    def test_signal_stops_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, 1), on_next(260, 2), on_completed(300))
        stop = scheduler.create_hot_observable(on_next(240, "stop"))
        results = scheduler.start(lambda: xs.pipe(ops.take_until(stop)))
        assert results.messages == [on_next(210, 1), on_completed(240)]
        assert xs.subscriptions == [subscribe(200, 240)]
        assert stop.subscriptions == [subscribe(200, 240)]

    def test_silent_source_is_stopped_by_the_signal(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(500, 1))
        stop = scheduler.create_hot_observable(on_next(230, "stop"))
        results = scheduler.start(lambda: xs.pipe(ops.take_until(stop)))
        assert results.messages == [on_completed(230)]
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_source_completing_first_releases_the_signal(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, 1), on_completed(220))
        stop = scheduler.create_hot_observable(on_next(400, "late"))
        results = scheduler.start(lambda: xs.pipe(ops.take_until(stop)))
        assert results.messages == [on_next(210, 1), on_completed(220)]
        assert stop.subscriptions == [subscribe(200, 220)]


@given(
    st.lists(st.integers(min_value=0, max_value=9), max_size=30), st.integers(0, 9), st.booleans()
)
def test_nothing_is_emitted_after_the_match(items: list[int], stop: int, inclusive: bool) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        *[on_next(10 * (i + 1), x) for i, x in enumerate(items)],
        on_completed(10 * (len(items) + 1)),
    )
    results = scheduler.start(
        lambda: xs.pipe(ops.take_until(lambda x: x == stop, inclusive=inclusive))
    )
    values = [m.value.value for m in results.messages if m.value.kind == "N"]
    if stop in items:
        cut = items.index(stop)
        assert values == items[: cut + 1] if inclusive else values == items[:cut]
        assert results.messages[-1].value.kind == "C"
        assert xs.subscriptions[0].unsubscribe == 200 + 10 * (cut + 1)
    else:
        assert values == items


class TestAccumulate:
    """accumulate emits one snapshot per chunk, each keeping its own view."""

    def test_snapshots_in_virtual_time(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, c("Av")),
            on_next(220, c("eng")),
            on_next(230, c("ers", finish_reason="stop", usage=Usage(output_tokens=3))),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(ops.accumulate()))
        snapshots = [m.value.value for m in results.messages if m.value.kind == "N"]
        assert [(m.time, s.text) for m, s in zip(results.messages, snapshots, strict=False)] == [
            (210, "Av"),
            (220, "Aveng"),
            (230, "Avengers"),
        ]
        assert [s.index for s in snapshots] == [0, 1, 2]
        assert snapshots[0].finish_reason is None and snapshots[2].finish_reason == "stop"
        assert snapshots[2].usage == Usage(output_tokens=3)
        assert snapshots[0].text == "Av"  # an old snapshot keeps its own text
        assert results.messages[-1] == on_completed(240)
        assert xs.subscriptions == [subscribe(200, 240)]

    def test_each_subscription_accumulates_on_its_own(self) -> None:
        source = reactivex.from_iterable([c("a"), c("b")]).pipe(ops.accumulate())
        assert [s.text for s in source.pipe(reactivex.operators.to_list()).run()] == ["a", "ab"]
        assert [s.text for s in source.pipe(reactivex.operators.to_list()).run()] == ["a", "ab"]


class TestText:
    """text() keeps only non-empty content deltas."""

    def test_skips_chunks_without_content(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, c("Hi")),
            on_next(220, c("", usage=Usage())),
            on_next(230, c(" there")),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(ops.text()))
        assert results.messages == [on_next(210, "Hi"), on_next(230, " there"), on_completed(240)]
        assert xs.subscriptions == [subscribe(200, 240)]


class TestToResponse:
    """to_response emits one Response at completion, from chunks or snapshots."""

    def test_one_response_at_completion(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, c("Hel")), on_next(220, c("lo", finish_reason="stop")), on_completed(230)
        )
        results = scheduler.start(lambda: xs.pipe(ops.to_response()))
        assert len(results.messages) == 2
        assert results.messages[0].time == 230
        response = results.messages[0].value.value
        assert (response.text, response.finish_reason, response.chunk_count) == ("Hello", "stop", 2)
        assert results.messages[1] == on_completed(230)

    def test_after_take_until_on_snapshots_the_finish_reason_is_none(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, c("a ")), on_next(220, c("b ")), on_next(230, c("c", finish_reason="stop"))
        )
        results = scheduler.start(
            lambda: xs.pipe(
                ops.accumulate(), ops.take_until(lambda s: "b" in s.text), ops.to_response()
            )
        )
        response = results.messages[0].value.value
        assert (response.text, response.finish_reason) == ("a b ", None)
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_errors_pass_through_without_a_response(self) -> None:
        scheduler = TestScheduler()
        error = RuntimeError("x")
        xs = scheduler.create_hot_observable(on_next(210, c("a")), on_error(220, error))
        results = scheduler.start(lambda: xs.pipe(ops.to_response()))
        assert results.messages == [on_error(220, error)]
