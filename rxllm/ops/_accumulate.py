"""`accumulate()`: one immutable `Snapshot` of the response so far per chunk."""

from __future__ import annotations

from collections.abc import Callable

import reactivex
from reactivex import abc

from rxllm.accumulator import Accumulator, Snapshot
from rxllm.llm import CallStream
from rxllm.models import Chunk
from rxllm.ops._chunk_input import not_chunks

__all__ = ["accumulate"]


def accumulate() -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[Snapshot]]:
    """The response so far, once per chunk (declarai-style "Av", "Avengers", ...).

    Each `Snapshot` keeps its own view (an old one still says "Av"); `snapshot.delta` is
    the chunk just added, `snapshot.response()` materializes a `Response`. The cost per
    chunk is O(size of the chunk): the text is joined only when `.text` is read.

        chunks:     -"Av"--"eng"--"ers"-|
        accumulate()
        snapshots:  -s0----s1-----s2----|   s0.text == "Av", s2.text == "Avengers"

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted(["Av", "eng", "ers"])
    >>> [s.text for s in rxllm.iterate(llm.stream("hero?").pipe(ops.accumulate()))]
    ['Av', 'Aveng', 'Avengers']
    """

    def operator(source: reactivex.Observable[Chunk]) -> reactivex.Observable[Snapshot]:
        if isinstance(source, CallStream):
            return source.snapshots()  # fused into the call: the same snapshots, one layer less

        def subscribe(
            observer: abc.ObserverBase[Snapshot], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            add = Accumulator().add

            def on_next(chunk: Chunk) -> None:
                try:
                    snapshot = add(chunk)
                except AttributeError:
                    if isinstance(chunk, Chunk):
                        raise
                    raise not_chunks("accumulate", chunk) from None
                observer.on_next(snapshot)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator
