"""`tee()` and `audio_split()`: several branches, ONE upstream subscription (one call)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as rx_ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.mockobserver import MockObserver

import rxllm
from rxllm.models import Chunk
from rxllm.tee import AudioSplit, audio_split, tee

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def at(
    scheduler: TestScheduler,
    time: float,
    source: reactivex.Observable[Any],
    observer: MockObserver[Any],
) -> list[abc.DisposableBase]:
    """Subscribe `observer` to `source` at virtual `time`; the list receives the subscription."""
    holder: list[abc.DisposableBase] = []

    def action(_: abc.SchedulerBase, __: Any = None) -> None:
        holder.append(source.subscribe(observer, scheduler=scheduler))

    scheduler.schedule_absolute(time, action)
    return holder


def dispose_at(scheduler: TestScheduler, time: float, holder: list[abc.DisposableBase]) -> None:
    def action(_: abc.SchedulerBase, __: Any = None) -> None:
        holder[0].dispose()

    scheduler.schedule_absolute(time, action)


class Counted:
    """A source that counts its subscriptions, and its disposals before it terminated."""

    def __init__(self, source: reactivex.Observable[Any]) -> None:
        self.subscriptions = 0
        self.cancels = 0

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.subscriptions += 1
            ended = False

            def end(*_: Any) -> None:
                nonlocal ended
                ended = True

            inner = source.pipe(rx_ops.do_action(on_error=end, on_completed=end)).subscribe(
                observer, scheduler=scheduler
            )

            def dispose() -> None:
                if not ended:
                    self.cancels += 1
                inner.dispose()

            return reactivex.disposable.Disposable(dispose)

        self.observable: reactivex.Observable[Any] = reactivex.create(subscribe)


class TestStart:
    """The upstream starts once every branch is there."""

    def test_starts_when_the_last_branch_subscribes(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        at(scheduler, 200, left, a)
        at(scheduler, 250, right, b)
        scheduler.start()
        expected = [on_next(260, "a"), on_next(270, "b"), on_completed(280)]
        assert a.messages == b.messages == expected
        assert xs.subscriptions == [subscribe(250, 280)]

    def test_a_branch_disposed_before_the_start_counts_as_present(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        dispose_at(scheduler, 220, at(scheduler, 210, left, a))
        at(scheduler, 250, right, b)
        scheduler.start()
        assert a.messages == []
        assert b.messages == [on_next(260, "a"), on_completed(270)]
        assert xs.subscriptions == [subscribe(250, 270)]

    def test_every_branch_disposed_before_the_start_still_lets_the_last_one_run(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(30, "b"))
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        dispose_at(scheduler, 220, at(scheduler, 210, left, a))
        dispose_at(scheduler, 250, at(scheduler, 230, right, b))
        scheduler.start()
        assert a.messages == []
        assert b.messages == [on_next(240, "a")]
        assert xs.subscriptions == [subscribe(230, 250)]

    def test_never_starts_while_a_branch_is_not_subscribed(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
        left, _right = tee(xs)
        dispose_at(scheduler, 300, at(scheduler, 210, left, scheduler.create_observer()))
        scheduler.start()
        assert xs.subscriptions == []

    def test_n_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            tee(reactivex.empty(), 0)


class TestDelivery:
    """Every branch sees every item, the completion and the error."""

    def test_error_reaches_every_branch(self) -> None:
        error = RuntimeError("boom")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, "a"), on_error(220, error))
        branches = tee(xs, 3)
        observers = [scheduler.create_observer() for _ in branches]
        for branch, observer in zip(branches, observers, strict=True):
            at(scheduler, 200, branch, observer)
        scheduler.start()
        for observer in observers:
            assert observer.messages == [on_next(210, "a"), on_error(220, error)]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_a_second_subscription_of_a_branch_fails(self) -> None:
        left, _right = tee(reactivex.never())
        left.subscribe()
        failures: list[Exception] = []
        left.subscribe(on_error=failures.append)
        assert isinstance(failures[0], RuntimeError)
        assert "only once" in str(failures[0])

    def test_a_raising_branch_fails_alone(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, "a"), on_next(220, "b"), on_next(230, "c"), on_completed(240)
        )
        left, right = tee(xs)
        failures: list[Exception] = []
        seen: list[str] = []

        def explode(item: str) -> None:
            if item == "b":
                raise ValueError("subscriber bug")

        right_observer = scheduler.create_observer()

        def start(_: abc.SchedulerBase, __: Any = None) -> None:
            left.subscribe(explode, failures.append)

        scheduler.schedule_absolute(200, start)
        at(scheduler, 200, right.pipe(rx_ops.do_action(seen.append)), right_observer)
        scheduler.start()
        assert [type(f) for f in failures] == [ValueError]
        assert right_observer.messages == [
            on_next(210, "a"),
            on_next(220, "b"),
            on_next(230, "c"),
            on_completed(240),
        ]

    @pytest.mark.parametrize("n", [2, 3])
    def test_a_branch_without_on_error_does_not_keep_the_others_from_ending(self, n: int) -> None:
        # `.subscribe(on_next)` alone: reactivex's default on_error raises the error back.
        # That used to skip the later branches: they waited for ever.
        scheduler = TestScheduler()
        boom = rxllm.ServerError("boom")
        xs = scheduler.create_hot_observable(on_next(210, "a"), on_error(220, boom))
        first, *others = tee(xs, n)
        observers = [scheduler.create_observer() for _ in others]

        def start(_: abc.SchedulerBase, __: Any = None) -> None:
            first.subscribe(lambda _: None)

        scheduler.schedule_absolute(200, start)
        for branch, observer in zip(others, observers, strict=True):
            at(scheduler, 200, branch, observer)
        scheduler.start()
        for observer in observers:
            assert observer.messages == [on_next(210, "a"), on_error(220, boom)]

    def test_a_raising_branch_without_on_error_fails_alone(self) -> None:
        # Its own error raised back from its on_error must neither reach the others nor
        # fail the upstream (the call) for everybody.
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, "a"), on_next(220, "b"), on_next(230, "c"), on_completed(240)
        )
        left, middle, right = tee(xs, 3)

        def explode(item: str) -> None:
            if item == "a":
                raise ValueError("subscriber bug")

        observers = [scheduler.create_observer(), scheduler.create_observer()]

        def start(_: abc.SchedulerBase, __: Any = None) -> None:
            left.subscribe(explode)

        scheduler.schedule_absolute(200, start)
        at(scheduler, 200, middle, observers[0])
        at(scheduler, 200, right, observers[1])
        scheduler.start()
        for observer in observers:
            assert observer.messages == [
                on_next(210, "a"),
                on_next(220, "b"),
                on_next(230, "c"),
                on_completed(240),
            ]

    def test_the_last_raising_branch_disposes_the_upstream(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, "a"), on_next(220, "b"), on_completed(240)
        )
        (only,) = tee(xs, 1)
        failures: list[Exception] = []

        def explode(item: str) -> None:
            raise ValueError(item)

        def start(_: abc.SchedulerBase, __: Any = None) -> None:
            only.subscribe(explode, failures.append)

        scheduler.schedule_absolute(200, start)
        scheduler.start()
        assert [str(f) for f in failures] == ["a"]
        assert xs.subscriptions == [subscribe(200, 210)]


class TestDisposal:
    """The upstream is disposed only when no branch listens any more."""

    def test_disposed_when_the_last_branch_disposes(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, "a"), on_next(310, "b"), on_next(410, "c")
        )
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        dispose_at(scheduler, 300, at(scheduler, 200, left, a))
        dispose_at(scheduler, 400, at(scheduler, 200, right, b))
        scheduler.start()
        assert a.messages == [on_next(210, "a")]
        assert b.messages == [on_next(210, "a"), on_next(310, "b")]
        assert xs.subscriptions == [subscribe(200, 400)]

    def test_a_branch_disposed_inside_on_next_gets_nothing_more(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, 1), on_next(220, 2), on_next(230, 3), on_completed(240)
        )
        left, right = tee(xs)
        seen: list[int] = []
        holder: list[abc.DisposableBase] = []

        def on_item(item: int) -> None:
            seen.append(item)
            if item == 2:
                holder[0].dispose()

        holder.append(left.subscribe(on_item, scheduler=scheduler))
        others = scheduler.create_observer()
        at(scheduler, 200, right, others)
        scheduler.start()
        assert seen == [1, 2]
        assert others.messages == [
            on_next(210, 1),
            on_next(220, 2),
            on_next(230, 3),
            on_completed(240),
        ]
        assert xs.subscriptions == [subscribe(200, 240)]

    def test_completion_is_not_an_early_disposal(self) -> None:
        source = Counted(reactivex.of(1, 2))
        left, right = tee(source.observable)
        left.subscribe()
        right.subscribe()
        assert (source.subscriptions, source.cancels) == (1, 0)


# Hypothesis: any items, any number of branches, any branch stopping after any item.
@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.integers(), max_size=20),
    n=st.integers(1, 4),
    stops=st.lists(st.integers(0, 25) | st.none(), min_size=4, max_size=4),
    fail=st.booleans(),
)
def test_every_branch_sees_the_same_items_from_one_subscription(
    items: list[int], n: int, stops: list[int | None], fail: bool
) -> None:
    scheduler = TestScheduler()
    error = RuntimeError("end")
    messages = [on_next(210 + 10 * i, item) for i, item in enumerate(items)]
    end = 210 + 10 * len(items)
    messages.append(on_error(end, error) if fail else on_completed(end))
    xs = scheduler.create_cold_observable(messages)
    source = Counted(xs)
    branches = tee(source.observable, n)
    received: list[list[Any]] = [[] for _ in range(n)]
    subscriptions: list[abc.DisposableBase | None] = [None] * n

    def make(index: int) -> abc.ObserverBase[Any]:
        def on_item(item: int) -> None:
            received[index].append(item)
            stop = stops[index]
            if stop is not None and len(received[index]) > stop:
                subscription = subscriptions[index]
                assert subscription is not None
                subscription.dispose()

        return reactivex.Observer(
            on_item, received[index].append, lambda: received[index].append("done")
        )

    for index, branch in enumerate(branches):
        subscriptions[index] = branch.subscribe(make(index), scheduler=scheduler)
    scheduler.start()
    assert source.subscriptions == 1
    terminal = error if fail else "done"
    listeners = 0
    for index in range(n):
        stop = stops[index]
        if stop is not None and stop < len(items):
            assert received[index] == items[: stop + 1]  # nothing after its disposal
        else:
            listeners += 1
            assert received[index] == [*items, terminal]
    assert source.cancels == (0 if listeners else 1)


class TestWithProviders:
    """One call for all branches, with real threads."""

    def test_one_call_for_all_branches_subscribed_from_threads(self) -> None:
        llm = rxllm.scripted("One call for three branches.", delay=0.005)
        branches = tee(llm.stream("x"), 3)
        results: list[str] = [""] * 3

        def run(index: int) -> None:
            results[index] = rxllm.collect(branches[index], timeout=5).text

        threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert results == ["One call for three branches."] * 3
        assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]

    @pytest.mark.parametrize("attempt", range(20))
    def test_branches_subscribed_concurrently_share_one_subscription(self, attempt: int) -> None:
        source = Counted(reactivex.from_iterable(range(100)))
        branches = tee(source.observable, 8)
        received: list[list[int]] = [[] for _ in branches]
        barrier = threading.Barrier(len(branches))

        def run(index: int) -> None:
            barrier.wait()
            branches[index].subscribe(received[index].append)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(branches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert source.subscriptions == 1
        assert received == [list(range(100))] * len(branches)

    def test_nothing_reaches_a_branch_after_its_disposal_returned(self) -> None:
        llm = rxllm.scripted(["a"] * 300, delay=0.001)
        left, right = tee(llm.stream("x"))
        seen: list[Chunk] = []
        enough = threading.Event()

        def on_item(chunk: Chunk) -> None:
            seen.append(chunk)
            if len(seen) >= 5:
                enough.set()

        subscription = left.subscribe(on_item)
        right.subscribe()
        assert enough.wait(5)
        subscription.dispose()  # from this thread, while the call thread delivers
        count = len(seen)
        threading.Event().wait(0.05)
        assert len(seen) == count

    def test_the_call_is_cancelled_when_every_branch_is_disposed(self) -> None:
        llm = rxllm.scripted(["a"] * 50, delay=0.01)
        produced: list[str] = []
        cancelled = threading.Event()

        def record(chunk: Chunk) -> None:
            produced.append(chunk.content)

        source = llm.stream("x").pipe(
            rx_ops.do_action(record),
            rx_ops.finally_action(cancelled.set),
        )
        left, right = tee(source)
        first = threading.Event()
        a = left.subscribe(lambda _: first.set())
        b = right.subscribe()
        assert first.wait(5)
        a.dispose()
        assert not cancelled.wait(0.05)  # `right` still listens
        b.dispose()
        assert cancelled.wait(5)
        count = len(produced)
        threading.Event().wait(0.1)
        assert len(produced) == count < 50


class TestAudioSplit:
    """Text, audio and transcript of one call."""

    def test_three_streams_from_one_call(self) -> None:
        llm = rxllm.scripted(
            [
                Chunk(content="Hi"),
                Chunk(audio=b"\x01\x00", audio_transcript="He"),
                Chunk(audio=b"\x02\x00", audio_transcript="llo"),
                Chunk(content=" there"),
            ],
            delay=0.002,
        )
        split = audio_split(llm.stream("x"))
        assert isinstance(split, AudioSplit)
        audio: list[bytes] = []
        transcript: list[str] = []
        split.audio.subscribe(audio.append)
        split.transcript.subscribe(transcript.append)
        texts = list(rxllm.iterate(split.text))
        assert texts == ["Hi", " there"]
        assert audio == [b"\x01\x00", b"\x02\x00"]
        assert transcript == ["He", "llo"]
        assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]

    def test_unused_streams_are_subscribed_and_disposed(self) -> None:
        llm = rxllm.scripted([Chunk(audio=b"\x01\x00", audio_transcript="Hi")])
        text, audio, transcript = audio_split(llm.stream("x"))
        text.subscribe().dispose()
        transcript.subscribe().dispose()
        assert list(rxllm.iterate(audio)) == [b"\x01\x00"]

    def test_an_error_reaches_all_three(self) -> None:
        llm = rxllm.scripted(["a"], error=rxllm.ServerError("down"))
        split = audio_split(llm.stream("x"))
        failures: list[Exception] = []
        done = threading.Event()

        def fail(error: Exception) -> None:
            failures.append(error)
            if len(failures) == 3:
                done.set()

        for stream in split:
            stream.subscribe(on_error=fail)
        assert done.wait(5)
        assert all(isinstance(f, rxllm.ServerError) for f in failures)
