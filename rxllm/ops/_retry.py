"""`retry()`: try a failed call again — resuming where it broke, without duplicates."""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from rxllm import telemetry
from rxllm._checks import is_int, is_number
from rxllm._loops import timer_scheduler
from rxllm.errors import LLMError, RateLimitError
from rxllm.llm import CallStream
from rxllm.models import Chunk
from rxllm.ops._chunk_input import not_chunks
from rxllm.ops._resume import Splice

__all__ = ["retry"]

_log = logging.getLogger("rxllm.retry")

Backoff = float | Callable[[int], float]


def _delay(backoff: Backoff, attempt: int, error: BaseException, max_wait: float) -> float | None:
    """Seconds before attempt `attempt + 1`, or None: do not retry.

    A rate limit's `retry_after` is honoured up to `max_wait`; a longer one (or a backoff
    function's infinite or NaN wait) means no retry.
    """
    if callable(backoff):
        seconds = float(backoff(attempt))
    else:
        seconds = min(30.0, backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        if error.retry_after > max_wait:
            return None
        seconds = max(seconds, error.retry_after)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry(
    *,
    attempts: int = 3,
    backoff: Backoff = 0.5,
    resume: bool = True,
    max_wait: float = 60.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[Chunk]]:
    """Retry errors whose `retryable` is true, up to `attempts` calls in all.

    Before anything was emitted, a retry simply makes the call again. After chunks were
    emitted, on a provider stream (what `LLM.stream` returns) and with `resume`, the call
    is re-issued with the text already delivered (Anthropic: an assistant prefill; OpenAI:
    the text as an assistant message and an instruction to continue) and the continuation
    is spliced on, so subscribers see no duplicates (a repeated overlap at the seam is
    dropped). Usage is summed over attempts. A failure after chunks were emitted on any
    other source — or after tool calls, thinking, refusal or audio, which cannot be
    resumed — is raised, never replayed as duplicates.

    With `resume`, on a provider stream, a failure that leaves nothing to resume is not
    retried as a continuation. When the provider had already said why the answer ended
    (its finish reason arrived, then the connection broke before the end of the stream),
    the answer is whole: the stream completes with it. When only chunks without text were
    emitted (e.g. OpenAI's first, role-only chunk), the call is simply made again. With
    `resume=False`, any failure after a chunk was emitted is raised.

    `backoff`: seconds before the first retry, doubled each time (with jitter, at most
    30 s), or a function of the attempt number; a `RateLimitError.retry_after` is waited.
    `max_wait`: the longest `retry_after` waited; when a server asks for more (a
    `retry-after` of an hour), the error is raised at once instead.
    `scheduler`: where the waits are timed (default: a timeout scheduler; a
    `TestScheduler` in marble tests).

        attempt 1:  -"Hel"--"lo"--X(ServerError)
        attempt 2:                   -(prefill "Hello") " world"-|
        output:     -"Hel"--"lo"---------------------" world"-|

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted("Hello world", error=rxllm.ServerError("flaky"))
    >>> try:
    ...     rxllm.collect(llm.stream("hi").pipe(ops.retry(attempts=2, backoff=0)))
    ... except rxllm.ServerError as error:
    ...     print(error.partial.text)
    Hello world
    """
    if not is_int(attempts):
        raise TypeError(f"attempts must be an int (calls in all), not {attempts!r}")
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    if not callable(backoff) and not (is_number(backoff) and 0 <= backoff < math.inf):
        raise ValueError(
            "backoff must be seconds (a number >= 0) or a function of the attempt number "
            f"returning seconds, not {backoff!r}"
        )
    if not is_number(max_wait) or not max_wait >= 0:
        raise ValueError(f"max_wait must be a number of seconds >= 0, not {max_wait!r}")
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, not {resume!r}")

    def operator(source: reactivex.Observable[Chunk]) -> reactivex.Observable[Chunk]:
        resumable = resume and isinstance(source, CallStream)

        def subscribe(
            observer: abc.ObserverBase[Chunk], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            rules = _Rules(attempts, backoff, max_wait, resumable)
            retrying = _Retrying(source, observer, rules, scheduler or timer_scheduler())
            with retrying.lock:
                retrying.current.disposable = source.subscribe(
                    retrying.on_next, retrying.on_error, retrying.on_completed, scheduler=scheduler_
                )
            return CompositeDisposable(retrying.current, retrying.pending)

        return reactivex.create(subscribe)

    return operator


class _Rules(NamedTuple):
    """What every subscription of one `retry(...)` shares."""

    attempts: int
    backoff: Backoff
    max_wait: float
    resumable: bool  # the source is a provider stream that can continue an answer


class _Retrying:
    """One subscription of `retry`: the attempt in flight, the wait before the next one, and
    the splice that joins their chunks without duplicates."""

    def __init__(
        self,
        source: reactivex.Observable[Chunk],
        observer: abc.ObserverBase[Chunk],
        rules: _Rules,
        timer: abc.SchedulerBase,
    ) -> None:
        self.source = source
        self.observer = observer
        self.rules = rules
        self.timer = timer
        self.current = SerialDisposable()  # the attempt's subscription
        self.pending = SerialDisposable()  # the timer before the next attempt
        self.lock = threading.RLock()
        self.attempt = 1
        self.splice = Splice(observer)
        # a later attempt is subscribed from a timer: its span's parent is still the span
        # current where retry was subscribed
        self.context = telemetry.subscription_context()

    def on_next(self, chunk: Chunk) -> None:
        if not isinstance(chunk, Chunk):
            raise not_chunks("retry", chunk)
        self.splice.on_next(chunk)

    def on_completed(self) -> None:
        try:
            self.splice.flush()  # a continuation that ended while held back
        except Exception as error:  # the subscriber's on_next raised
            self.observer.on_error(error)
            return
        self.observer.on_completed()

    def next_attempt(self, error: Exception) -> reactivex.Observable[Chunk] | None:
        """The call to make next (a continuation, when text went out), or None: fail."""
        rules, splice = self.rules, self.splice
        retryable = isinstance(error, LLMError) and error.retryable
        if (
            not retryable
            or self.attempt >= rules.attempts
            or (splice.emitted and not rules.resumable)
        ):
            return None  # (a failed source that is not a provider stream may not repeat
            # its chunks exactly)
        return splice.next_call(self.source)

    def on_error(self, error: Exception) -> None:
        splice, observer = self.splice, self.observer
        if splice.settled_by(error):
            return
        if (
            self.rules.resumable
            and splice.whole
            and isinstance(error, LLMError)
            and error.retryable
        ):
            # The provider said why the answer ended before the stream broke: it is whole,
            # and a continuation would only add to it.
            _log.debug("not retrying after the finish reason arrived: %s", error)
            observer.on_completed()
            return
        next_source = self.next_attempt(error)
        if next_source is None:
            splice.fail(error)
            return
        try:
            seconds = _delay(self.rules.backoff, self.attempt, error, self.rules.max_wait)
        except Exception as backoff_error:  # the user's backoff function raised
            backoff_error.__context__ = error
            observer.on_error(backoff_error)
            return
        if seconds is None:
            splice.fail(error)
            return
        splice.end_call(error)
        self.attempt += 1

        def again(_: abc.SchedulerBase, __: Any = None) -> None:
            with self.lock:
                self.current.disposable = telemetry.within(
                    self.context,
                    lambda: next_source.subscribe(self.on_next, self.on_error, self.on_completed),
                )

        # Its own slot: the timer may fire (and subscribe) before this line returns.
        self.pending.disposable = self.timer.schedule_relative(timedelta(seconds=seconds), again)
