"""One answer over several calls: what went out, and how the next call goes on from it.

`ops.retry` (the same call again) and `rxllm.fallback` (another provider's call) both turn a
call that failed into one stream of chunks: before any content went out the next call is
simply made; after text went out, the next call is asked to continue from that text (an
assistant prefill, or the text and an instruction to continue) and the repeat of its end that
models often send first is cut at the seam. Usage is summed over the calls. `Splice` holds
that state for one subscription; `Seam` is the cut.
"""

from __future__ import annotations

import reactivex
from reactivex import abc

from rxllm.accumulator import Accumulator
from rxllm.errors import LLMError
from rxllm.llm import CallStream
from rxllm.models import Chunk, Usage

__all__ = ["Seam", "Splice"]

_OVERLAP_WINDOW = 200
_OVERLAP_MIN = 8


class Splice:
    """The output of one subscription that several calls feed in turn.

    Feed the current call's chunks to `on_next`; when it fails, `flush()` what the seam
    held, ask `next_call(source)` how `source` takes over, and `end_call(error)` before
    subscribing it. `fail(error)` sends an error with everything delivered as `partial`.
    """

    __slots__ = (
        "_call_usage",
        "_delivered",
        "_observer",
        "_seam",
        "blocked",
        "emitted",
        "past_usage",
        "received",
        "subscriber_error",
    )

    def __init__(self, observer: abc.ObserverBase[Chunk]) -> None:
        self._observer = observer
        self._delivered: list[str] = []
        self._seam = Seam()
        self._call_usage: Usage | None = None  # the last usage the current call reported
        self.emitted = False
        """A chunk went out (content or not)."""
        self.blocked = False
        """Something went out that a continuation cannot reproduce: tool calls, thinking,
        refusal, audio."""
        self.past_usage: Usage | None = None
        """The usage of the calls that ended, summed."""
        self.received = Accumulator()
        """Everything the subscriber got, over all calls."""
        self.subscriber_error: Exception | None = None
        """What the subscriber's `on_next` raised, if it did (then the call stops with it,
        and it is never taken for the provider's failure)."""

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return "".join(self._delivered)

    @property
    def whole(self) -> bool:
        """The provider said why the answer ended (its finish reason went out): a break after
        that loses nothing, and a continuation would only add to a finished answer."""
        return self.received.finish_reason is not None

    @property
    def usage(self) -> Usage | None:
        """The usage of every call so far: the ended ones' and the current one's."""
        past, current = self.past_usage, self._call_usage
        if past is None or current is None:
            return past or current
        return past + current

    def on_next(self, chunk: Chunk) -> None:
        """A chunk of the current call: its usage counted over the calls, held at the seam
        while it could still be a repeat, else delivered."""
        if chunk.usage is not None:
            self._call_usage = chunk.usage
            if self.past_usage is not None:
                chunk = chunk.model_copy(update={"usage": self.past_usage + chunk.usage})
        for ready in self._seam.feed(chunk):
            self._deliver(ready)

    def flush(self) -> None:
        """Deliver what the seam holds (the call ended: it was received)."""
        for ready in self._seam.release():
            self._deliver(ready)

    def settled_by(self, error: Exception) -> bool:
        """A call failed with `error`: deliver what the seam held (it was received). True
        when that is the end of it — the subscriber's `on_next` raised now, or `error` is
        what it raised before — and the subscriber was told; False when the operator
        decides (retry, fall back, or fail)."""
        try:
            self.flush()
        except Exception as subscriber_error:
            self._observer.on_error(subscriber_error)
            return True
        if error is self.subscriber_error:
            self._observer.on_error(error)
            return True
        return False

    def _deliver(self, chunk: Chunk) -> None:
        if chunk.content:
            self._delivered.append(chunk.content)
        if chunk.tool_calls or chunk.thinking or chunk.refusal or chunk.audio:
            self.blocked = True
        self.emitted = True
        self.received.push(chunk)
        try:
            self._observer.on_next(chunk)
        except Exception as error:
            self.subscriber_error = error
            raise

    def next_call(
        self, source: reactivex.Observable[Chunk], *, resume: bool = True
    ) -> reactivex.Observable[Chunk] | None:
        """What to subscribe for `source` to take over, or None when it cannot.

        `source` itself while no content went out (at most chunks without any, e.g. a role
        or usage); after text, with `resume`, on a provider stream (`LLM.stream`), the same
        call asked to continue from that text (the seam then watches its start); None after
        content that cannot be continued, or without `resume`, or on any other source.
        """
        text = self.text
        if not (text or self.blocked):
            return source
        if self.blocked or not resume or not isinstance(source, CallStream):
            return None
        continued = source.continue_from(text)
        if continued is not None:
            self._seam.expect(text)
        return continued

    def end_call(self, error: BaseException | None = None) -> None:
        """The current call is over: its usage joins the past calls' (what its chunks said,
        else what its error's `partial` says it reported)."""
        usage = self._call_usage
        if usage is None and isinstance(error, LLMError) and error.partial is not None:
            usage = error.partial.usage
        if usage is not None:
            self.past_usage = usage if self.past_usage is None else self.past_usage + usage
        self._call_usage = None

    def fail(self, error: Exception) -> None:
        """Send `error`, with everything delivered over all calls as its `partial` (and the
        usage of every call, also of those whose usage came with no chunk)."""
        if (
            isinstance(error, LLMError)
            and error is not self.subscriber_error
            and len(self.received)
        ):
            partial = self.received.response()
            usage = self.usage
            if usage is not None and partial.usage != usage:
                partial = partial.model_copy(update={"usage": usage})
            error.partial = partial
        self._observer.on_error(error)


class Seam:
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
