"""Threads and asyncio loops: running a function on a loop's thread, handing items from a
thread to a loop, waiting for an awaitable without a loop, and where to schedule a delayed
(re)subscription.

rxllm delivers every notification of a call subscribed inside a running loop on that
loop's thread (API.md), while providers, timers and subscribers' own threads produce them
anywhere; this module is the one place that crosses over.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from reactivex import abc
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

__all__ = [
    "END",
    "RUN_SCHEDULER",
    "Failure",
    "at_loop_end",
    "call_on_loop",
    "receive",
    "run_awaitable",
    "timer_scheduler",
]

_T = TypeVar("_T")


def call_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` on `loop`'s thread: now when called from inside that running loop,
    else scheduled with `call_soon_threadsafe`; dropped when the loop is already closed
    (nobody is left to hear it)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(*args)
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed
        loop.call_soon_threadsafe(fn, *args)


END = object()
"""Put after the last item handed over through a queue."""


class Failure:
    """An error handed over through a queue, to be raised by its reader."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def receive(items: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """The items a producer hands over through `items` until `END`; a `Failure` is raised."""
    while True:
        item = await items.get()
        if item is END:
            return
        if isinstance(item, Failure):
            raise item.error
        yield item


def run_awaitable(value: Awaitable[_T]) -> _T:
    """Wait for `value` on a new event loop, from a thread that runs none."""

    async def awaited() -> _T:
        return await value

    return asyncio.run(awaited())


RUN_SCHEDULER: abc.SchedulerBase | None = getattr(
    importlib.import_module("reactivex.run"), "_default_scheduler", None
)
"""The scheduler reactivex's `Observable.run()` subscribes with (to recognise it; a private
name of reactivex's, hence looked up: None if a release moves it, and the check is off)."""


def timer_scheduler() -> abc.SchedulerBase:
    """Where to schedule a delayed (re)subscription of a call, decided at subscribe time.

    Inside a running asyncio loop it must happen on the loop's thread, so that the call
    uses the async client and delivers on the loop like the first one; elsewhere a
    timer thread does.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return TimeoutScheduler.singleton()
    return AsyncIOThreadSafeScheduler(loop)


def at_loop_end(close: Callable[[], Awaitable[Any]]) -> AsyncGenerator[None, None]:
    """Await `close()` on the running loop when the loop shuts down; returns the handle to
    keep as long as `close` should wait for that (once it is dropped, `close` runs on the
    loop soon, if it still runs).

    asyncio has no hook for a loop's end, but every runner that ends a loop properly
    (`asyncio.run`, `asyncio.Runner`, pytest-asyncio, uvicorn) finalizes the loop's async
    generators (`loop.shutdown_asyncgens()`) while the loop still runs: the handle is such
    a generator, started here and closed there. Unlike a task it is not in
    `asyncio.all_tasks()`, so nothing that waits for the loop's tasks waits for it.
    """

    async def waiting() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await close()

    handle = waiting()
    step = handle.asend(None)
    with contextlib.suppress(StopIteration):  # it ran to its yield: the loop's hook saw it
        step.send(None)
    return handle
