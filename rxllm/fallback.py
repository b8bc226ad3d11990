"""`fallback()`: when a provider fails, the next one takes over — also in the middle of a stream.

A fallback that only works before the first token is of little use with streams: outages
show up as connections dropped after a few hundred tokens as often as 5xx answers. So the
next source is asked to continue from the text already delivered (as `ops.retry` resumes
a call), and the subscriber sees one answer, without duplicates, served by several providers.
"""

from __future__ import annotations

import logging

import reactivex
from reactivex import abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from rxllm import telemetry
from rxllm._checks import require_observable
from rxllm.errors import APIStatusError, BadRequestError, LLMError
from rxllm.models import Chunk
from rxllm.ops._chunk_input import not_chunks
from rxllm.ops._resume import Splice

__all__ = ["fallback", "moves_on"]

_log = logging.getLogger("rxllm.fallback")


def moves_on(error: BaseException) -> bool:
    """Whether another provider may succeed where one failed with `error`: a retryable error
    (rate limit, 5xx, overload, connection failure, interrupted or stalled stream), or any
    HTTP error status except a rejected request (400/422: the next provider would reject it
    too). A 401, 403 or 404 is this provider's key, permission or model name: not the next
    one's."""
    if not isinstance(error, LLMError):
        return False
    if error.retryable:
        return True
    return isinstance(error, APIStatusError) and not isinstance(error, BadRequestError)


def fallback(
    *sources: reactivex.Observable[Chunk], resume: bool = True
) -> reactivex.Observable[Chunk]:
    """The first of `sources` that works: when one fails, the next one takes over.

    `sources` are usually the same request to several providers
    (`openai_llm.stream(prompt)`, `anthropic_llm.stream(prompt)`). They are subscribed one
    at a time, in order, and only when needed. A source that fails with an error that
    `moves_on` (retryable, or an HTTP status other than 400/422) hands over to the next:

    - before any content was emitted, the next source simply makes its call;
    - after text was emitted, with `resume`, the next source (a provider stream, as
      `LLM.stream` returns) is asked to continue from that text (Anthropic: an assistant
      prefill; OpenAI: the text as an assistant message and an instruction to continue),
      and a repeat of the text's end at the seam is dropped: subscribers see each piece of
      text once. A source that cannot continue a response is skipped. With `resume=False`,
      or after tool calls, thinking, refusal or audio (which cannot be continued), the error
      is raised instead.

    A source that fails after its finish reason arrived has delivered a whole answer: the
    stream completes. Each chunk's `provider` and `model` say who served it; the collected
    `Response` names the last (an answer two providers served has no `raw`). Usage is summed
    over every source subscribed, the failed ones' included (what their chunks or their
    error's `partial` reported), so the last chunk's usage is the total. When no source is
    left (or an error does not move on), the last error is raised with everything delivered
    as its `partial` and every source's error, in order, in its `attempts`. Disposing
    cancels the call in flight.

        openai:     -"Hel"--"lo"--X(ServerError)
        anthropic:                 -(prefill "Hello") " world"-|
        fallback:   -"Hel"--"lo"----------------------" world"-|

    >>> import rxllm
    >>> primary = rxllm.scripted("Hello wor", error=rxllm.ServerError("overloaded"))
    >>> backup = rxllm.scripted("Hello world!")
    >>> rxllm.collect(rxllm.fallback(primary.stream("hi"), backup.stream("hi"))).text
    'Hello world!'
    """
    if not sources:
        raise ValueError(
            "fallback() needs at least one source: fallback(primary.stream(prompt), "
            "backup.stream(prompt))"
        )
    for source in sources:
        require_observable("fallback", source, several=True)
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, not {resume!r}")

    def subscribe(
        observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        current = SerialDisposable()  # the subscription of the source in flight
        splice = Splice(observer)
        attempts: list[LLMError] = []
        position = 0
        context = telemetry.subscription_context()  # every source's span: a child of this

        def on_next(chunk: Chunk) -> None:
            if not isinstance(chunk, Chunk):
                raise not_chunks("fallback", chunk)
            splice.on_next(chunk)

        def on_completed() -> None:
            try:
                splice.flush()  # a continuation that ended while held back
            except Exception as error:  # the subscriber's on_next raised
                observer.on_error(error)
                return
            observer.on_completed()

        def on_error(error: Exception) -> None:
            if splice.settled_by(error):
                return
            if isinstance(error, LLMError):
                attempts.append(error)
            if moves_on(error) and splice.whole:
                _log.debug("the answer was whole before the stream broke: %s", error)
                observer.on_completed()
                return
            failed = position + 1
            following = _next(error)
            if following is None:
                if isinstance(error, LLMError):
                    error.attempts = tuple(attempts)
                splice.fail(error)
                return
            splice.end_call(error)
            _log.info(
                "fallback: source %d of %d failed (%s: %s); source %d takes over",
                failed,
                len(sources),
                type(error).__name__,
                error,
                position + 1,
            )
            start(following)

        def _next(error: Exception) -> reactivex.Observable[Chunk] | None:
            """The next source's call (its continuation after text), or None: raise."""
            nonlocal position
            if not moves_on(error) or current.is_disposed:
                return None
            while position + 1 < len(sources):
                position += 1
                following = splice.next_call(sources[position], resume=resume)
                if following is not None:
                    return following
                if splice.blocked or not resume:
                    return None  # no source could go on from what was delivered
                _log.debug("fallback: source %d cannot continue a response: skipped", position)
            return None

        def start(source: reactivex.Observable[Chunk]) -> None:
            # A slot of its own: a source that fails while being subscribed starts the next
            # one before `subscribe` returns, and that one must stay current.
            slot = SingleAssignmentDisposable()
            current.disposable = slot
            slot.disposable = telemetry.within(  # a later source: under fallback's caller
                context,
                lambda: source.subscribe(on_next, on_error, on_completed, scheduler=scheduler),
            )

        start(sources[0])
        return current

    return reactivex.create(subscribe)
