"""`on_finish(callback)`: the response so far, once, however the stream ends.

Saving what a user stopped half-way (a Stop button, `take_until`, leaving a page) needs
the response at the moment of the stop, which disposal does not carry: errors have their
`partial`, completion can be materialized, but a disposed subscription just ends. This
operator keeps the response so far and calls back exactly once: completed, failed, or
disposed (Vercel's onFinish / onAbort).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable

from rxllm.accumulator import materialize
from rxllm.models import Response

__all__ = ["Finish", "on_finish"]

T = TypeVar("T")
_log = logging.getLogger("rxllm")


class Finish(NamedTuple):
    """How a stream ended, for `on_finish`'s callback.

    >>> import rxllm
    >>> from rxllm import ops
    >>> ended = []
    >>> llm = rxllm.scripted("One. Two. Three.", delay=0.01)
    >>> stream = llm.stream("Count").pipe(
    ...     ops.on_finish(ended.append), ops.take_until(lambda chunk: "Two" in chunk.content))
    >>> _ = rxllm.collect(stream)
    >>> ended[0].outcome, ended[0].response.text, ended[0].response.finish_reason
    ('disposed', 'One. Two. ', None)
    """

    response: Response
    """Everything received, materialized (`finish_reason` None when it was cut short)."""
    outcome: Literal["completed", "error", "disposed"]
    """Completed normally, failed with `error`, or disposed before either."""
    error: Exception | None = None
    """The error it failed with (outcome "error")."""


def on_finish(
    callback: Callable[[Finish], Any],
) -> Callable[[reactivex.Observable[T]], reactivex.Observable[T]]:
    """Pass `Chunk`s (or `Snapshot`s) through unchanged; call `callback(Finish(...))` once
    when the stream completes, fails, or is disposed first, with the response so far.

    The callback runs where the end happens: on the thread (or loop) that delivered the
    completion or error, before it is passed on; or on the thread that disposed. If it
    raises at completion or error, the subscriber gets that exception through `on_error`;
    at disposal nobody listens any more and `dispose()` must not raise (`take_until` would
    never complete), so it is logged on the `rxllm` logger with its traceback.

    Put it after `retry(...)`, not before: `retry` resumes only a provider stream.

        chunks:    -a--b--c--|            -a--b--X             -a--b-- (disposed)
        on_finish(cb)
        output:    -a--b--c--|            -a--b--X             -a--b--
        cb:        ----------F(abc,        -------F(ab,         -------F(ab,
                               completed)          error, X)            disposed)

    >>> import rxllm
    >>> from rxllm import ops
    >>> ended = []
    >>> llm = rxllm.scripted(["One. ", "Two. ", "Three."], delay=0.01)
    >>> stream = llm.stream("count").pipe(
    ...     ops.on_finish(ended.append), ops.take_until(lambda c: "Two" in c.content)
    ... )
    >>> rxllm.collect(stream).text
    'One. Two. '
    >>> ended[0].outcome, ended[0].response.text
    ('disposed', 'One. Two. ')
    """
    if not callable(callback):
        raise TypeError(f"on_finish() takes a function of a Finish, not {callback!r}")

    def operator(source: reactivex.Observable[T]) -> reactivex.Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            builder = materialize()
            lock = threading.Lock()
            finished = False

            def finish(
                outcome: Literal["completed", "error", "disposed"], error: Exception | None
            ) -> bool:
                nonlocal finished
                with lock:
                    if finished:
                        return False
                    finished = True
                callback(Finish(builder.response(), outcome, error))
                return True

            def on_next(item: T) -> None:
                try:
                    builder.add(item)
                except TypeError as error:
                    on_error(error)
                    return
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                try:
                    finish("error", error)
                except Exception as failure:
                    failure.__context__ = error
                    observer.on_error(failure)
                    return
                observer.on_error(error)

            def on_completed() -> None:
                try:
                    finish("completed", None)
                except Exception as failure:
                    observer.on_error(failure)
                    return
                observer.on_completed()

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

            def dispose() -> None:
                subscription.dispose()
                try:
                    finish("disposed", None)
                except Exception:  # nobody listens any more, and dispose() must not raise
                    _log.exception("rxllm.ops.on_finish: the callback raised at disposal")

            return Disposable(dispose)

        return reactivex.create(subscribe)

    return operator
