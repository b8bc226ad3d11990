"""The one place where a provider call becomes a cold `Observable[Chunk]`.

A provider describes one call as a `Call`: a sync and an async function that push its
`Chunk`s into an `emit` callback (`IteratorCall` adapts generators to that), plus a mapping
from its SDK's exceptions to rxllm's. This module runs it:

- each subscription is one call (cold);
- from plain synchronous code the call runs on its own daemon thread; subscribed while an
  asyncio loop is running in the subscribing thread, it runs as a task on that loop and
  every notification is delivered on the loop's thread;
- disposing cancels at once, from any thread, also while no chunk is arriving: the
  provider registers the connection's socket with `CallControl.on_cancel`, and cancelling
  shuts that socket down so a blocked read returns immediately and the server sees the
  close (a plain `close()` from another thread would wait for the next chunk);
- `stall_timeout`: a watchdog fails the call with `StreamTimeout` when no chunk arrives for
  that long (keep-alive pings never reach this module, so they do not count);
- an exception raised by a subscriber's `on_next` stops the call and goes to `on_error`;
- every error carries the response received so far as `partial`;
- each call is an OpenTelemetry span (`rxllm.telemetry`), a child of the span current where
  it was subscribed, ended once on completion, error or cancellation.

Why ~470 lines in one module: the sync path, the asyncio path and the stall watchdog share
one `_Runner`, so the rules of a terminal notification (who reports a stall, what a
subscriber's error becomes, the partial) are written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import reactivex
from opentelemetry import context as otel_context
from reactivex import abc
from reactivex.disposable import Disposable

from rxllm._loops import RUN_SCHEDULER, call_on_loop
from rxllm.accumulator import Accumulator
from rxllm.errors import LLMError, StreamTimeout, scrub
from rxllm.models import Chunk
from rxllm.telemetry import CallInfo, CallTrace, start_call

if TYPE_CHECKING:
    from rxllm.codec import Codec

_monotonic = time.monotonic

__all__ = [
    "Call",
    "CallControl",
    "Emit",
    "IteratorCall",
    "call_observable",
    "call_subscriber",
]


class CallControl:
    """Cancellation and liveness of one running call, shared by the bridge and the provider."""

    __slots__ = ("_callbacks", "_cancelled", "_lock", "cancelled", "last_event", "stalled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._cancelled = threading.Event()  # for `wait`; `cancelled` is the cheap check
        self.cancelled = False
        """True once the subscription was disposed (or the call stalled)."""
        self.stalled = False
        self.last_event = time.monotonic()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking at once on cancel. True if cancelled."""
        return self._cancelled.wait(timeout)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` when the call is cancelled (at once if it already is).

        Returns a function that unregisters it; after that returns, the callback will not
        run — so a pooled socket is never shut down after its response was handed back.
        """
        with self._lock:
            if not self.cancelled:
                self._callbacks.append(callback)
                registered = True
            else:
                registered = False
        if not registered:
            callback()

        def unregister() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unregister

    def cancel(self) -> None:
        """Stop the call: idempotent, thread-safe, never blocks on the network."""
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            self._cancelled.set()
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                with contextlib.suppress(Exception):
                    callback()


Emit = Callable[[Chunk], bool]
"""Delivers one chunk; False means stop: the call was cancelled or the subscriber failed."""


class Call(Protocol):
    """One provider call, as a provider describes it to the bridge.

    The call pushes its chunks into `emit` (no generator between the provider's loop and the
    subscriber: a generator step per chunk is measurable at 100k chunks/s) and returns when
    the stream ended or `emit` returned False. Exceptions propagate to the bridge.
    """

    @property
    def provider(self) -> str:
        """The provider's name, for errors (`LLMError.provider`)."""
        ...

    @property
    def stall_timeout(self) -> float | None:
        """Seconds without a chunk before the call fails with `StreamTimeout` (None: never)."""
        ...

    @property
    def codec(self) -> Codec:
        """The codec of the call's protocol (its `secrets()` are scrubbed from every error)."""
        ...

    def pump_sync(self, control: CallControl, emit: Emit) -> None:
        """Make the call with the sync SDK client and emit its chunks.

        Must register the connection with `control.on_cancel` and stop when cancelled.
        """
        ...

    async def pump_async(self, control: CallControl, emit: Emit) -> None:
        """The same with the async SDK client, on the running loop."""
        ...

    def map_error(self, error: BaseException, *, received: int) -> LLMError:
        """Translate an SDK/transport exception into rxllm's tree (`received` chunks so far)."""
        ...


class IteratorCall:
    """Base for a `Call` written as two generators, `iter_sync` and `iter_async`.

    The generator is closed as soon as `emit` says stop, so its `finally` runs (and its
    connection closes) at the cancellation.
    """

    def iter_sync(self, control: CallControl) -> Iterator[Chunk]:
        """Yield the call's chunks (sync client); stop when `control.cancelled`."""
        raise NotImplementedError

    def iter_async(self, control: CallControl) -> AsyncIterator[Chunk]:
        """Yield the call's chunks (async client, on the running loop)."""
        raise NotImplementedError

    def pump_sync(self, control: CallControl, emit: Emit) -> None:
        """`Call.pump_sync` over `iter_sync`."""
        chunks = self.iter_sync(control)
        try:
            for chunk in chunks:
                if not emit(chunk):
                    break
        finally:
            with contextlib.suppress(Exception):
                chunks.close()  # type: ignore[attr-defined]

    async def pump_async(self, control: CallControl, emit: Emit) -> None:
        """`Call.pump_async` over `iter_async`."""
        chunks = self.iter_async(control)
        try:
            async for chunk in chunks:
                if not emit(chunk):
                    break
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await chunks.aclose()  # type: ignore[attr-defined]


def call_observable(
    make_call: Callable[[], Call], *, describe: Callable[[], CallInfo] | None = None
) -> reactivex.Observable[Chunk]:
    """A cold observable: each subscription builds a `Call` with `make_call` and runs it.

    `describe` says what the call's span records of its request (model, parameters).
    """
    return reactivex.create(call_subscriber(make_call, describe=describe))


def call_subscriber(
    make_call: Callable[[], Call],
    *,
    snapshots: bool = False,
    describe: Callable[[], CallInfo] | None = None,
) -> Callable[[abc.ObserverBase[Any], abc.SchedulerBase | None], abc.DisposableBase]:
    """The subscribe function behind `call_observable` (for Observable subclasses).

    With `snapshots` the call emits the `Snapshot` of each chunk instead of the chunk: what
    `call.pipe(ops.accumulate())` emits, fused into the call (the bridge keeps the response
    so far for errors' `partial` anyway, so the accumulation is done once, one layer less).
    `describe` gives the call's `CallInfo` for its span (`rxllm.telemetry`), which starts
    here, at the subscription, as a child of the span current here.
    """

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        control = CallControl()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        tracing = start_call(describe() if describe is not None else None)
        try:
            call = make_call()
        except Exception as exc:  # e.g. a missing API key: report, never raise from subscribe
            tracing.failed(exc)
            observer.on_error(exc)
            return Disposable()
        tracing.bind(call)
        if loop is not None and scheduler is not None and scheduler is RUN_SCHEDULER:
            # reactivex's blocking `.run()` subscribes with its own NewThreadScheduler, then
            # blocks this thread: a call made on its loop would never run.
            refused = RuntimeError(
                "a blocking .run() in a thread that runs an asyncio loop: the call would "
                "run on that loop, which .run() blocks. Use `await rxllm.acollect(...)` "
                "or `await source` instead, or call .run() from a thread without a loop."
            )
            tracing.failed(refused)
            observer.on_error(refused)
            return Disposable()
        runner = _Runner(call, control, observer, snapshots=snapshots, tracing=tracing)
        if loop is None:
            thread = threading.Thread(target=runner.run_sync, name="rxllm-call", daemon=True)
            thread.start()
        else:
            # a task that never runs (its loop closed first) still ends its span
            task = loop.create_task(runner.run_async())
            task.add_done_callback(runner.abandoned)
        return Disposable(control.cancel)

    return subscribe


class _Runner:
    """Drives one call and delivers its notifications; shared by the sync and async paths."""

    __slots__ = (
        "call",
        "control",
        "gate",
        "home",
        "observer",
        "received",
        "settled",
        "snapshots",
        "started",
        "subscriber_error",
        "tracing",
        "watched",
    )

    def __init__(
        self,
        call: Call,
        control: CallControl,
        observer: abc.ObserverBase[Any],
        *,
        snapshots: bool = False,
        tracing: CallTrace | None = None,
    ) -> None:
        self.call = call
        self.tracing = tracing if tracing is not None else start_call(None)
        self.home = 0  # the thread that runs the call (its context is the call's to set)
        self.snapshots = snapshots  # emit each chunk's Snapshot (the fused accumulate())
        self.control = control
        self.observer = observer
        self.received = Accumulator()  # for `partial`: keeps no chunk objects alive
        self.subscriber_error: Exception | None = None
        self.watched = bool(call.stall_timeout)  # a watchdog reads `control.last_event`
        # Who reports a stall before the first chunk: the call's thread, or (sync path, when
        # the SDK is still busy with the request or sleeping between its retries) the
        # watchdog at once. `gate` makes that choice once; `started`/`settled` record it.
        self.gate = threading.Lock()
        self.started = False  # the first chunk went out: the call's thread reports
        self.settled = False  # the terminal notification is taken

    def emit(self, chunk: Chunk) -> bool:
        """Deliver one chunk (or its snapshot); False when the call must stop (cancelled or
        on_next raised)."""
        control = self.control
        if control.cancelled:
            return False
        if not self.started and not self._start():
            return False
        if self.watched:
            control.last_event = _monotonic()
        item: Any
        if self.snapshots:
            item = self.received.add(chunk)
        else:
            self.received.push(chunk)
            item = chunk
        try:
            self.observer.on_next(item)
        except Exception as exc:
            self.subscriber_error = exc
            control.cancel()
            return False
        return not control.cancelled

    def _start(self) -> bool:
        """The first chunk: take the right to report (from a watchdog that may be about to
        report a stall before it); its span's event; from now on the subscriber's context is
        current (the request is over: what subscribers do is theirs, not the call's)."""
        if self.watched:
            with self.gate:
                if self.settled:
                    return False  # the watchdog already reported the stall
                self.started = True
        else:
            self.started = True
        self.tracing.first_chunk()
        if threading.get_ident() == self.home:  # never in a thread the call does not own
            otel_context.attach(self.tracing.delivery_context)
        return True

    def _settle(self) -> bool:
        """Take the terminal notification; False if somebody else has it."""
        with self.gate:
            if self.settled:
                return False
            self.settled = True
            return True

    def stalled_before_start(self) -> None:
        """The watchdog's report of a stall before any chunk (sync path): at once, while the
        call's thread may still be blocked in the SDK; that thread then reports nothing."""
        with self.gate:
            if self.started or self.settled:
                return
            self.settled = True
        self.finish(None, settled=True)

    def partial(self) -> Any:
        return self.received.response() if len(self.received) else None

    def finish(self, error: Exception | None, *, settled: bool = False) -> None:
        """Send the terminal notification: error, completion, or nothing after a dispose."""
        if self.watched and not settled and not self._settle():
            return
        # notifications run in the subscriber's context; this thread (the call's, or the
        # watchdog's) or task ends with the call, so nothing needs to be restored
        otel_context.attach(self.tracing.delivery_context)
        control = self.control
        tracing = self.tracing
        if self.subscriber_error is not None:
            tracing.failed(self.subscriber_error, self.received)
            self.observer.on_error(self.subscriber_error)
        elif control.stalled:
            timeout = self.call.stall_timeout
            stall = StreamTimeout(
                f"no event from {self.call.provider} for {timeout} s (stall_timeout); "
                "raise stall_timeout if the model is expected to think longer",
                provider=self.call.provider,
            )
            if error is not None:
                stall.__cause__ = error
            tracing.failed(stall, self.received)
            self.observer.on_error(stall.with_partial(self.partial()))
        elif control.cancelled:
            tracing.cancelled(self.received)
            return  # disposed: whatever the teardown raised is ours, not the subscriber's
        elif error is not None:
            if isinstance(error, LLMError):
                mapped = error
                if mapped.provider is None:
                    mapped.provider = self.call.provider
            else:
                try:
                    mapped = self.call.map_error(error, received=len(self.received))
                except Exception as mapping_error:  # a bug in mapping must not lose the error
                    try:
                        secrets = self.call.codec.secrets()
                    except Exception:  # nothing may keep the error from arriving
                        secrets = ()
                    error.args = tuple(
                        scrub(arg, *secrets) if isinstance(arg, str) else arg for arg in error.args
                    )
                    mapped = LLMError(
                        scrub(f"{self.call.provider}: {type(error).__name__}: {error}", *secrets),
                        provider=self.call.provider,
                    )
                    mapped.__context__ = mapping_error
                if mapped.__cause__ is None:
                    mapped.__cause__ = error
            tracing.failed(mapped, self.received)
            self.observer.on_error(mapped.with_partial(self.partial()))
        else:
            tracing.completed(self.received)
            self.observer.on_completed()

    def abandoned(self, _: object = None) -> None:
        """The call's task is done: a span that nobody ended (the task never ran, or the
        loop shut down under it) ends as cancelled."""
        self.tracing.cancelled(self.received)

    def run_sync(self) -> None:
        control = self.control
        # this thread is the call's: its request is made with the call's span current
        self.home = threading.get_ident()
        otel_context.attach(self.tracing.call_context)
        _start_watchdog_thread(control, self.call.stall_timeout, self.stalled_before_start)
        error: Exception | None = None
        try:
            self.call.pump_sync(control, self.emit)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit in the call's thread: the span still ends
            self.tracing.failed(exc, self.received)
            raise
        try:
            self.finish(error)
        finally:
            control.cancel()  # ends the watchdog, if any; nothing is left to close

    async def run_async(self) -> None:
        control = self.control
        error: Exception | None = None
        if control.cancelled:
            self.tracing.cancelled()
            return  # disposed before the task first ran
        # the task's context is its own copy: the request is made with the call's span current
        self.home = threading.get_ident()
        otel_context.attach(self.tracing.call_context)
        task = asyncio.current_task()
        assert task is not None
        unregister = control.on_cancel(_task_canceller(task))
        watchdog = _start_watchdog_task(control, self.call.stall_timeout)
        try:
            await self.call.pump_async(control, self.emit)
        except asyncio.CancelledError:
            if not control.cancelled:
                raise  # the loop is shutting down: not ours to swallow
        except Exception as exc:
            error = exc
        finally:
            unregister()
        if watchdog is not None:
            watchdog.cancel()
        try:
            self.finish(error)
        finally:
            control.cancel()


def _task_canceller(task: asyncio.Task[Any]) -> Callable[[], None]:
    """A callback that cancels `task` from any thread (directly on its loop's thread)."""
    loop = task.get_loop()

    def cancel_task() -> None:
        # From inside the task itself (a take_until predicate, an on_next that raises,
        # a dispose in on_next) the pump sees `emit` say stop and returns, closing the
        # response as usual. Cancelling the task as well would interrupt that close,
        # and leave the request in the connection pool for ever.
        if asyncio.current_task(loop) is not task:
            task.cancel()

    return lambda: call_on_loop(loop, cancel_task)


def _start_watchdog_thread(
    control: CallControl, timeout: float | None, stalled: Callable[[], None]
) -> threading.Thread | None:
    if not timeout:
        return None

    def watch() -> None:
        while True:
            remaining = control.last_event + timeout - time.monotonic()
            if remaining <= 0:
                control.stalled = True
                control.cancel()
                stalled()
                return
            if control.wait(remaining):
                return

    thread = threading.Thread(target=watch, name="rxllm-stall-watchdog", daemon=True)
    thread.start()
    return thread


def _start_watchdog_task(control: CallControl, timeout: float | None) -> asyncio.Task[None] | None:
    if not timeout:
        return None

    async def watch() -> None:
        while not control.cancelled:
            remaining = control.last_event + timeout - time.monotonic()
            if remaining <= 0:
                control.stalled = True
                control.cancel()
                return
            await asyncio.sleep(remaining)

    return asyncio.get_running_loop().create_task(watch())
