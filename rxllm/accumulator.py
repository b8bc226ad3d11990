"""Putting chunks together: the response so far, at O(size of the chunk) per chunk.

Why a module of its own: every terminal (`collect`, `to_response`), every error's `partial`
and the `accumulate()` operator need "the response so far", and none of them may pay
O(text so far) per chunk — a stream of 300k chunks would turn quadratic. So `add` only
appends the chunk and updates a few scalars; text, tool calls and the provider-native
`raw` object are put together when somebody reads them, and reading them in order is
incremental (each read joins only what arrived since the previous one).

`Accumulator` is a plain object, usable without Rx:

>>> from rxllm.models import Chunk
>>> acc = Accumulator()
>>> first = acc.add(Chunk(content="Av"))
>>> second = acc.add(Chunk(content="engers"))
>>> first.text, second.text, second.delta.content
('Av', 'Avengers', 'engers')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rxllm.models import Chunk, Response, ToolCall, ToolCallDelta, Usage

__all__ = ["Accumulator", "Snapshot", "ToolCallParts", "register_raw_builder"]

RawBuilder = Callable[[Sequence[Chunk]], Any]
_RAW_BUILDERS: dict[str, RawBuilder] = {}


def register_raw_builder(provider: str, builder: RawBuilder) -> None:
    """Declare how `provider`'s chunks become its native final object (`Response.raw`).

    Providers call this at import; the builder runs only when `Response.raw` is read, so
    it may replay every chunk through the SDK's own accumulator.
    """
    _RAW_BUILDERS[provider] = builder


class _Joined:
    """An incremental join of one string field over a growing list of chunks."""

    __slots__ = ("count", "field", "value")

    def __init__(self, field: str) -> None:
        self.field = field
        self.count = 0
        self.value = ""

    def upto(self, chunks: Sequence[Chunk], n: int) -> str:
        field = self.field
        if n == self.count:
            return self.value
        if n > self.count:
            self.value += "".join([getattr(c, field) for c in chunks[self.count : n]])
            self.count = n
            return self.value
        # An older snapshot read after a newer one: rare, so recompute.
        return "".join([getattr(c, field) for c in chunks[:n]])


class Accumulator:
    """The response so far, built from chunks one `add` at a time."""

    __slots__ = (
        "_audio",
        "_chunks",
        "_joins",
        "_tool_positions",
        "finish_reason",
        "id",
        "model",
        "provider",
        "usage",
    )

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        self._tool_positions: list[int] = []
        self._joins: dict[str, _Joined] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.provider: str | None = None

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, chunk: Chunk) -> Snapshot:
        """Add one chunk and return the snapshot of the response including it. O(1)."""
        chunks = self._chunks
        if chunk.tool_calls:
            self._tool_positions.append(len(chunks))
        chunks.append(chunk)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.model:
            self.model = chunk.model
        if chunk.id:
            self.id = chunk.id
        if self.provider is None:
            self.provider = chunk.provider
        return Snapshot(self, len(chunks), chunk)

    def extend(self, chunks: Sequence[Chunk]) -> None:
        """Add many chunks (no snapshots)."""
        for chunk in chunks:
            self.add(chunk)

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot, or None before the first chunk."""
        if not self._chunks:
            return None
        return Snapshot(self, len(self._chunks), self._chunks[-1])

    def response(self) -> Response:
        """Materialize everything added so far into a `Response`."""
        return self._response(len(self._chunks), self.usage, self.finish_reason)

    # --- reading at a point in the past (used by Snapshot) -------------------------------

    def _text(self, field: str, n: int) -> str:
        joined = self._joins.get(field)
        if joined is None:
            joined = self._joins[field] = _Joined(field)
        return joined.upto(self._chunks, n)

    def _audio_upto(self, n: int) -> bytes:
        return b"".join([c.audio for c in self._chunks[:n] if c.audio])

    def _tool_calls(self, n: int) -> tuple[ToolCall, ...]:
        calls: dict[int, ToolCallParts] = {}
        chunks = self._chunks
        for position in self._tool_positions:
            if position >= n:
                break
            for delta in chunks[position].tool_calls:
                parts = calls.get(delta.index)
                if parts is None:
                    parts = calls[delta.index] = ToolCallParts()
                parts.add(delta)
        return tuple(parts.call() for _, parts in sorted(calls.items()))

    def _response(self, n: int, usage: Usage | None, finish_reason: str | None) -> Response:
        chunks = self._chunks
        model = next((c.model for c in reversed(chunks[:n]) if c.model), None)
        response_id = next((c.id for c in reversed(chunks[:n]) if c.id), None)
        provider = self.provider or "scripted"
        response = Response(
            text=self._text("content", n),
            thinking=self._text("thinking", n),
            refusal=self._text("refusal", n),
            audio=self._audio_upto(n),
            audio_transcript=self._text("audio_transcript", n),
            tool_calls=self._tool_calls(n),
            finish_reason=finish_reason,
            usage=usage,
            model=model,
            id=response_id,
            provider=provider,
            chunk_count=n,
        )
        builder = _RAW_BUILDERS.get(provider)
        if builder is not None and n:
            prefix = chunks[:n]
            response._with_raw_factory(lambda: builder(prefix))  # pyright: ignore[reportPrivateUsage]
        return response


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
    """

    __slots__ = ("_acc", "_n", "delta", "finish_reason", "index", "usage")

    def __init__(self, acc: Accumulator, n: int, delta: Chunk) -> None:
        self._acc = acc
        self._n = n
        self.delta = delta
        """The chunk this snapshot added."""
        self.index = n - 1
        """Position of `delta` in the stream, from 0."""
        self.usage = acc.usage
        """The last usage reported up to here."""
        self.finish_reason = acc.finish_reason
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
    def chunk_count(self) -> int:
        """How many chunks this snapshot includes."""
        return self._n

    def response(self) -> Response:
        """Materialize this snapshot into a `Response`."""
        return self._acc._response(self._n, self.usage, self.finish_reason)  # pyright: ignore[reportPrivateUsage]

    def __repr__(self) -> str:
        return f"Snapshot(index={self.index}, text={self.text[-40:]!r})"
