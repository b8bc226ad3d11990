"""`retry()`: try a failed call again — resuming where it broke, without duplicates."""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from rxllm import telemetry
from rxllm._checks import is_int, is_number
from rxllm._loops import timer_scheduler
from rxllm.accumulator import Accumulator
from rxllm.errors import LLMError, RateLimitError
from rxllm.llm import CallStream
from rxllm.models import Chunk, Usage
from rxllm.ops._chunk_input import not_chunks

__all__ = ["retry"]

_log = logging.getLogger("rxllm.retry")

Backoff = float | Callable[[int], float]

_OVERLAP_WINDOW = 200
_OVERLAP_MIN = 8


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
            timer = scheduler or timer_scheduler()
            current = SerialDisposable()  # the attempt's subscription
            pending = SerialDisposable()  # the timer before the next attempt
            lock = threading.RLock()
            delivered: list[str] = []
            attempt = 1
            emitted = False
            blocked = False  # something was emitted that a continuation cannot reproduce
            past_usage: Usage | None = None  # summed usage of the failed attempts
            attempt_usage: Usage | None = None
            seam = _Seam()
            received = Accumulator()  # everything the subscriber got, over all attempts
            # a later attempt is subscribed from a timer: its span's parent is still the
            # span current here
            context = telemetry.subscription_context()

            def on_next(chunk: Chunk) -> None:
                nonlocal attempt_usage
                if not isinstance(chunk, Chunk):
                    raise not_chunks("retry", chunk)
                if chunk.usage is not None:
                    attempt_usage = chunk.usage
                    if past_usage is not None:
                        chunk = chunk.model_copy(update={"usage": past_usage + chunk.usage})
                for ready in seam.feed(chunk):
                    deliver(ready)

            def deliver(chunk: Chunk) -> None:
                nonlocal emitted, blocked
                if chunk.content:
                    delivered.append(chunk.content)
                if chunk.tool_calls or chunk.thinking or chunk.refusal or chunk.audio:
                    blocked = True
                emitted = True
                received.push(chunk)
                observer.on_next(chunk)

            def on_completed() -> None:
                try:
                    for ready in seam.release():  # a continuation that ended while held back
                        deliver(ready)
                except Exception as error:  # the subscriber's on_next raised
                    observer.on_error(error)
                    return
                observer.on_completed()

            def fail(error: Exception) -> None:
                if isinstance(error, LLMError) and len(received):
                    error.partial = received.response()  # all attempts, not just the last
                observer.on_error(error)

            def next_attempt(error: Exception) -> reactivex.Observable[Chunk] | None:
                """The call to make next (`seam` set for a continuation), or None: fail."""
                retryable = isinstance(error, LLMError) and error.retryable
                text = "".join(delivered)
                continuing = emitted and (bool(text) or blocked)
                if not retryable or attempt >= attempts or (emitted and not resumable):
                    return None  # (a failed source that is not a provider stream may not
                    # repeat its chunks exactly)
                if not continuing:
                    return source
                if blocked:
                    return None
                assert isinstance(source, CallStream)
                continued = source.continue_from(text)
                if continued is not None:
                    seam.expect(text)
                return continued

            def on_error(error: Exception) -> None:
                nonlocal attempt, past_usage, attempt_usage
                try:
                    for ready in seam.release():  # what was held back was received: deliver it
                        deliver(ready)
                except Exception as subscriber_error:
                    observer.on_error(subscriber_error)
                    return
                if (
                    resumable
                    and received.finish_reason is not None
                    and isinstance(error, LLMError)
                    and error.retryable
                ):
                    # The provider said why the answer ended before the stream broke: it is
                    # whole, and a continuation would only add to it.
                    _log.debug("not retrying after the finish reason arrived: %s", error)
                    observer.on_completed()
                    return
                next_source = next_attempt(error)
                if next_source is None:
                    fail(error)
                    return
                try:
                    seconds = _delay(backoff, attempt, error, max_wait)
                except Exception as backoff_error:  # the user's backoff function raised
                    backoff_error.__context__ = error
                    observer.on_error(backoff_error)
                    return
                if seconds is None:
                    fail(error)
                    return
                if attempt_usage is not None:
                    past_usage = attempt_usage if past_usage is None else past_usage + attempt_usage
                    attempt_usage = None
                attempt += 1

                def again(_: abc.SchedulerBase, __: Any = None) -> None:
                    with lock:
                        current.disposable = telemetry.within(
                            context,
                            lambda: next_source.subscribe(on_next, on_error, on_completed),
                        )

                # Its own slot: the timer may fire (and subscribe) before this line returns.
                pending.disposable = timer.schedule_relative(timedelta(seconds=seconds), again)

            with lock:
                current.disposable = source.subscribe(
                    on_next, on_error, on_completed, scheduler=scheduler_
                )
            return CompositeDisposable(current, pending)

        return reactivex.create(subscribe)

    return operator


class _Seam:
    """Drops text a continuation repeats from what was already delivered.

    Models asked to continue sometimes start by repeating the end of the text (or, after a
    prefill stripped of trailing whitespace, re-send that whitespace), in chunks of a token
    or two. The continuation's first chunks are held back while its text could still be
    such a repeat (while it is the start of some ending of the delivered text), then the
    longest overlap of at least `_OVERLAP_MIN` characters is cut and the held chunks are
    released, in order. A finish, the end of the stream or an error releases them at once.
    """

    __slots__ = ("_held", "_tail", "_text")

    def __init__(self) -> None:
        self._tail: str | None = None
        self._held: list[Chunk] = []
        self._text = ""

    def expect(self, delivered: str) -> None:
        """The next content continues `delivered`: watch its start for a repeat."""
        self._tail = delivered[-_OVERLAP_WINDOW:]
        self._held = []
        self._text = ""

    def feed(self, chunk: Chunk) -> list[Chunk]:
        """The chunks to deliver now: `chunk` and those held before it, or none yet."""
        tail = self._tail
        if tail is None:
            return [chunk]
        self._held.append(chunk)
        if chunk.content:
            self._text += chunk.content
        elif chunk.finish_reason is None and not self._text:
            return []  # e.g. Anthropic's message_start: the content is still to come
        if chunk.finish_reason is None and self._could_grow(tail, self._text):
            return []
        return self.release()

    def release(self) -> list[Chunk]:
        """Decide on what is held: cut the repeat, if any, and hand the chunks back."""
        tail, held, text = self._tail, self._held, self._text
        self._tail, self._held, self._text = None, [], ""
        if tail is None or not held:
            return held
        cut = 0
        for size in range(min(len(tail), len(text)), _OVERLAP_MIN - 1, -1):
            if tail.endswith(text[:size]):
                cut = size
                break
        if not cut and tail[-1:].isspace() and text[:1].isspace():
            cut = len(text) - len(text.lstrip())
        out: list[Chunk] = []
        for chunk in held:
            kept = chunk
            if cut and chunk.content:
                dropped = min(cut, len(chunk.content))
                cut -= dropped
                kept = chunk.model_copy(update={"content": chunk.content[dropped:]})
                if kept.is_empty:
                    continue
            out.append(kept)
        return out

    @staticmethod
    def _could_grow(tail: str, text: str) -> bool:
        """True while `text` is the start of an ending of `tail` longer than itself, i.e.
        more of the continuation could still turn out to repeat the delivered text."""
        if len(text) >= len(tail):
            return False
        start = tail.find(text)
        while start != -1:
            if start + len(text) < len(tail):
                return True
            start = tail.find(text, start + 1)
        return False
