"""`smooth()`: re-chunk text for even UI output, like the Vercel AI SDK's `smoothStream`.

Providers deliver text in bursts: a few words, a pause, a paragraph at once. `smooth()`
buffers the text, cuts it into pieces (a word with its trailing whitespace, a line, or a
match of a pattern) and emits one piece per `delay`, so the text appears at an even pace.
The cutting is a plain object, `PieceDecoder`, testable without Rx.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from rxllm._checks import is_number
from rxllm.models import Chunk

__all__ = ["PieceDecoder", "smooth"]

# Scripts written without spaces between words (CJK, kana, Thai, Lao, Khmer, full-width
# forms): there every character is a word.
_UNSPACED = (
    "\u0e00-\u0eff\u1780-\u17ff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f"
)
_WORD = re.compile(rf"\s*(?:[{_UNSPACED}]\s*|[^\s{_UNSPACED}]+(?:\s+|(?=[{_UNSPACED}])))")
_LINE = re.compile(r"\n+")
# A word or a line can only end where new text brings one of these: text without them just
# waits, without searching (and re-searching) the whole pending text for every chunk.
_WORD_BREAK = re.compile(rf"[\s{_UNSPACED}]")
_LINE_BREAK = re.compile(r"\n")


class PieceDecoder:
    """Cuts incrementally arriving text into pieces that concatenate back to it exactly.

    A piece is the text up to the end of the first match of `pattern` in what is pending
    (Vercel's rule), so `by="word"` gives a word with the whitespace before and after it,
    `by="line"` a line with its newlines.

    >>> decoder = PieceDecoder("word")
    >>> decoder.decode("Hello wor"), decoder.decode("ld, 你好"), decoder.flush()
    (['Hello '], ['world, ', '你', '好'], [])
    """

    __slots__ = ("_breaks", "_pattern", "_pending")

    def __init__(self, by: Literal["word", "line"] | str | re.Pattern[str] = "word") -> None:
        self._breaks: re.Pattern[str] | None = None
        if by == "word":
            self._pattern, self._breaks = _WORD, _WORD_BREAK
        elif by == "line":
            self._pattern, self._breaks = _LINE, _LINE_BREAK
        elif isinstance(by, re.Pattern):
            self._pattern = by
        elif isinstance(by, str):
            if by.isalpha():
                raise ValueError(
                    f'smooth(by={by!r}): by takes "word", "line" or a regex; {by!r} reads as '
                    "a mode name that does not exist (as a regex it would split only at that "
                    "literal text)"
                )
            self._pattern = re.compile(by)
        else:
            raise TypeError(
                f'smooth(by=...) takes "word", "line" or a regex pattern, not {type(by).__name__}'
            )
        self._pending: list[str] = []  # text not yet in a piece, as it arrived

    def decode(self, text: str) -> list[str]:
        """Add `text`; return the pieces now complete.

        O(size of `text`) while no piece can end (by "word" and "line"), so a long word or
        line arriving in small chunks costs linear time, not quadratic.
        """
        if self._breaks is not None and self._breaks.search(text) is None:
            self._pending.append(text)
            return []
        pending = "".join(self._pending) + text if self._pending else text
        pieces: list[str] = []
        position = 0
        search = self._pattern.search
        while position < len(pending):
            match = search(pending, position)
            if match is not None and match.end() <= position:  # an empty match: look further
                match = search(pending, position + 1)
            if match is None:
                break
            pieces.append(pending[position : match.end()])
            position = match.end()
        self._pending = [pending[position:]] if position < len(pending) else []
        return pieces

    def flush(self) -> list[str]:
        """The end of the text: what is pending becomes the last piece."""
        rest = "".join(self._pending)
        self._pending = []
        return [rest] if rest else []


def smooth(
    *,
    by: Literal["word", "line"] | str | re.Pattern[str] = "word",
    delay: float | None = 0.01,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[Chunk]]:
    """Re-chunk the text of a stream into even pieces, one per `delay` seconds.

    `by`: `"word"` (a word with the whitespace around it; in scripts without spaces such as
    Chinese or Japanese, one character), `"line"`, or a regex (a `str` or compiled): a
    piece is the text up to the end of the pattern's next match (a `str` of letters only,
    such as `"words"`, is refused as a misspelt mode: compile it to mean the regex). Text
    that does not yet make a whole piece waits for more. `"word"` and `"line"` cost linear
    time however long a word or line gets; a custom regex is searched over the pending text
    at each chunk.

    Pacing: the first piece is emitted at once, each next one `delay` after the previous
    one (immediately if it arrives later than that). Chunks without text (tool calls,
    thinking, finish reason, usage, ...) keep their place: the text before them is emitted
    first — an unfinished word as a piece of its own — and they follow without a delay. A
    chunk with both text and other fields is split into its text and the rest. On
    completion or error the remaining text is still emitted at the same pace, so the UI
    does not jump, then the completion or the error. `delay=0` or `None` only re-chunks.
    Each output chunk has the `provider`, `model` and `id` of the chunk that brought its
    last character; the concatenated output text equals the input text exactly.

    Disposing cancels the pending pieces and the upstream call. The timer runs on
    `scheduler`, else the subscription's scheduler, else the running asyncio loop (when
    subscribed inside one, so notifications stay on the loop's thread), else a
    `TimeoutScheduler`.

        chunks:  -"Hello big wo"------"rld"-(stop)|
        smooth(delay=d)
        output:  -"Hello "-d-"big "---"world"-(stop)|

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted(["Hello big wo", "rld. ", "你好"])
    >>> chunks = rxllm.iterate(llm.stream("hi").pipe(ops.smooth(delay=0.001)))
    >>> [(chunk.content, chunk.finish_reason) for chunk in chunks]  # doctest: +NORMALIZE_WHITESPACE
    [('Hello ', None), ('big ', None), ('world. ', None), ('你', None), ('好', None),
     ('', 'stop')]
    """
    PieceDecoder(by)  # a bad `by` is a TypeError or re.error here, not at subscription
    if delay is not None and not (is_number(delay) and 0 <= delay < math.inf):
        raise ValueError(
            f"smooth(delay=...) must be a finite number of seconds >= 0 (or None), not {delay!r}"
        )
    pace = delay or 0.0

    def operator(source: reactivex.Observable[Chunk]) -> reactivex.Observable[Chunk]:
        def subscribe(
            observer: abc.ObserverBase[Chunk], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            timer_scheduler = _resolve(scheduler, subscribe_scheduler) if pace else None
            smoothing = _Smoothing(observer, PieceDecoder(by), timer_scheduler, pace)
            smoothing.upstream.disposable = source.subscribe(
                smoothing.on_next,
                smoothing.on_error,
                smoothing.on_completed,
                scheduler=subscribe_scheduler,
            )
            return CompositeDisposable(
                Disposable(smoothing.dispose), smoothing.timer, smoothing.upstream
            )

        return reactivex.create(subscribe)

    return operator


class _Smoothing:
    """One subscription of `smooth`: the pieces waiting for their turn, and the pace."""

    def __init__(
        self,
        observer: abc.ObserverBase[Chunk],
        decoder: PieceDecoder,
        timer_scheduler: abc.SchedulerBase | None,
        pace: float,
    ) -> None:
        self.observer = observer
        self.decoder = decoder
        self.timer_scheduler = timer_scheduler  # None: no pacing, only re-chunking
        self.pace = pace
        self.lock = threading.RLock()
        self.queue: deque[Chunk] = deque()
        self.timer = SerialDisposable()
        self.upstream = SerialDisposable()
        self.last_text: Chunk | None = None  # where the pending text's last character came from
        self.ended = False  # the upstream terminated: with `failure`, or completed
        self.failure: Exception | None = None
        self.cooling = False  # a piece went out less than `pace` ago
        self.done = False

    def stop(self) -> None:
        self.done = True
        self.queue.clear()
        self.timer.dispose()
        self.upstream.dispose()

    def drain(self) -> None:
        """Emit what may go out now: pieces of text one per `pace`, other chunks at once."""
        queue = self.queue
        try:
            while queue and not self.done:
                if self.cooling and queue[0].content:
                    return
                chunk = queue.popleft()
                self.observer.on_next(chunk)
                if chunk.content and self.timer_scheduler is not None:
                    self.cooling = True
                    self.timer.disposable = self.timer_scheduler.schedule_relative(
                        self.pace, self.tick
                    )
        except Exception as error:  # the subscriber's on_next raised: stop, report
            if not self.done:
                self.stop()
                self.observer.on_error(error)
            return
        if self.ended and not queue and not self.done:
            self.done = True
            if self.failure is None:
                self.observer.on_completed()
            else:
                self.observer.on_error(self.failure)

    def tick(self, _: abc.SchedulerBase, __: Any = None) -> None:
        with self.lock:
            self.cooling = False
            self.drain()

    def add_text(self, pieces: list[str], origin: Chunk) -> None:
        self.queue.extend(
            Chunk(content=piece, provider=origin.provider, model=origin.model, id=origin.id)
            for piece in pieces
        )

    def close_text(self) -> None:
        if self.last_text is not None:
            self.add_text(self.decoder.flush(), self.last_text)

    def on_next(self, chunk: Chunk) -> None:
        with self.lock:
            if self.done:
                return
            if not isinstance(chunk, Chunk):
                self.stop()
                self.observer.on_error(
                    TypeError(f"smooth() takes Chunk items, got {type(chunk).__name__}")
                )
                return
            rest: Chunk | None = chunk
            if chunk.content:
                self.last_text = chunk
                self.add_text(self.decoder.decode(chunk.content), chunk)
                rest = chunk.model_copy(update={"content": ""})
                if rest.is_empty:  # nothing besides the text
                    rest = None
            if rest is not None:
                self.close_text()
                self.queue.append(rest)
            self.drain()

    def finish(self, error: Exception | None) -> None:
        with self.lock:
            if self.done or self.ended:
                return
            self.close_text()
            self.ended, self.failure = True, error
            self.drain()

    def on_error(self, error: Exception) -> None:
        self.finish(error)

    def on_completed(self) -> None:
        self.finish(None)

    def dispose(self) -> None:
        self.done = True  # no lock: a piece being emitted on another thread may finish
        self.timer.dispose()
        self.upstream.dispose()


def _resolve(
    chosen: abc.SchedulerBase | None, subscribed: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The scheduler for the pacing timer, decided at subscription."""
    if chosen is not None:
        return chosen
    if subscribed is not None:
        return subscribed
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return TimeoutScheduler.singleton()
    return AsyncIOThreadSafeScheduler(loop)
