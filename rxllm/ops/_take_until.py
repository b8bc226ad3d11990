"""`take_until(predicate | observable)`: stop the stream early — and the call with it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

from rxllm._loops import call_on_loop
from rxllm.ops._completion import complete_with

__all__ = ["take_until"]

T = TypeVar("T")


def take_until(
    stop: Callable[[T], bool] | reactivex.Observable[Any], *, inclusive: bool = True
) -> Callable[[reactivex.Observable[T]], reactivex.Observable[T]]:
    """Pass items until `stop(item)` is true (or the `stop` observable emits), then complete.

    The upstream subscription is disposed *before* completion is sent, so a provider call
    upstream is cancelled (its HTTP response closed) at the moment of the match. With
    `inclusive` the matching item is emitted first. An observable `stop` (a Stop button's
    subject) may fire on any thread; it stops the call even while no chunk is arriving.

        source:   -a--b--c--d--e-|
        take_until(lambda x: x == "c")
        output:   -a--b--c|              upstream disposed at "c"

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted("One. Two. Three.")
    >>> stream = llm.stream("count").pipe(
    ...     ops.accumulate(), ops.take_until(lambda s: "Two" in s.text), ops.to_response()
    ... )
    >>> response = stream.run()
    >>> response.text, response.finish_reason
    ('One. Two. ', None)
    """
    if isinstance(stop, reactivex.Observable):
        return _until_observable(stop)
    if not callable(stop):
        raise TypeError(f"take_until takes a predicate or an Observable, not {type(stop).__name__}")
    predicate: Callable[[T], bool] = stop

    def operator(source: reactivex.Observable[T]) -> reactivex.Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            upstream = SingleAssignmentDisposable()
            done = False

            def on_next(item: T) -> None:
                nonlocal done
                if done:
                    return
                try:
                    matched = predicate(item)
                except Exception as error:
                    done = True
                    upstream.dispose()
                    observer.on_error(error)
                    return
                if not matched:
                    observer.on_next(item)
                    return
                done = True
                upstream.dispose()  # cancel the call first: the provider stops now
                complete_with(observer, *((item,) if inclusive else ()))

            def on_error(error: Exception) -> None:
                if not done:
                    observer.on_error(error)

            def on_completed() -> None:
                if not done:
                    observer.on_completed()

            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler
            )
            return upstream

        return reactivex.create(subscribe)

    return operator


def _until_observable(
    signal: reactivex.Observable[Any],
) -> Callable[[reactivex.Observable[T]], reactivex.Observable[T]]:
    def operator(source: reactivex.Observable[T]) -> reactivex.Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            lock = threading.RLock()
            upstream = SingleAssignmentDisposable()
            stopper = SingleAssignmentDisposable()
            done = False
            # Subscribed on a running event loop, every notification belongs on its thread
            # (API.md), also when the signal fires on another one (a UI or timer thread).
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None

            def finish(error: Exception | None = None) -> None:
                nonlocal done
                with lock:
                    if done:
                        return
                    done = True
                upstream.dispose()  # at once, from any thread: the call stops now
                stopper.dispose()
                if loop is None:
                    notify(error)
                else:
                    call_on_loop(loop, notify, error)

            def notify(error: Exception | None) -> None:
                with lock:
                    if error is None:
                        observer.on_completed()
                    else:
                        observer.on_error(error)

            def on_next(item: T) -> None:
                with lock:
                    if not done:
                        observer.on_next(item)

            stopper.disposable = signal.subscribe(
                lambda _: finish(), finish, lambda: None, scheduler=scheduler
            )
            if done:  # the signal had already fired (e.g. a BehaviorSubject): no call at all
                return stopper
            upstream.disposable = source.subscribe(on_next, finish, finish, scheduler=scheduler)
            return CompositeDisposable(upstream, stopper)

        return reactivex.create(subscribe)

    return operator
