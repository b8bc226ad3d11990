"""The shape several operators share: a stateful decoder fed item by item, flushed at the end.

`sentences()`, `tool_calls()` and `audio_segments()` are each a plain decoder object
(`decode(value) -> list`, `flush() -> list`, testable without Rx) wrapped by `decoding`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import reactivex
from reactivex import abc

from rxllm.ops._completion import complete_with

__all__ = ["Decoder", "decoding"]

In = TypeVar("In")
Out = TypeVar("Out")


class Decoder(Protocol[Out]):
    """Turns values into outputs as they complete; `flush` gives the rest at the end."""

    def decode(self, value: Any) -> list[Out]: ...

    def flush(self) -> list[Out]: ...

    @property
    def failure(self) -> Exception | None:
        """An error to report after the values `decode` returned with it (None: none)."""
        ...


def decoding(
    make: Callable[[], Decoder[Out]], value: Callable[[In], Any]
) -> Callable[[reactivex.Observable[In]], reactivex.Observable[Out]]:
    """An operator: one decoder per subscription (`make()`), fed `value(item)` for each item.

    What `decode` returns is emitted at once, what `flush` returns on completion. A
    `TypeError` from `value` (a wrong item type) or a `ValueError` from the decoder goes to
    `on_error`, and so does a decoder's `failure` attribute once set (after the values
    `decode` returned with it). On an error from the source, what is not yet complete is
    dropped.
    """

    def operator(source: reactivex.Observable[In]) -> reactivex.Observable[Out]:
        def subscribe(
            observer: abc.ObserverBase[Out], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            decoder = make()

            def on_next(item: In) -> None:
                try:
                    complete = decoder.decode(value(item))
                except (TypeError, ValueError) as error:
                    observer.on_error(error)
                    return
                for out in complete:
                    observer.on_next(out)
                failure = decoder.failure
                if failure is not None:  # after the values it completed
                    observer.on_error(failure)

            def on_completed() -> None:
                try:
                    rest = decoder.flush()
                except (TypeError, ValueError) as error:
                    observer.on_error(error)
                    return
                complete_with(observer, *rest)

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator
