"""`retry()`: try a failed call again — resuming where it broke, without duplicates."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from rxllm.accumulator import Accumulator
from rxllm.calls import timer_scheduler
from rxllm.errors import LLMError, RateLimitError
from rxllm.llm import CallStream
from rxllm.models import Chunk, Usage

__all__ = ["retry"]

Backoff = float | Callable[[int], float]

_OVERLAP_WINDOW = 200
_OVERLAP_MIN = 8


def _delay(backoff: Backoff, attempt: int, error: BaseException) -> float:
    """Seconds before attempt `attempt + 1`; a rate limit's `retry_after` is honoured."""
    if callable(backoff):
        seconds = float(backoff(attempt))
    else:
        seconds = min(30.0, backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        seconds = max(seconds, error.retry_after)
    return seconds


def retry(
    *,
    attempts: int = 3,
    backoff: Backoff = 0.5,
    resume: bool = True,
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

    `backoff`: seconds before the first retry, doubled each time (with jitter, at most
    30 s), or a function of the attempt number; a `RateLimitError.retry_after` is waited.

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
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")

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

            def on_next(chunk: Chunk) -> None:
                nonlocal emitted, blocked, attempt_usage
                if chunk.usage is not None:
                    attempt_usage = chunk.usage
                    if past_usage is not None:
                        chunk = chunk.model_copy(update={"usage": past_usage + chunk.usage})
                if chunk.content:
                    trimmed = seam.trim(chunk)
                    if trimmed is None:
                        return
                    chunk = trimmed
                    delivered.append(chunk.content)
                if chunk.tool_calls or chunk.thinking or chunk.refusal or chunk.audio:
                    blocked = True
                emitted = True
                received.push(chunk)
                observer.on_next(chunk)

            def fail(error: Exception) -> None:
                if isinstance(error, LLMError) and len(received):
                    error.partial = received.response()  # all attempts, not just the last
                observer.on_error(error)

            def on_error(error: Exception) -> None:
                nonlocal attempt, past_usage, attempt_usage
                retryable = isinstance(error, LLMError) and error.retryable
                if not retryable or attempt >= attempts or (emitted and (not resumable or blocked)):
                    fail(error)
                    return
                next_source: reactivex.Observable[Chunk] = source
                if emitted:
                    assert isinstance(source, CallStream)
                    text = "".join(delivered)
                    continued = source.continue_from(text)
                    if continued is None:
                        fail(error)
                        return
                    next_source = continued
                    seam.expect(text)
                if attempt_usage is not None:
                    past_usage = attempt_usage if past_usage is None else past_usage + attempt_usage
                    attempt_usage = None
                seconds = _delay(backoff, attempt, error)
                attempt += 1

                def again(_: abc.SchedulerBase, __: Any = None) -> None:
                    with lock:
                        current.disposable = next_source.subscribe(
                            on_next, on_error, observer.on_completed
                        )

                # Its own slot: the timer may fire (and subscribe) before this line returns.
                pending.disposable = timer.schedule_relative(timedelta(seconds=seconds), again)

            with lock:
                current.disposable = source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=scheduler_
                )
            return CompositeDisposable(current, pending)

        return reactivex.create(subscribe)

    return operator


class _Seam:
    """Drops text a continuation repeats from what was already delivered.

    Models asked to continue sometimes start by repeating the end of the text (or, after a
    prefill stripped of trailing whitespace, re-send that whitespace). The first content
    of a continuation is compared with the end of the delivered text and the overlap cut.
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail: str | None = None

    def expect(self, delivered: str) -> None:
        self._tail = delivered[-_OVERLAP_WINDOW:]

    def trim(self, chunk: Chunk) -> Chunk | None:
        tail = self._tail
        if tail is None:
            return chunk
        self._tail = None
        text = chunk.content
        cut = 0
        if tail[-1:].isspace() and text[:1].isspace():
            cut = len(text) - len(text.lstrip())
        else:
            for size in range(min(len(tail), len(text)), _OVERLAP_MIN - 1, -1):
                if tail.endswith(text[:size]):
                    cut = size
                    break
        if not cut:
            return chunk
        trimmed = chunk.model_copy(update={"content": text[cut:]})
        return None if trimmed.is_empty else trimmed
