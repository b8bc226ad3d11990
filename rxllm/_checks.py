"""Argument checks shared by the public functions: what counts as an int, a number of
seconds, an Observable, with messages that say what to pass."""

from __future__ import annotations

import math

import reactivex

__all__ = ["is_int", "is_number", "require_observable", "require_seconds"]


def is_int(value: object) -> bool:
    """An `int` that is not a `bool` (`True` is an int to Python, never to a caller).

    >>> is_int(3), is_int(True), is_int(2.0)
    (True, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An `int` or a `float` (NaN included: compare it to say which range), not a `bool`.

    >>> is_number(0.5), is_number(False), is_number("1")
    (True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_observable(function: str, source: object, *, several: bool = False) -> None:
    """A TypeError that says what to pass, unless `source` is an Observable."""
    if isinstance(source, reactivex.Observable):
        return
    kind = type(source).__name__
    if callable(getattr(source, "stream", None)):
        hint = ": call llm.stream(prompt) to get one call's Observable"
    elif several and isinstance(source, list | tuple):
        hint = ": pass each Observable as an argument of its own, e.g. race(*sources)"
    else:
        hint = ""
    raise TypeError(
        f"rxllm.{function}() takes an Observable (e.g. llm.stream(prompt)), not {kind}{hint}"
    )


def require_seconds(function: str, name: str, value: object) -> None:
    """A ValueError unless `value` is None or a number of seconds >= 0 (not NaN)."""
    if value is None or (is_number(value) and value >= 0 and not math.isnan(value)):  # type: ignore[operator, arg-type]
        return
    raise ValueError(f"rxllm.{function}({name}=...) must be seconds >= 0 or None, not {value!r}")
