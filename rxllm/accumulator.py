"""Putting chunks together: the response so far, at O(size of the chunk) per chunk.

Why a module of its own: every terminal (`collect`, `to_response`), every error's `partial`
and the `accumulate()` operator need "the response so far", and none of them may pay
O(text so far) per chunk — a stream of 300k chunks would turn quadratic. So `add` only
appends the chunk's text piece and raw event bytes (not the chunk: see `Accumulator`) and
updates a few scalars; text, tool calls and the provider-native `raw` object are put
together when somebody reads them, and reading them in order is incremental (each read
joins only what arrived since the previous one).

`Accumulator` is a plain object, usable without Rx:

>>> from rxllm.models import Chunk
>>> acc = Accumulator()
>>> first = acc.add(Chunk(content="Av"))
>>> second = acc.add(Chunk(content="engers"))
>>> first.text, second.text, second.delta.content
('Av', 'Avengers', 'engers')

Why ~450 lines in one module: `Accumulator`, `Snapshot` (a view of it at a point in the
past) and `Materializer` read the same private state; apart, they would need it public.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

from rxllm.models import Chunk, Response, ToolCall, ToolCallDelta, ToolResult, Usage

__all__ = [
    "Accumulator",
    "Materializer",
    "Snapshot",
    "ToolCallParts",
    "materialize",
]


class _Joined:
    """An incremental join of a growing list of string pieces, from piece `base` on (the
    first piece of the current step of a tool loop; 0 for a single call)."""

    __slots__ = ("base", "count", "value")

    def __init__(self) -> None:
        self.base = 0
        self.count = 0
        self.value = ""

    def upto(self, pieces: list[str], k: int, base: int = 0) -> str:
        """Pieces `base` to `k` joined; in-order reads join only what is new."""
        if base != self.base:
            if base < self.base:  # an earlier step read after a later one: rare
                return "".join(pieces[base:k])
            self.base = self.count = base  # a new step: start over from its first piece
            self.value = ""
        if k == self.count:
            return self.value
        if k > self.count:
            self.value += "".join(pieces[self.count : k])
            self.count = k
            return self.value
        # An older snapshot read after a newer one: rare, so recompute.
        return "".join(pieces[base:k])


class _Sparse:
    """The values of one rarely set field, with the positions of the chunks that set them."""

    __slots__ = ("joined", "positions", "values")

    def __init__(self) -> None:
        self.positions = array("q")  # machine ints: no int object per entry
        self.values: list[Any] = []
        self.joined = _Joined()

    def upto(self, n: int, start: int = 0) -> list[Any]:
        """The values set by chunks `start` to `n` (exclusive)."""
        first = bisect_left(self.positions, start) if start else 0
        return self.values[first : bisect_left(self.positions, n)]

    def text(self, n: int, start: int = 0) -> str:
        first = bisect_left(self.positions, start) if start else 0
        return self.joined.upto(self.values, bisect_left(self.positions, n), first)


_SPARSE_FIELDS = ("thinking", "refusal", "audio_transcript", "audio", "tool_calls")


class Accumulator:
    """The response so far, built from chunks one `add` at a time.

    It keeps what the chunks said, not the chunks: text pieces and each event's raw bytes
    are objects the garbage collector never scans, so a long stream does not make every
    collection slower (a list of 100k retained chunks cost ~2 µs per chunk in full
    collections).

    The stream of a tool loop (`ops.tool_loop`) is several answers, one per step, each
    ended by a chunk carrying `tool_results`: the response so far is then the current
    step's, with the finished ones in `Response.steps`.

    >>> acc = Accumulator()
    >>> first = acc.add(Chunk(content="Hel"))
    >>> acc.add(Chunk(content="lo", finish_reason="stop")).text, first.text
    ('Hello', 'Hel')
    >>> acc.response().finish_reason
    'stop'
    """

    __slots__ = (
        "_content",
        "_ends",
        "_ids",
        "_joined",
        "_last",
        "_models",
        "_n",
        "_providers",
        "_raws",
        "_sparse",
        "_start",
        "_steps",
        "codec",
        "finish_reason",
        "id",
        "model",
        "provider",
        "usage",
    )

    def __init__(self) -> None:
        self._n = 0
        self._last: Chunk | None = None
        self._content: list[str] = []  # one piece per chunk, "" when it had none
        self._joined = _Joined()
        self._raws: list[Any] = []  # per chunk: its raw event bytes (or index), itself, None
        self.codec: Any = None  # the first chunk's `rxllm.codec.Codec`: builds Response.raw
        self._sparse: dict[str, _Sparse] = {}
        self._models: list[tuple[int, str]] = []  # (position, model) where it changed
        self._ids: list[tuple[int, str]] = []
        self._providers: list[tuple[int, str]] = []  # (position, provider) where it changed
        self._start = 0  # the position of the current step's first chunk (tool loops)
        self._ends: list[int] = []  # where each finished step ends (exclusive)
        self._steps: list[Response] = []  # the finished steps, with their tool results
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.provider: str | None = None

    def __len__(self) -> int:
        return self._n

    def push(self, chunk: Chunk) -> None:
        """Add one chunk without making a snapshot. O(1)."""
        n = self._n
        if n == self._start and n:  # the first chunk of a tool loop's next step
            self.usage = self.finish_reason = None
        values = chunk.__dict__  # the fields, read as dict items: the hot path
        self._content.append(values["content"])
        private = chunk.__pydantic_private__
        data = private["_raw_data"] if private else None
        if data is None and private and (private["_raw"] is not None or private["_raw_factory"]):
            data = chunk  # a raw object already built, or built by a factory: keep the chunk
        self._raws.append(data)
        if (
            values["thinking"]
            or values["tool_calls"]
            or values["refusal"]
            or values["audio"]
            or values["audio_transcript"]
            or values["tool_results"]
        ):
            self._add_sparse(values, n)
            ended = values["tool_results"]  # a tool loop's step ends with this chunk
        else:
            ended = None
        if values["usage"] is not None:
            self.usage = values["usage"]
        if values["finish_reason"] is not None:
            self.finish_reason = values["finish_reason"]
        model = values["model"]
        if model and model != self.model:
            self.model = model
            self._models.append((n, model))
        response_id = values["id"]
        if response_id and response_id != self.id:
            self.id = response_id
            self._ids.append((n, response_id))
        provider = values["provider"]
        if provider != self.provider:
            # the first chunk, or another provider going on with the answer (a fallback)
            self._providers.append((n, provider))
            self.provider = provider
            if private:
                self.codec = private.get("_codec")
        self._last = chunk
        self._n = n + 1
        if ended:
            self._end_step(ended)

    def add(self, chunk: Chunk) -> Snapshot:
        """Add one chunk and return the snapshot of the response including it. O(1)."""
        self.push(chunk)
        return Snapshot(self, self._n, chunk)

    def extend(self, chunks: Sequence[Chunk]) -> None:
        """Add many chunks (no snapshots)."""
        push = self.push
        for chunk in chunks:
            push(chunk)

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot, or None before the first chunk."""
        if self._last is None:
            return None
        return Snapshot(self, self._n, self._last)

    def response(self) -> Response:
        """Materialize everything added so far into a `Response`."""
        return self._response(self._n, self.usage, self.finish_reason)

    def _end_step(self, results: tuple[ToolResult, ...]) -> None:
        """A tool loop's step ended with this chunk: keep its response; a new step starts."""
        end = self._n
        step = self._build(end, self._start, len(self._ends), self.usage, self.finish_reason)
        self._steps.append(step.model_copy(update={"tool_results": results, "steps": ()}))
        self._ends.append(end)
        self._start = end

    def _step_of(self, n: int) -> tuple[int, int]:
        """(which step, where it starts) for the response after the first `n` chunks."""
        if n > self._start or not self._ends:
            return len(self._ends), self._start
        k = bisect_right(self._ends, n - 1)
        return k, self._ends[k - 1] if k else 0

    def _add_sparse(self, values: dict[str, Any], n: int) -> None:
        for field in _SPARSE_FIELDS:
            value = values[field]
            if value:
                sparse = self._sparse.get(field)
                if sparse is None:
                    sparse = self._sparse[field] = _Sparse()
                sparse.positions.append(n)
                sparse.values.append(value)

    # --- reading at a point in the past (used by Snapshot) -------------------------------

    def _text(self, field: str, n: int) -> str:
        start = self._start if n > self._start else self._step_of(n)[1]
        if field == "content":
            return self._joined.upto(self._content, n, start)
        sparse = self._sparse.get(field)
        return sparse.text(n, start) if sparse is not None else ""

    def _upto(self, field: str, n: int, start: int) -> list[Any]:
        sparse = self._sparse.get(field)
        return sparse.upto(n, start) if sparse is not None else []

    def _tool_calls(self, n: int, start: int | None = None) -> tuple[ToolCall, ...]:
        if start is None:
            start = self._step_of(n)[1]
        calls: dict[int, ToolCallParts] = {}
        for deltas in self._upto("tool_calls", n, start):
            for delta in deltas:
                parts = calls.get(delta.index)
                if parts is None:
                    parts = calls[delta.index] = ToolCallParts()
                parts.add(delta)
        return tuple(parts.call() for _, parts in sorted(calls.items()))

    def _response(self, n: int, usage: Usage | None, finish_reason: str | None) -> Response:
        k, start = self._step_of(n)
        if k < len(self._ends) and n == self._ends[k]:
            return self._steps[k].model_copy(update={"steps": tuple(self._steps[:k])})
        return self._build(n, start, k, usage, finish_reason)

    def _build(
        self, n: int, start: int, k: int, usage: Usage | None, finish_reason: str | None
    ) -> Response:
        """The response of step `k` (chunks `start` to `n`), after the steps before it.

        Its provider is the one that served its last chunk; when several served it (a
        fallback went on with another), there is no native object of the whole: no `raw`.
        """
        provider = _as_of(self._providers, n) or "scripted"
        served_by_one = not any(start < at < n for at, _ in self._providers)
        response = Response(
            text=self._text("content", n),
            thinking=self._text("thinking", n),
            refusal=self._text("refusal", n),
            audio=b"".join(self._upto("audio", n, start)),
            audio_transcript=self._text("audio_transcript", n),
            tool_calls=self._tool_calls(n, start),
            finish_reason=finish_reason,
            usage=usage,
            model=_as_of(self._models, n),
            id=_as_of(self._ids, n),
            provider=provider,
            chunk_count=n - start,
            steps=tuple(self._steps[:k]),
        )
        codec = self.codec
        if codec is not None:
            response._private()["_codec"] = codec  # pyright: ignore[reportPrivateUsage]
            if n > start and served_by_one:
                refs = self._raws[start:n]
                pieces = self._content[start:n]
                response._with_raw_factory(  # pyright: ignore[reportPrivateUsage]
                    lambda: codec.raw_response(_events(codec, refs, pieces), response)
                )
        return response


def _as_of(changes: list[tuple[int, str]], n: int) -> str | None:
    """The value last set by one of the first `n` chunks."""
    for position, value in reversed(changes):
        if position < n:
            return value
    return None


def _events(codec: Any, refs: list[Any], pieces: list[str]) -> list[Any]:
    """The SDK event objects of the chunks whose raw references are `refs` (a chunk, an
    event's bytes, or the block index of a text delta that said nothing but its text,
    rebuilt from its piece of text: which only a `StreamCodec`'s chunks keep)."""
    events: list[Any] = []
    for ref, piece in zip(refs, pieces, strict=True):
        if ref is None:
            continue
        if isinstance(ref, Chunk):
            event = ref.raw
        elif isinstance(ref, bytes):
            event = codec.raw_event(ref)
        else:
            event = codec.text_event(ref, piece)
        if event is not None:
            events.append(event)
    return events


class ToolCallParts:
    """The fragments of one tool call, put together (the last id and name win).

    >>> from rxllm.models import ToolCallDelta
    >>> parts = ToolCallParts()
    >>> parts.add(ToolCallDelta(index=0, id="c1", name="f", arguments='{"x": '))
    >>> parts.add(ToolCallDelta(index=0, arguments="1}"))
    >>> parts.call().args
    {'x': 1}
    """

    __slots__ = ("_arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self._arguments: list[str] = []

    def add(self, delta: ToolCallDelta) -> None:
        """Add one fragment."""
        if delta.id:
            self.id = delta.id
        if delta.name:
            self.name = delta.name
        if delta.arguments:
            self._arguments.append(delta.arguments)

    def call(self) -> ToolCall:
        """The call as far as it was received."""
        return ToolCall(id=self.id, name=self.name, arguments="".join(self._arguments))


class Snapshot:
    """The response as it stood after one chunk: immutable, cheap to make, lazy to read.

    `text`, `thinking`, `tool_calls`, ... are the values *so far*; `delta` is the chunk just
    added; `index` its position (0-based); `response()` materializes a `Response`.

    >>> import rxllm
    >>> from rxllm import ops
    >>> stream = rxllm.scripted(["A", "v"]).stream("x").pipe(ops.accumulate())
    >>> [(s.index, s.text, s.delta.content) for s in rxllm.iterate(stream)]
    [(0, 'A', 'A'), (1, 'Av', 'v')]
    """

    __slots__ = ("_acc", "_n", "delta", "finish_reason", "index", "usage")

    def __init__(self, acc: Accumulator, n: int, delta: Chunk) -> None:
        self._acc = acc
        self._n = n
        self.delta: Chunk = delta
        """The chunk this snapshot added."""
        self.index: int = n - 1
        """Position of `delta` in the stream, from 0."""
        self.usage: Usage | None = acc.usage
        """The last usage reported up to here."""
        self.finish_reason: str | None = acc.finish_reason
        """The finish reason, once the provider said it."""

    @property
    def text(self) -> str:
        """The text so far."""
        return self._acc._text("content", self._n)  # pyright: ignore[reportPrivateUsage]

    @property
    def thinking(self) -> str:
        """The reasoning/thinking text so far."""
        return self._acc._text("thinking", self._n)  # pyright: ignore[reportPrivateUsage]

    @property
    def refusal(self) -> str:
        """The refusal text so far."""
        return self._acc._text("refusal", self._n)  # pyright: ignore[reportPrivateUsage]

    @property
    def audio_transcript(self) -> str:
        """The audio transcript so far."""
        return self._acc._text("audio_transcript", self._n)  # pyright: ignore[reportPrivateUsage]

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls so far (the last one's arguments may be incomplete)."""
        return self._acc._tool_calls(self._n)  # pyright: ignore[reportPrivateUsage]

    @property
    def step(self) -> int:
        """Which call of a tool loop (`ops.tool_loop`) this snapshot belongs to, from 0 (the
        text, tool calls, usage, ... above are that step's; earlier steps are in
        `response().steps`); 0 for a single call."""
        return self._acc._step_of(self._n)[0]  # pyright: ignore[reportPrivateUsage]

    @property
    def chunk_count(self) -> int:
        """How many chunks this snapshot includes (of its step, in a tool loop's stream)."""
        return self._n - self._acc._step_of(self._n)[1]  # pyright: ignore[reportPrivateUsage]

    def response(self) -> Response:
        """Materialize this snapshot into a `Response`."""
        return self._acc._response(self._n, self.usage, self.finish_reason)  # pyright: ignore[reportPrivateUsage]

    def __repr__(self) -> str:
        return f"Snapshot(index={self.index}, text={self.text[-40:]!r})"


class Materializer:
    """Builds the final `Response` from whatever a source emits: chunks or snapshots."""

    __slots__ = ("_acc", "_last")

    def __init__(self) -> None:
        self._acc = Accumulator()
        self._last: Snapshot | Response | None = None

    def add(self, item: Any) -> None:
        if type(item) is Snapshot:  # the usual last operator: accumulate()
            self._last = item
        elif isinstance(item, Chunk):
            self._acc.push(item)
        elif isinstance(item, Snapshot | Response):
            self._last = item
        else:
            raise TypeError(
                f"collect/to_response take an observable of Chunk or Snapshot, got "
                f"{type(item).__name__}; drop operators like text() before collecting"
            )

    def response(self) -> Response:
        last = self._last
        if isinstance(last, Snapshot):
            return last.response()
        if isinstance(last, Response):
            return last
        return self._acc.response()


def materialize() -> Materializer:
    """A fresh `Materializer` (for `collect`, `ops.to_response`, `on_finish`, `batch`)."""
    return Materializer()
