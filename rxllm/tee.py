"""`tee()` and `audio_split()`: several observables backed by ONE provider call.

Subscribing a cold `LLM.stream(...)` twice makes two calls. `tee(source, n)` gives `n`
branches that share one subscription to `source`:

- the upstream is subscribed when the last branch is subscribed, so no branch misses a
  chunk; a branch subscribed and disposed before that is not waited for (it gets
  nothing), and a branch never subscribed means the call never starts;
- every branch sees every item, the completion, and the error;
- the upstream is disposed — which cancels the call — only when no branch listens any
  more: each one disposed, or finished because the upstream terminated;
- nothing reaches a branch after its disposal has returned;
- an exception raised by a branch's `on_next` goes to that branch's `on_error` and ends
  that branch only (the others go on; with none left the call is cancelled);
- each branch can be subscribed once (the branches share one call, which cannot be
  replayed): a second subscription fails with `RuntimeError` through `on_error`.

Branches may be subscribed and disposed from any thread; notifications arrive on the
upstream's thread (the call's background thread, or the asyncio loop's).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import reactivex
from reactivex import abc
from reactivex import operators as rx_ops
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from rxllm._checks import is_int, require_observable
from rxllm.models import Chunk

__all__ = ["AudioSplit", "audio_split", "tee"]

_log = logging.getLogger("rxllm.tee")

T = TypeVar("T")


class _State(enum.Enum):
    NEW = "new"  # not subscribed yet
    LISTENING = "listening"  # subscribed, not disposed, not finished
    DISPOSED = "disposed"  # its subscriber disposed it before the upstream terminated
    FINISHED = "finished"  # received the completion or the error


class _Branch:
    """One branch: its subscriber, and a lock that makes disposal a barrier for delivery."""

    __slots__ = ("delivery", "observer", "state")

    def __init__(self) -> None:
        self.state = _State.NEW
        self.observer: abc.ObserverBase[Any] | None = None
        # Held while an item is handed to this branch's subscriber; disposal takes it too,
        # so once `dispose()` returned nothing more is delivered (re-entrant: a subscriber
        # may dispose from inside its own on_next).
        self.delivery = threading.RLock()


class _Tee:
    """The shared upstream subscription and the branches that listen to it."""

    def __init__(self, source: reactivex.Observable[Any], n: int) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._branches = [_Branch() for _ in range(n)]
        self._started = False
        self._upstream = SingleAssignmentDisposable()

    def branch(self, index: int) -> reactivex.Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            branch = self._branches[index]
            with self._lock:
                if branch.state is not _State.NEW:
                    raise RuntimeError(
                        f"branch {index} of tee() was already subscribed: each branch shares "
                        "one call and can be subscribed only once; call tee() again (or "
                        "stream() again) for another call"
                    )
                branch.observer = observer
                branch.state = _State.LISTENING
                start = self._ready()
            if start:
                self._start(scheduler)
            return Disposable(lambda: self._dispose(branch))

        return reactivex.create(subscribe)

    def _ready(self) -> bool:
        """Under the lock: whether to subscribe the upstream now (marks it started)."""
        if self._started:
            return False
        states = [branch.state for branch in self._branches]
        if _State.NEW in states or _State.LISTENING not in states:
            return False
        self._started = True
        return True

    def _start(self, scheduler: abc.SchedulerBase | None) -> None:
        self._upstream.disposable = self._source.subscribe(
            self._on_next, self._on_error, self._on_completed, scheduler=scheduler
        )

    def _dispose(self, branch: _Branch) -> None:
        with branch.delivery, self._lock:
            if branch.state is not _State.LISTENING:
                return
            branch.state = _State.DISPOSED
            branch.observer = None
            # Before the start, a disposed branch just stops being waited for (the start
            # comes with the last subscription, so a disposal never has to trigger it).
            stop = self._started and all(b.state is not _State.LISTENING for b in self._branches)
        if stop:
            self._upstream.dispose()

    def _listening(self) -> list[_Branch]:
        with self._lock:
            return [b for b in self._branches if b.state is _State.LISTENING]

    def _on_next(self, item: Any) -> None:
        failed = False
        for branch in self._listening():
            with branch.delivery:
                observer = branch.observer
                if observer is None:
                    continue
                try:
                    observer.on_next(item)
                except Exception as error:
                    # That subscriber's own failure: it ends its branch, not the others.
                    with self._lock:
                        branch.state = _State.FINISHED
                        branch.observer = None
                    failed = True
                    _deliver(observer.on_error, error)
        if failed and not self._listening():
            self._upstream.dispose()

    def _end(self, notify: Callable[[abc.ObserverBase[Any]], None]) -> None:
        for branch in self._branches:
            with branch.delivery:
                with self._lock:
                    observer = branch.observer
                    if branch.state is not _State.LISTENING or observer is None:
                        continue
                    branch.state = _State.FINISHED
                    branch.observer = None
                _deliver(notify, observer)

    def _on_error(self, error: Exception) -> None:
        self._end(lambda observer: observer.on_error(error))

    def _on_completed(self) -> None:
        self._end(lambda observer: observer.on_completed())


def _deliver(notify: Callable[[Any], None], argument: Any) -> None:
    """Send one branch's terminal notification. A subscriber without an `on_error` (e.g.
    `.subscribe(print)`) raises the error back: that is logged, and the other branches
    still get theirs (it would have skipped them, and left them waiting for ever)."""
    try:
        notify(argument)
    except Exception as error:  # e.g. reactivex's default on_error, raising the error back
        _log.warning("a tee() branch's subscriber did not take its end (%r)", error)


def tee(source: reactivex.Observable[T], n: int = 2) -> tuple[reactivex.Observable[T], ...]:
    """`n` observables that share ONE subscription to `source` (one provider call).

    The call starts when all `n` branches are subscribed (a branch subscribed and disposed
    before that counts as present and gets nothing), every branch sees every item, the
    completion and the error, and the call is cancelled only when every branch has been
    disposed (a branch that received the completion or the error is finished and needs no
    disposal). Each branch can be subscribed once; a second
    subscription fails with `RuntimeError` through `on_error`.

        source:   -a--b--c-|        (subscribed once, when both branches are)
        tee(source, 2)
        branch 0: -a--b--c-|
        branch 1: -a--b--c-|

    >>> import rxllm
    >>> from rxllm import ops
    >>> whole, pieces = rxllm.tee(rxllm.scripted("One call, two views.").stream("hi"))
    >>> words = []
    >>> _ = pieces.pipe(ops.text()).subscribe(words.append)
    >>> rxllm.collect(whole).text, words
    ('One call, two views.', ['One ', 'call, ', 'two ', 'views.'])
    """
    require_observable("tee", source)
    if not is_int(n) or n < 1:
        raise ValueError(f"tee(n=...) needs an int of at least one branch, not {n!r}")
    shared = _Tee(source, n)
    return tuple(shared.branch(index) for index in range(n))


class AudioSplit(NamedTuple):
    """The text, audio and transcript of ONE call, as three observables (see `tee`)."""

    text: reactivex.Observable[str]
    """Non-empty text deltas."""
    audio: reactivex.Observable[bytes]
    """Non-empty raw audio deltas (decoded bytes, e.g. 16-bit PCM)."""
    transcript: reactivex.Observable[str]
    """Non-empty transcript deltas of the audio."""


def audio_split(source: reactivex.Observable[Chunk]) -> AudioSplit:
    """Split one call into its text, audio and transcript streams (tee semantics).

    The call starts when all three are subscribed; to use only some of them, subscribe
    and dispose the others (`split.transcript.subscribe().dispose()`), which counts as
    present.

        chunks:      -(t1)-(a1,"x")-(a2,"y")-|
        audio_split(chunks)
        text:        -t1-----------------------|
        audio:       ------a1-------a2---------|
        transcript:  ------"x"------"y"--------|

    >>> import rxllm
    >>> from rxllm import Chunk
    >>> llm = rxllm.scripted([Chunk(audio=b"\\x01\\x00", audio_transcript="Hi")])
    >>> split = rxllm.audio_split(llm.stream("say hi"))
    >>> sound = []
    >>> _ = split.audio.subscribe(sound.append)
    >>> split.text.subscribe().dispose()
    >>> list(rxllm.iterate(split.transcript)), sound
    (['Hi'], [b'\\x01\\x00'])
    """
    require_observable("audio_split", source)
    text, audio, transcript = tee(source, 3)
    return AudioSplit(
        text.pipe(rx_ops.map(_content), rx_ops.filter(bool)),
        audio.pipe(rx_ops.map(_audio), rx_ops.filter(bool)),
        transcript.pipe(rx_ops.map(_transcript), rx_ops.filter(bool)),
    )


def _content(chunk: Chunk) -> str:
    return chunk.content


def _audio(chunk: Chunk) -> bytes:
    return chunk.audio


def _transcript(chunk: Chunk) -> str:
    return chunk.audio_transcript
