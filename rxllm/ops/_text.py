"""`text()`: the non-empty text deltas of a stream."""

from __future__ import annotations

from collections.abc import Callable

import reactivex
from reactivex import abc

from rxllm.models import Chunk
from rxllm.ops._chunk_input import not_chunks

__all__ = ["text"]


def text() -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[str]]:
    """Only the text: each chunk's `content`, skipping chunks that carry none.

        chunks:  -"Hi"--(usage)--" there"-|
        text()
        output:  -"Hi"-----------" there"-|

    >>> import rxllm
    >>> from rxllm import ops
    >>> list(rxllm.iterate(rxllm.scripted(["Hi", " there"]).stream("x").pipe(ops.text())))
    ['Hi', ' there']
    """

    def operator(source: reactivex.Observable[Chunk]) -> reactivex.Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(chunk: Chunk) -> None:
                try:
                    content = chunk.content
                except AttributeError:
                    raise not_chunks("text", chunk) from None
                if content:
                    observer.on_next(content)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator
