"""`tee()` and `audio_split()`: several observables backed by ONE provider call.

Subscribing a cold `LLM.stream(...)` twice makes two calls. `tee(source, n)` gives `n`
branches that share one subscription to `source`:

- the upstream (the call) starts when the FIRST branch is subscribed: using only some
  branches never waits for the others;
- every branch sees every item from the first, the completion and the error, whenever it
  is subscribed: a branch subscribed later first gets the items it missed (replayed, in
  order, on the subscribing thread), then the live ones;
- items are kept only for that: while some branch has not been subscribed yet (it may
  still want them all) and while a subscribed branch has not been handed them yet. Once
  every branch is subscribed, nothing accumulates; a disposed or finished branch keeps
  nothing alive;
- the upstream is disposed — which cancels the call — as soon as no subscribed branch
  listens any more (each one disposed, or ended by its own subscriber's failure).
  Branches never subscribed do NOT keep the call alive: the stop button of a UI that
  shows one branch stops the model even if the other branches are never used. A branch
  subscribed after that cancellation fails at once with `RuntimeError` (subscribe every
  branch you want before disposing the last listening one). When the call has finished
  on its own (completion or error), a branch subscribed later gets the whole replay and
  the same end;
- nothing reaches a branch after its disposal has returned;
- an exception raised by a branch's `on_next` goes to that branch's `on_error` and ends
  that branch only (the others go on; with none left the call is cancelled);
- each branch can be subscribed once (the branches share one call, which cannot be
  replayed): a second subscription fails with `RuntimeError` through `on_error`.

Branches may be subscribed and disposed from any thread. Live items arrive on the
upstream's thread (the call's background thread, or the asyncio loop's), handed to the
caught-up branches one after the other in branch order; the items a
branch missed arrive on the thread that subscribes it, and while it catches up, that
thread also hands it the items that arrive meanwhile (the upstream never waits for a
branch that is catching up).
"""

from __future__ import annotations

import enum
import logging
import threading
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
    DISPOSED = "disposed"  # its subscriber disposed it before it finished
    FINISHED = "finished"  # received the completion or the error (or its on_next failed)


class _Branch:
    """One branch: its subscriber, where it is in the kept items, and a delivery lock."""

    __slots__ = ("delivery", "draining", "index", "live", "observer", "position", "state")

    def __init__(self, index: int) -> None:
        self.index = index
        self.state = _State.NEW
        self.observer: abc.ObserverBase[Any] | None = None
        self.live = False
        """Caught up: the upstream hands it each item directly (nothing kept for it)."""
        self.position = 0
        """Before it is live: the index (among the upstream's items) of the next one it gets."""
        self.draining = False
        """Whether a thread is catching it up (at most one at a time)."""
        # Held while an item is handed to this branch's subscriber; disposal takes it too,
        # so once `dispose()` returned nothing more is delivered (re-entrant: a subscriber
        # may dispose from inside its own on_next).
        self.delivery = threading.RLock()


class _End(NamedTuple):
    """How the upstream ended: with `error`, or completed when it is None."""

    error: Exception | None


class _Tee:
    """The shared upstream subscription, the items kept for branches, and the branches."""

    def __init__(self, source: reactivex.Observable[Any], n: int) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._branches = [_Branch(index) for index in range(n)]
        self._new = n  # branches not subscribed yet
        self._live: tuple[_Branch, ...] = ()  # listening and caught up
        self._catching: tuple[_Branch, ...] = ()  # listening, with items still to replay
        self._log: list[Any] = []  # the items some branch may still need
        self._base = 0  # the index (among the upstream's items) of self._log[0]
        self._end: _End | None = None
        self._started = False
        self._cancelled = False
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
                self._new -= 1
                if self._cancelled:
                    branch.state = _State.FINISHED
                    raise RuntimeError(
                        f"branch {index} of tee() was subscribed after the shared call was "
                        "cancelled: every branch subscribed before it had been disposed. "
                        "Subscribe every branch you want before disposing the last one that "
                        "listens (branches you never subscribe need nothing)"
                    )
                branch.observer = observer
                branch.state = _State.LISTENING
                # While a branch was not subscribed, every item was kept: from the first.
                branch.position = self._base
                branch.live = not self._log and self._end is None  # nothing to replay
                self._sort()
                start = not self._started
                self._started = True
            if start:
                self._upstream.disposable = self._source.subscribe(
                    self._on_next, self._on_error, self._on_completed, scheduler=scheduler
                )
            if not branch.live:
                self._drain(branch)  # the items it missed, and the end if it came
            return Disposable(lambda: self._dispose(branch))

        return reactivex.create(subscribe)

    def _sort(self) -> None:
        """Under the lock, after a branch changed: which branches are live or catching up,
        and which items are still needed."""
        listening = [b for b in self._branches if b.state is _State.LISTENING]
        self._live = tuple(b for b in listening if b.live)
        self._catching = tuple(b for b in listening if not b.live)
        if self._new and not self._cancelled:
            return  # a branch not subscribed yet will want them all
        keep_from = min((b.position for b in self._catching), default=self._base + len(self._log))
        if keep_from > self._base:
            del self._log[: keep_from - self._base]
            self._base = keep_from

    # ------------------------------------------------------------------ delivery

    def _drain(self, branch: _Branch) -> None:
        """Catch `branch` up: every item it has not had yet, then the end if it came, or
        else make it live. One thread at a time drains a branch; another one with more
        for it returns at once (the drainer picks the new items up), so the upstream never
        waits for a branch that is being caught up."""
        with self._lock:
            if branch.draining or branch.live or branch.state is not _State.LISTENING:
                return
            branch.draining = True
        while True:
            with branch.delivery:
                with self._lock:
                    observer = branch.observer
                    if branch.state is not _State.LISTENING or observer is None:
                        branch.draining = False
                        return
                    offset = branch.position - self._base
                    if offset < len(self._log):
                        item = self._log[offset]
                        branch.position += 1
                        end = None
                    else:
                        end = self._end
                        branch.draining = False
                        if end is None:
                            branch.live = True  # caught up: the upstream takes over
                        else:
                            branch.state = _State.FINISHED
                            branch.observer = None
                        self._sort()
                        if end is None:
                            return
                if end is not None:
                    _deliver(observer, end.error)
                    return
                if not self._hand(branch, observer, item):
                    return

    def _hand(self, branch: _Branch, observer: abc.ObserverBase[Any], item: Any) -> bool:
        """Under `branch.delivery`: give it one item; False when its subscriber failed."""
        try:
            observer.on_next(item)
        except Exception as error:
            # That subscriber's own failure: it ends its branch, not the others.
            with self._lock:
                branch.state = _State.FINISHED
                branch.observer = None
                branch.draining = False
                stop = self._release()
            _deliver(observer, error)
            if stop:
                self._upstream.dispose()
            return False
        return True

    def _release(self) -> bool:
        """Under the lock, after a branch stopped listening: whether to cancel the call
        now (no subscribed branch listens and the upstream has not ended)."""
        cancel = (
            self._end is None
            and not self._cancelled
            and not any(b.state is _State.LISTENING for b in self._branches)
        )
        if cancel:
            self._cancelled = True
            self._log.clear()  # nobody can get them: a later subscription fails
        self._sort()
        return cancel

    def _dispose(self, branch: _Branch) -> None:
        with branch.delivery, self._lock:
            if branch.state is not _State.LISTENING:
                return
            branch.state = _State.DISPOSED
            branch.observer = None
            stop = self._release()
        if stop:
            self._upstream.dispose()

    # ------------------------------------------------------------------ upstream

    def _on_next(self, item: Any) -> None:
        with self._lock:
            if self._cancelled or self._end is not None:
                return
            if self._new or self._catching:
                self._log.append(item)
            live, catching = self._live, self._catching
        for branch in live:
            with branch.delivery:
                observer = branch.observer  # disposal changes it under this lock too
                if branch.state is _State.LISTENING and observer is not None:
                    self._hand(branch, observer, item)
        for branch in catching:
            self._drain(branch)

    def _finish(self, end: _End) -> None:
        with self._lock:
            if self._cancelled or self._end is not None:
                return
            self._end = end
            live, catching = self._live, self._catching
        for branch in live:
            with branch.delivery:
                with self._lock:
                    observer = branch.observer
                    if branch.state is not _State.LISTENING or observer is None:
                        continue
                    branch.state = _State.FINISHED
                    branch.observer = None
                    self._sort()
                _deliver(observer, end.error)
        for branch in catching:
            self._drain(branch)

    def _on_error(self, error: Exception) -> None:
        self._finish(_End(error))

    def _on_completed(self) -> None:
        self._finish(_End(None))


def _deliver(observer: abc.ObserverBase[Any], error: Exception | None) -> None:
    """Send one branch's end: `error`, or the completion when it is None. A subscriber
    without an `on_error` (e.g. `.subscribe(print)`) raises the error back: that is
    logged, and the other branches still get theirs (it would have skipped them, and left
    them waiting for ever)."""
    try:
        if error is None:
            observer.on_completed()
        else:
            observer.on_error(error)
    except Exception as raised:  # e.g. reactivex's default on_error, raising the error back
        _log.warning("a tee() branch's subscriber did not take its end (%r)", raised)


def tee(source: reactivex.Observable[T], n: int = 2) -> tuple[reactivex.Observable[T], ...]:
    """`n` observables that share ONE subscription to `source` (one provider call).

    The call starts when the FIRST branch is subscribed; every branch sees every item from
    the first, the completion and the error, whenever it is subscribed (what it missed is
    replayed to it); the call is cancelled as soon as no subscribed branch listens any more
    (branches never subscribed do not keep it alive; one subscribed after that fails with
    `RuntimeError`). Items are kept only while a branch may still need them: once every
    branch is subscribed, nothing accumulates. Each branch can be subscribed once; a second
    subscription fails with `RuntimeError` through `on_error`. See the module docstring
    for the details.

        source:   -a--b--c-|        (subscribed once, by the first branch)
        tee(source, 2)
        branch 0: -a--b--c-|        (subscribed first)
        branch 1:       (ab)c-|     (subscribed later: a and b replayed, then live)

    >>> import rxllm
    >>> from rxllm import ops
    >>> whole, pieces = rxllm.tee(rxllm.scripted("One call, two views.").stream("hi"))
    >>> rxllm.collect(whole).text
    'One call, two views.'
    >>> list(rxllm.iterate(pieces.pipe(ops.text())))  # subscribed after the end: a replay
    ['One ', 'call, ', 'two ', 'views.']
    """
    require_observable("tee", source)
    if not is_int(n) or n < 1:
        raise ValueError(f"tee(n=...) needs an int of at least one branch, not {n!r}")
    shared = _Tee(source, n)
    return tuple(shared.branch(index) for index in range(n))


class AudioSplit(NamedTuple):
    """The text, audio and transcript of ONE call, as three observables (see `tee`).

    >>> import rxllm
    >>> llm = rxllm.scripted([rxllm.Chunk(audio=b"\\x00\\x00" * 4, audio_transcript="Hi.")])
    >>> split = rxllm.audio_split(llm.stream("Say hi"))
    >>> text, audio, transcript = split  # a NamedTuple: unpack it, or use its names
    >>> split.transcript.run(), len(audio.run())
    ('Hi.', 8)
    """

    text: reactivex.Observable[str]
    """Non-empty text deltas."""
    audio: reactivex.Observable[bytes]
    """Non-empty raw audio deltas (decoded bytes, e.g. 16-bit PCM)."""
    transcript: reactivex.Observable[str]
    """Non-empty transcript deltas of the audio."""


def audio_split(source: reactivex.Observable[Chunk]) -> AudioSplit:
    """Split one call into its text, audio and transcript streams (tee semantics).

    The call starts when the first of them is subscribed; the others, subscribed later,
    get what they missed first. To use only some of them, just subscribe those (e.g.
    `rxllm.write_wav(audio_split(stream).audio, "out.wav")`): the ones never subscribed
    neither wait nor keep the call alive when the used ones are disposed.

        chunks:      -(t1)-(a1,"x")-(a2,"y")-|
        audio_split(chunks)
        text:        -t1-----------------------|
        audio:       ------a1-------a2---------|
        transcript:  ------"x"------"y"--------|

    >>> import rxllm, tempfile, wave
    >>> from rxllm import Chunk
    >>> llm = rxllm.scripted([Chunk(audio=b"\\x01\\x00" * 240, audio_transcript="Hi")])
    >>> split = rxllm.audio_split(llm.stream("say hi"))
    >>> out = rxllm.write_wav(split.audio, tempfile.mktemp(suffix=".wav"))
    >>> wave.open(str(out)).getnframes(), list(rxllm.iterate(split.transcript))
    (240, ['Hi'])
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
