"""Sending the items a source's completion releases (a `Response`, the last sentence, the
final model), so that a subscriber's `on_next` raising on one of them still reaches its
`on_error` instead of escaping into the producer's thread."""

from __future__ import annotations

from typing import Any

from reactivex import abc

__all__ = ["complete_with"]


def complete_with(observer: abc.ObserverBase[Any], *items: Any) -> None:
    """`on_next` each item, then `on_completed`; `on_error` instead if an `on_next` raised."""
    for item in items:
        try:
            observer.on_next(item)
        except Exception as error:
            observer.on_error(error)
            return
    observer.on_completed()
