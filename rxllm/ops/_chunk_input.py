"""Operators that take `Chunk`s: the check of each item, with an error that says where the
operator belongs in the pipeline when it got something else (a `Snapshot`, text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rxllm.models import Chunk

__all__ = ["chunk_for", "not_chunks"]

_HINTS = {
    "Snapshot": " (accumulate() already made snapshots of the chunks: put {op}() before it, "
    "or read the snapshot's fields)",
    "str": " (text() or sentences() already made text of the chunks: put {op}() before it)",
}


def not_chunks(operator: str, item: Any) -> TypeError:
    """The error for an operator that takes `Chunk`s and got something else."""
    kind = type(item).__name__
    hint = _HINTS.get(kind, "").format(op=operator)
    return TypeError(f"{operator}() takes Chunks, got {kind}{hint}")


def chunk_for(operator: str) -> Callable[[Any], Any]:
    """`value` for operators that take `Chunk`s: the chunk itself, else a TypeError."""

    def value(item: Any) -> Chunk:
        if not isinstance(item, Chunk):
            raise not_chunks(operator, item)
        return item

    return value
