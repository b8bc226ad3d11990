"""`tee()` and `audio_split()`: several branches, ONE upstream subscription (one call)."""

from __future__ import annotations

import gc
import threading
import time
import wave
import weakref
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as rx_ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.mockobserver import MockObserver

import rxllm
from rxllm import ops
from rxllm.models import Chunk
from rxllm.tee import AudioSplit, audio_split, tee
from rxllm.testing import Script, Server

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
    """The upstream starts with the FIRST branch; a later branch gets what it missed first."""

    def test_starts_when_the_first_branch_subscribes(self) -> None:
        # Changed with issue 16: it used to start with the last one (and hang with one).
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(
            on_next(10, "a"), on_next(20, "b"), on_next(60, "c"), on_completed(70)
        )
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        at(scheduler, 200, left, a)
        at(scheduler, 250, right, b)
        scheduler.start()
        assert a.messages == [
            on_next(210, "a"),
            on_next(220, "b"),
            on_next(260, "c"),
            on_completed(270),
        ]
        # "a" and "b" replayed at its subscription, then live
        assert b.messages == [
            on_next(250, "a"),
            on_next(250, "b"),
            on_next(260, "c"),
            on_completed(270),
        ]
        assert xs.subscriptions == [subscribe(200, 270)]

    def test_one_branch_alone_runs_to_the_end(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
        _, middle, _ = tee(xs, 3)
        observer = scheduler.create_observer()
        at(scheduler, 200, middle, observer)
        scheduler.start()
        assert observer.messages == [on_next(210, "a"), on_completed(220)]
        assert xs.subscriptions == [subscribe(200, 220)]

    @pytest.mark.parametrize("fail", [False, True])
    def test_a_branch_subscribed_after_the_end_gets_the_whole_replay(self, fail: bool) -> None:
        scheduler = TestScheduler()
        error = RuntimeError("boom")
        ending = on_error(20, error) if fail else on_completed(20)
        xs = scheduler.create_cold_observable(on_next(10, "a"), ending)
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        at(scheduler, 200, left, a)
        at(scheduler, 400, right, b)
        scheduler.start()
        end = on_error(400, error) if fail else on_completed(400)
        assert b.messages == [on_next(400, "a"), end]
        assert xs.subscriptions == [subscribe(200, 220)]

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
        assert xs.subscriptions == [subscribe(0, 240)]  # started by `left`, subscribed at 0

    def test_completion_is_not_an_early_disposal(self) -> None:
        source = Counted(reactivex.of(1, 2))
        left, right = tee(source.observable)
        left.subscribe()
        right.subscribe()
        assert (source.subscriptions, source.cancels) == (1, 0)

    def test_branches_never_subscribed_do_not_keep_the_call_alive(self) -> None:
        # The stop button of a UI showing one branch stops the model.
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(30, "b"))
        left, _right, _other = tee(xs, 3)
        a = scheduler.create_observer()
        dispose_at(scheduler, 220, at(scheduler, 200, left, a))
        scheduler.start()
        assert a.messages == [on_next(210, "a")]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_a_branch_subscribed_after_the_cancellation_fails_and_says_why(self) -> None:
        # Changed with issue 16: a branch subscribed and disposed used to "count as present"
        # and the call started with the last one.
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        dispose_at(scheduler, 205, at(scheduler, 200, left, a))
        at(scheduler, 250, right, b)
        scheduler.start()
        assert a.messages == []
        assert xs.subscriptions == [subscribe(200, 205)]
        [failure] = b.messages
        assert failure.time == 250
        error = failure.value.exception
        assert isinstance(error, RuntimeError)
        assert "cancelled" in str(error) and "before disposing" in str(error)

    def test_a_branch_disposed_early_leaves_the_others_everything(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(
            on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(40)
        )
        left, right = tee(xs)
        a, b = scheduler.create_observer(), scheduler.create_observer()
        dispose_at(scheduler, 215, at(scheduler, 200, left, a))
        at(scheduler, 212, right, b)  # late ("a" replayed), and listening when `left` goes
        scheduler.start()
        assert a.messages == [on_next(210, "a")]
        assert b.messages == [
            on_next(212, "a"),
            on_next(220, "b"),
            on_next(230, "c"),
            on_completed(240),
        ]
        assert xs.subscriptions == [subscribe(200, 240)]


class Item:
    """An item that can be watched with a weak reference (is anything still keeping it?)."""

    def __init__(self, number: int) -> None:
        self.number = number


class TestMemory:
    """Items are kept only while a branch may still need them."""

    def test_nothing_is_kept_once_every_branch_is_subscribed(self) -> None:
        subject: Subject[Item] = Subject()
        left, right = tee(subject)
        left.subscribe()
        right.subscribe()
        item = Item(1)
        watch = weakref.ref(item)
        subject.on_next(item)
        del item
        gc.collect()
        assert watch() is None

    def test_kept_for_a_branch_not_subscribed_yet_then_released(self) -> None:
        subject: Subject[Item] = Subject()
        left, right = tee(subject)
        left.subscribe()
        items = [Item(i) for i in range(3)]
        watches = [weakref.ref(item) for item in items]
        for item in items:
            subject.on_next(item)
        del items, item
        gc.collect()
        assert all(watch() is not None for watch in watches)  # `right` may still want them
        got: list[int] = []
        right.subscribe(lambda item: got.append(item.number))
        gc.collect()
        assert got == [0, 1, 2]
        assert all(watch() is None for watch in watches)

    def test_released_when_the_call_is_cancelled(self) -> None:
        subject: Subject[Item] = Subject()
        left, _right = tee(subject)
        subscription = left.subscribe()
        item = Item(1)
        watch = weakref.ref(item)
        subject.on_next(item)
        del item
        subscription.dispose()  # nobody listens: cancelled, nothing to keep for `_right`
        gc.collect()
        assert watch() is None
        assert not subject.observers


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


# Hypothesis: any items, any subscription times (also after the end, or never), one call.
@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.integers(), max_size=15),
    times=st.lists(st.integers(0, 20) | st.none(), min_size=1, max_size=4),
    fail=st.booleans(),
)
def test_every_branch_sees_the_same_items_whatever_the_subscription_times(
    items: list[int], times: list[int | None], fail: bool
) -> None:
    scheduler = TestScheduler()
    error = RuntimeError("end")
    # The call's items come 3, 13, 23, ... after it starts; branches subscribe at 205 + 10k
    # (never at the same tick as an item, so the expected order is unambiguous).
    messages = [on_next(10 * i + 3, item) for i, item in enumerate(items)]
    ending = 10 * len(items) + 3
    messages.append(on_error(ending, error) if fail else on_completed(ending))
    xs = scheduler.create_cold_observable(messages)
    branches = tee(xs, len(times))
    observers = [scheduler.create_observer() for _ in times]
    subscribed = [205 + 10 * t for t in times if t is not None]
    for branch, observer, t in zip(branches, observers, times, strict=True):
        if t is not None:
            at(scheduler, 205 + 10 * t, branch, observer)
    scheduler.start()
    if not subscribed:
        assert xs.subscriptions == []
        return
    start = min(subscribed)
    assert xs.subscriptions == [subscribe(start, start + ending)]
    for observer, t in zip(observers, times, strict=True):
        if t is None:
            assert observer.messages == []
            continue
        when = 205 + 10 * t
        expected = [on_next(max(when, start + m.time), m.value.value) for m in messages[:-1]]
        last = max(when, start + ending)
        expected.append(on_error(last, error) if fail else on_completed(last))
        assert observer.messages == expected


@pytest.mark.timeout(60)  # a regression that hangs fails instead
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

    @pytest.mark.parametrize("attempt", range(5))
    def test_branches_subscribed_from_threads_while_items_flow_see_them_all(
        self, attempt: int
    ) -> None:
        # Late branches catch up on their own threads while the upstream's thread goes on:
        # each must get every item once, in order, however the two interleave.
        count = 4000
        reached = [threading.Event() for _ in range(4)]  # a quarter, a half, ... produced

        def produce(
            observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def run() -> None:
                for item in range(count):
                    observer.on_next(item)
                    if item % 20 == 0:
                        time.sleep(0.0005)  # a paced stream, as a provider's
                    if item % (count // 4) == 0:
                        reached[item // (count // 4)].set()
                observer.on_completed()

            threading.Thread(target=run).start()
            return reactivex.disposable.Disposable()

        source = Counted(reactivex.create(produce))
        branches = tee(source.observable, 4)
        received: list[list[int]] = [[] for _ in branches]
        done = [threading.Event() for _ in branches]

        def subscribe(index: int) -> None:
            if index:
                assert reached[index].wait(10)

            def take(item: int) -> None:
                received[index].append(item)
                if item % 10 == 0:
                    time.sleep(0)  # let the other threads run: a catch-up meets new items

            branches[index].subscribe(take, on_completed=done[index].set)

        threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(1, 4)]
        for thread in threads:
            thread.start()
        subscribe(0)
        for thread in threads:
            thread.join(10)
        assert all(event.wait(10) for event in done)
        assert source.subscriptions == 1
        assert received == [list(range(count))] * 4

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

    def test_one_branch_only_never_hangs(self) -> None:
        llm = rxllm.scripted("Only one of three branches is used.", delay=0.002)
        _, used, _ = tee(llm.stream("x"), 3)
        assert rxllm.collect(used, timeout=10).text == "Only one of three branches is used."

    def test_branches_subscribed_apart_see_the_same_call(self) -> None:
        words = [f"w{i} " for i in range(40)]
        llm = rxllm.scripted(words, delay=0.01)
        early, late = tee(llm.stream("x"))
        early_items: list[str] = []
        halfway = threading.Event()
        early_done = threading.Event()

        def on_early(chunk: Chunk) -> None:
            early_items.append(chunk.content)
            if len(early_items) == 20:
                halfway.set()

        early.subscribe(on_early, on_completed=early_done.set)
        assert halfway.wait(10)  # the call is half way through when `late` subscribes
        late_text = rxllm.collect(late, timeout=10).text
        assert early_done.wait(10)
        assert late_text == "".join(early_items) == "".join(words)
        assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]

    def test_one_branch_stopped_early_the_other_gets_the_whole_answer(self, server: Server) -> None:
        server.push(Script([f"w{i} " for i in range(30)], delay=0.005))
        llm = rxllm.openai("m", base_url=server.url, api_key="sk-tee", max_retries=0)
        stopped, whole = tee(llm.stream("x"))
        taken = []
        for chunk in rxllm.iterate(stopped):  # leaving the loop disposes this branch
            taken.append(chunk.content)
            if len(taken) == 2:
                break
        # `whole` was not subscribed yet when `stopped` left: the call was cancelled.
        with pytest.raises(RuntimeError, match="cancelled"):
            rxllm.collect(whole, timeout=10)
        assert server.last.wait_closed(5)

        server.push(Script([f"w{i} " for i in range(30)], delay=0.005))
        stopped, whole = tee(llm.stream("x"))
        result: list[rxllm.Response] = []
        done = threading.Event()
        whole.pipe(ops.to_response()).subscribe(result.append, on_completed=done.set)
        for chunk in rxllm.iterate(stopped):
            if chunk.content == "w1 ":
                break
        assert done.wait(10)
        assert result[0].text == "".join(f"w{i} " for i in range(30))
        assert server.last.chunks_written >= 30

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


@pytest.mark.timeout(60)  # a regression that hangs fails instead
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

    def test_write_wav_on_the_audio_stream_alone(self, tmp_path: Path) -> None:
        # Issue 16: this blocked for ever (the split waited for its two other streams).
        pcm = b"\x01\x00\x02\x00" * 300
        llm = rxllm.scripted(
            [Chunk(content="Hi", audio=pcm[:601], audio_transcript="Hi"), Chunk(audio=pcm[601:])],
            delay=0.002,
        )
        split = audio_split(llm.stream("x"))
        out = rxllm.write_wav(split.audio, tmp_path / "out.wav", timeout=10)
        with wave.open(str(out)) as wav:
            assert wav.readframes(wav.getnframes()) == pcm
        # the other two, subscribed after the end, get the replay of the same call
        assert list(rxllm.iterate(split.text)) == ["Hi"]
        assert list(rxllm.iterate(split.transcript)) == ["Hi"]
        assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]

    def test_the_text_stream_alone_stopped_closes_the_http_call(self, server: Server) -> None:
        server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
        llm = rxllm.openai("m", base_url=server.url, api_key="sk-tee", max_retries=0)
        split = audio_split(llm.stream("x"))
        seen = threading.Event()
        subscription = split.text.subscribe(lambda _: seen.set())
        assert seen.wait(10)
        subscription.dispose()  # the audio and transcript streams were never subscribed
        request = server.last
        assert request.wait_closed(5)
        assert request.chunks_written < 300

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
