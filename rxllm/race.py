"""`race()`: hedged calls — the first source to produce content wins, the others are cancelled.

Sending the same request to two providers (or twice to one) and keeping whichever answers
first cuts tail latency. What counts is the first *content*, not the first chunk: many
providers send metadata (role, model, usage) before any token, and a source that merely
connected first has not won anything yet. Unlike `reactivex.amb`, which picks the first
source to emit anything, `race` buffers each source's metadata-only chunks until one
produces content.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

from rxllm._checks import require_observable
from rxllm.models import Chunk

__all__ = ["race"]

T = TypeVar("T")


def race(*sources: reactivex.Observable[T]) -> reactivex.Observable[T]:
    """Subscribe all `sources` at once; mirror the first to produce content, cancel the rest.

    Content is a chunk with non-empty `content`, `thinking`, `refusal`, `audio`,
    `audio_transcript` or `tool_calls` (any item that is not a `Chunk` counts as content).
    Until a source produces content, its other chunks (metadata, usage) are buffered; the
    winner's buffer is replayed, then the winner is mirrored, and the others are disposed
    at that moment — which cancels their calls. Before anyone wins, a source that fails or
    completes is dropped; if all of them fail the last error is delivered, if all end and
    at least one completed the result completes (empty).

        fast:  ---m----a--b--|
        slow:  -m-----------x--y--|     disposed when fast emits "a"
        race(fast, slow)
        out:   --------(ma)-b--|

    >>> import rxllm
    >>> slow = rxllm.scripted("Slow answer.", delay=5.0)
    >>> fast = rxllm.scripted("Fast answer.", delay=0.01)
    >>> rxllm.collect(rxllm.race(slow.stream("q"), fast.stream("q")), timeout=2).text
    'Fast answer.'
    """
    if not sources:
        raise ValueError("race() needs at least one source")
    for source in sources:
        require_observable("race", source, several=True)

    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lock = threading.Lock()
        subscriptions = [SingleAssignmentDisposable() for _ in sources]
        buffers: list[list[T]] = [[] for _ in sources]
        winner: int | None = None
        ended = 0  # sources dropped before anyone won
        completed = False
        last_error: Exception | None = None

        def cancel_others(keep: int) -> None:
            for index, subscription in enumerate(subscriptions):
                if index != keep:
                    subscription.dispose()

        def entrant(index: int) -> abc.ObserverBase[T]:
            def on_next(item: T) -> None:
                nonlocal winner
                if winner == index:
                    observer.on_next(item)
                    return
                with lock:
                    if winner is not None:
                        return  # lost: its disposal is under way
                    if not _is_content(item):
                        buffers[index].append(item)
                        return
                    winner = index
                    replay = buffers[index]
                    buffers[:] = [[] for _ in sources]  # the losers' chunks are not needed
                cancel_others(index)
                for buffered in replay:
                    observer.on_next(buffered)
                observer.on_next(item)

            def drop(error: Exception | None) -> None:
                nonlocal ended, completed, last_error
                with lock:
                    if winner is not None:
                        return
                    ended += 1
                    buffers[index].clear()
                    if error is None:
                        completed = True
                    else:
                        last_error = error
                    if ended < len(sources):
                        return
                if completed or last_error is None:
                    observer.on_completed()
                else:
                    observer.on_error(last_error)

            def on_error(error: Exception) -> None:
                if winner == index:
                    observer.on_error(error)
                else:
                    drop(error)

            def on_completed() -> None:
                if winner == index:
                    observer.on_completed()
                else:
                    drop(None)

            return reactivex.Observer(on_next, on_error, on_completed)

        for index, source in enumerate(sources):
            if winner is not None:
                break  # a source that won while being subscribed leaves no race to run
            subscriptions[index].disposable = source.subscribe(entrant(index), scheduler=scheduler)
        return CompositeDisposable(subscriptions)

    return reactivex.create(subscribe)


def _is_content(item: Any) -> bool:
    return not isinstance(item, Chunk) or item.has_delta
