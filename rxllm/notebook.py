"""`display(source)`: a stream shown live in a Jupyter notebook, and its `Response`.

In a notebook the answer appears as Markdown that grows as the chunks arrive (one output,
updated in place through IPython's `display_id`); interrupting the cell (the notebook's
stop button, i.e. a `KeyboardInterrupt`) cancels the call. Anywhere else (a script, a
terminal IPython) the text is printed as it arrives. Either way `display` blocks until the
stream ends and returns what it said as a `Response`.

Why not `collect`: in a notebook the kernel's asyncio loop runs while a cell executes, so
the blocking terminals refuse to run there (they would wait for the loop they block). The
stream is subscribed from a helper thread instead, where it runs the SDK's synchronous
client on its own background thread, and only the notebook's thread touches the output.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import time
from typing import Any, Literal, Protocol

import reactivex
from reactivex import abc

from rxllm._checks import require_observable, require_seconds
from rxllm.accumulator import Accumulator, Snapshot
from rxllm.models import Chunk, Response

__all__ = ["display"]

STOPPED = "*⏹ stopped*"
"""The line added under an answer whose cell was interrupted."""


class _View(Protocol):
    """Where the answer is shown while it streams."""

    def add(self, delta: str, text: str) -> None: ...

    def end(self, text: str, note: str | None) -> None: ...


class _Markdown:
    """One notebook output, re-rendered as Markdown at most every `interval` seconds (its
    plain-text form, for consoles and exports, is the same text)."""

    def __init__(self, interval: float) -> None:
        from IPython import display as ipython_display

        output: Any = ipython_display  # IPython's own functions are not annotated
        self._handle: Any = output.display(_bundle("…"), raw=True, display_id=True)
        self._interval = interval
        self._due = 0.0
        self._shown: str | None = None

    def add(self, delta: str, text: str) -> None:
        now = time.monotonic()
        if now >= self._due and text != self._shown:
            self._show(text)
            self._due = now + self._interval

    def end(self, text: str, note: str | None) -> None:
        self._show(f"{text}\n\n{note}" if note else text)

    def _show(self, markdown: str) -> None:
        self._shown = markdown
        self._handle.update(_bundle(markdown), raw=True)


def _bundle(markdown: str) -> dict[str, str]:
    return {"text/markdown": markdown, "text/plain": markdown}


class _Printed:
    """Outside a notebook: the text printed as it arrives."""

    def __init__(self) -> None:
        self._ends_line = True

    def add(self, delta: str, text: str) -> None:
        if delta:
            sys.stdout.write(delta)
            sys.stdout.flush()
            self._ends_line = delta.endswith("\n")

    def end(self, text: str, note: str | None) -> None:
        ending = "" if self._ends_line else "\n"
        sys.stdout.write(ending + (f"{note}\n" if note else ""))
        sys.stdout.flush()


def _in_notebook() -> bool:
    """Whether a Jupyter kernel runs this code (a terminal IPython has no kernel)."""
    shell_module = sys.modules.get("IPython")
    if shell_module is None:
        return False
    shell = shell_module.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Answer:
    """The response so far, from a source of chunks or of snapshots."""

    def __init__(self) -> None:
        self._acc = Accumulator()
        self._last: Snapshot | None = None

    def add(self, item: object) -> tuple[str, str]:
        """Take one item; returns (the text it added, the text so far)."""
        if isinstance(item, Snapshot):
            self._last = item
            return item.delta.content, item.text
        if isinstance(item, Chunk):
            snapshot = self._acc.add(item)
            return item.content, snapshot.text
        raise TypeError(
            f"rxllm.display() shows an observable of Chunk or Snapshot (e.g. llm.stream(...)), "
            f"got {type(item).__name__}; drop operators like text() before displaying"
        )

    def response(self) -> Response:
        return self._last.response() if self._last is not None else self._acc.response()


def display(
    source: reactivex.Observable[Chunk] | reactivex.Observable[Snapshot],
    *,
    interval: float = 0.05,
    interrupt: Literal["return", "raise"] = "return",
) -> Response:
    """Show `source` live — Markdown updated in place in Jupyter, printed elsewhere — and
    return its `Response` when it ends.

    `source` is a call (`llm.stream(...)`, chunks) or its `ops.accumulate()` snapshots.
    In a notebook the output is re-rendered at most every `interval` seconds (and once at
    the end). Interrupting the cell (Jupyter's stop button) cancels the call at once;
    with `interrupt="return"` (the default) the answer so far stays shown, marked
    stopped, and is returned (its `finish_reason` is None); with `"raise"` the
    `KeyboardInterrupt` goes on after the cancel, ending the cell. A failed call shows
    what it said and the error, then raises the error (its `partial` holds that answer).

    >>> import rxllm
    >>> response = rxllm.display(rxllm.scripted("**Hello** there.").stream("hi"))
    **Hello** there.
    >>> response.finish_reason
    'stop'
    """
    require_observable("display", source)
    require_seconds("display", "interval", interval)
    if interrupt not in ("return", "raise"):
        raise ValueError(f'display(interrupt=...) is "return" or "raise", not {interrupt!r}')
    view: _View = _Markdown(interval) if _in_notebook() else _Printed()
    answer = _Answer()
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    subscribed: list[abc.DisposableBase] = []

    def subscribe() -> None:
        subscribed.append(
            source.subscribe(
                lambda item: events.put(("next", item)),
                lambda error: events.put(("error", error)),
                lambda: events.put(("done", None)),
            )
        )

    # With a loop running here (a notebook's cell), subscribing here would tie the call
    # to that loop, which this blocking function holds: subscribe from a thread without one.
    helper = threading.Thread(target=subscribe, name="rxllm-display") if _loop_running() else None
    failure: BaseException | None = None
    stopped = False
    try:
        if helper is not None:
            helper.start()
            helper.join()
        else:
            subscribe()
        while True:
            try:
                kind, value = events.get(timeout=0.25)  # a short wait: Ctrl-C gets through
            except queue.Empty:
                continue
            if kind != "next":
                failure = value if kind == "error" else None
                break
            try:
                delta, text = answer.add(value)
            except TypeError as error:  # not a chunk: say what to change, cancel the call
                failure = error
                break
            view.add(delta, text)
    except KeyboardInterrupt:
        stopped = True
    finally:
        if helper is not None:
            helper.join()
        for subscription in subscribed:
            subscription.dispose()  # cancels the call, unless it ended
    response = answer.response()
    if stopped:
        view.end(response.text, STOPPED)
        if interrupt == "raise":
            raise KeyboardInterrupt
        return response
    if failure is not None:
        view.end(response.text, f"**{type(failure).__name__}**: {failure}")
        raise failure
    view.end(response.text, None)
    return response
