"""`to_response()`: one `Response` when the source completes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import abc

from rxllm.accumulator import materialize
from rxllm.models import Response
from rxllm.ops._completion import complete_with

__all__ = ["to_response"]


def to_response() -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Response]]:
    """Materialize a stream of `Chunk`s (or `Snapshot`s) into exactly one `Response`.

    Emitted when the source completes — also when `take_until` cut it short, in which
    case `finish_reason` is None. Errors pass through (they carry their own `partial`).

        chunks:    -a--b--c--|
        to_response()
        output:    ----------R|        R.text == "abc"

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted(["Hel", "lo"])
    >>> llm.stream("hi").pipe(ops.to_response()).run().text
    'Hello'
    """

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Response]:
        def subscribe(
            observer: abc.ObserverBase[Response], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            builder = materialize()

            def on_completed() -> None:
                try:
                    response = builder.response()
                except Exception as error:
                    observer.on_error(error)
                    return
                complete_with(observer, response)

            return source.subscribe(
                builder.add, observer.on_error, on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator
