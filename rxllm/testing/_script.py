"""Scripts: what the loopback server answers to one request.

A `Script` is protocol-neutral: the same script can be replayed to the OpenAI SDK and to
the Anthropic SDK, and `_encode` turns it into each provider's own events. It also says
how the answer misbehaves (a slow first chunk, an HTTP error, an error event, a malformed
event, a dropped or hanging connection), because testing those paths is what a fake
server is for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rxllm._checks import is_int
from rxllm.models import Chunk, Usage
from rxllm.providers.scripted import split_text

__all__ = ["Script", "check_contiguous_calls"]


def check_contiguous_calls(items: Sequence[str | Chunk], protocol: str, why: str) -> None:
    """Raise `ValueError` when the fragments of one tool call are not contiguous in a
    script: a protocol that streams each call as one block (an Anthropic content block, a
    Responses output item) closes it for good when the next block starts."""
    current: int | None = None
    closed: set[int] = set()
    for item in items:
        if isinstance(item, str) or item.thinking or item.content or item.refusal:
            if current is not None:
                closed.add(current)
                current = None
            if isinstance(item, str):
                continue
        for call in item.tool_calls:
            if call.index == current:
                continue
            if call.index in closed:
                raise ValueError(
                    f"this script cannot be streamed as {protocol} events: the deltas of tool "
                    f"call {call.index} are not contiguous ({why})"
                )
            if current is not None:
                closed.add(current)
            current = call.index


def _carries_content(chunk: Chunk) -> bool:
    return bool(
        chunk.content
        or chunk.thinking
        or chunk.refusal
        or chunk.audio
        or chunk.audio_transcript
        or chunk.tool_calls
    )


def _check_types(usage: object, error_event: object, error_body: object, status: object) -> None:
    """Options of the wrong type fail here, not later in the server's thread (where the
    client saw only a dropped connection)."""
    if usage is not None and not isinstance(usage, Usage):
        raise TypeError(
            f"Script(usage=...) takes an rxllm.Usage, e.g. Usage(input_tokens=3, "
            f"output_tokens=2), not {type(usage).__name__}"
        )
    if error_event is not None and not isinstance(error_event, str | Mapping):
        raise TypeError(
            "Script(error_event=...) takes an error type (e.g. 'overloaded_error') or the "
            f"error object as a dict, not {type(error_event).__name__}"
        )
    if error_body is not None and not isinstance(error_body, str | bytes | Mapping):
        raise TypeError(
            f"Script(error_body=...) takes a dict, a str or bytes, not {type(error_body).__name__}"
        )
    if status is not None and (not is_int(status)):
        raise TypeError(f"Script(status=...) takes an int HTTP status, not {status!r}")


def _seconds(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"Script({name}=...) must be a finite number of seconds >= 0, not {value!r}"
        )
    return float(value)


def _count(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if not is_int(value) or value < 0:
        raise ValueError(f"Script({name}=...) must be a chunk count >= 0 (or None), not {value!r}")
    return value


@dataclass(frozen=True, init=False, eq=False, repr=False)
class Script:
    """What the loopback `Server` streams back to one request.

    `chunks` is a text (split into word-sized pieces, whitespace kept) or a sequence of
    text deltas (`str`) and `rxllm.Chunk`s (text, thinking, refusal, audio, tool-call
    deltas, a finish reason, usage). Chunks that carry only a finish reason or usage are
    not streamed as chunks of their own: the last finish reason and usage scripted end the
    stream. Without one the stream finishes with "stop" ("tool_calls" when a tool call was
    scripted).

    The keyword arguments make the answer slow or broken: `headers_delay` seconds before
    the response headers (a queued request), `first_delay` seconds before the
    first chunk, `delay` seconds between chunks (with keep-alives every `ping_every`
    seconds while waiting), an HTTP error `status` instead of a stream, an `error_event`
    after the chunks, a malformed event / a dropped connection / a hang after `k` chunks
    (the earliest of the three wins; a `k` beyond the script never triggers). `raw_events`
    replays a recorded stream verbatim instead of chunks (each event counts as a chunk);
    as a list of `bytes` pieces it is written piece by piece exactly as cut (each piece
    counts as a chunk, and with a `delay` each is its own write), so an event, or a
    multi-byte character, can be split across TCP writes.

    Anthropic streams have no refusal or audio deltas: refusal text is sent as text and
    audio is left out; the fragments of one tool call must be contiguous there.

    >>> from rxllm.models import Chunk, ToolCallDelta
    >>> Script("Hello there, world.").chunks
    ('Hello ', 'there, ', 'world.')
    >>> Script(["Let me check.", Chunk(tool_calls=(ToolCallDelta(index=0, name="weather",
    ...     arguments='{"city": "Oslo"}'),))]).finish_reason
    'tool_calls'
    >>> Script("Too late.", status=429, headers={"retry-after": "2"}).status
    429
    """

    chunks: tuple[str | Chunk, ...]
    """The scripted items as given (a text is already split into pieces)."""
    delay: float
    """Seconds between two chunks."""
    first_delay: float
    """Seconds between the response headers and the first event."""
    headers_delay: float
    """Seconds before the status line and headers (of a stream or an error status): a
    request the provider has queued. The server watches for the client leaving meanwhile."""
    status: int | None
    """An HTTP error status to answer with instead of a stream (e.g. 429, 500, 529)."""
    error_body: Mapping[str, Any] | str | bytes | None
    """The error response body to send with `status` instead of the provider-style one."""
    headers: Mapping[str, str]
    """Extra response headers (e.g. `{"retry-after": "2"}`)."""
    error_event: str | Mapping[str, Any] | None
    """An error event sent after the chunks: an error type, or the provider's error object."""
    malformed_after: int | None
    """After this many chunks, send one event whose data is not JSON and end the stream."""
    drop_after: int | None
    """After this many chunks, close the connection in the middle of the response body."""
    hang_after: int | None
    """After this many chunks, send nothing more (but pings) until the client leaves.

    The server gives up after 60 seconds and drops the connection."""
    ping_every: float | None
    """Seconds between keep-alives while waiting (delays and hangs)."""
    usage: Usage | None
    """The usage to report; by default input = words of the request, output = chunks."""
    model: str
    """The model name the stream reports."""
    response_id: str | None
    """The response id the stream reports; a fresh one per request by default."""
    raw_events: tuple[dict[str, Any], ...] | tuple[bytes, ...] | bytes | None
    """Recorded events replayed verbatim instead of the chunks: event objects, the whole
    body, or the body's pieces (`bytes`) written one by one as cut."""
    _content: tuple[str | Chunk, ...]
    _finish_reason: str

    def __init__(
        self,
        chunks: str | Sequence[str | Chunk] = (),
        *,
        delay: float = 0.0,
        first_delay: float = 0.0,
        headers_delay: float = 0.0,
        status: int | None = None,
        error_body: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        error_event: str | Mapping[str, Any] | None = None,
        malformed_after: int | None = None,
        drop_after: int | None = None,
        hang_after: int | None = None,
        ping_every: float | None = None,
        usage: Usage | None = None,
        model: str = "test-model",
        response_id: str | None = None,
        raw_events: Sequence[Mapping[str, Any]] | Sequence[bytes] | str | bytes | None = None,
    ) -> None:
        if isinstance(chunks, str):
            items: tuple[str | Chunk, ...] = tuple(split_text(chunks))
        else:
            items = tuple(chunks)
            for item in items:
                if not isinstance(item, str | Chunk):
                    raise TypeError(
                        f"Script chunks must be str or rxllm.Chunk, not {type(item).__name__}: "
                        f"{item!r}"
                    )
        _check_types(usage, error_event, error_body, status)
        if status is not None and not 400 <= status <= 599:
            raise ValueError(
                f"Script(status=...) must be an HTTP error status (400-599), not {status}"
            )
        if ping_every is not None and not (math.isfinite(ping_every) and ping_every > 0):
            raise ValueError(
                f"Script(ping_every=...) must be a number of seconds > 0, not {ping_every!r}"
            )
        raw: tuple[dict[str, Any], ...] | tuple[bytes, ...] | bytes | None
        if raw_events is None:
            raw = None
        elif isinstance(raw_events, str | bytes):
            raw = raw_events.encode() if isinstance(raw_events, str) else bytes(raw_events)
        elif isinstance(raw_events, Mapping):
            raise TypeError(
                "Script(raw_events=...) takes the whole body as a str or bytes, or a list of "
                "event objects (dicts): wrap a single event in a list"
            )
        else:
            given: list[object] = list(raw_events)
            pieces = [bytes(p) for p in given if isinstance(p, bytes | bytearray)]
            if given and len(pieces) == len(given):
                raw = tuple(pieces)
            else:
                raw = tuple(_raw_event(event) for event in given)
        if raw is not None and items:
            raise ValueError("Script takes either chunks or raw_events, not both")

        content = tuple(item for item in items if isinstance(item, str) or _carries_content(item))
        finish: str | None = None
        scripted_usage: Usage | None = None
        for item in items:
            if isinstance(item, Chunk):
                finish = item.finish_reason or finish
                scripted_usage = item.usage or scripted_usage
        if finish is None:
            calls = any(isinstance(item, Chunk) and item.tool_calls for item in items)
            finish = "tool_calls" if calls else "stop"

        set_ = object.__setattr__
        set_(self, "chunks", items)
        set_(self, "delay", _seconds("delay", delay))
        set_(self, "first_delay", _seconds("first_delay", first_delay))
        set_(self, "headers_delay", _seconds("headers_delay", headers_delay))
        set_(self, "status", status)
        set_(self, "error_body", error_body)
        set_(self, "headers", dict(headers or {}))
        set_(self, "error_event", error_event)
        set_(self, "malformed_after", _count("malformed_after", malformed_after))
        set_(self, "drop_after", _count("drop_after", drop_after))
        set_(self, "hang_after", _count("hang_after", hang_after))
        set_(self, "ping_every", ping_every)
        set_(self, "usage", usage or scripted_usage)
        set_(self, "model", model)
        set_(self, "response_id", response_id)
        set_(self, "raw_events", raw)
        set_(self, "_content", content)
        set_(self, "_finish_reason", finish)

    @property
    def content(self) -> tuple[str | Chunk, ...]:
        """The items streamed as chunks: texts and chunks that carry a delta."""
        return self._content

    @property
    def finish_reason(self) -> str:
        """The finish reason the stream ends with (normalized, e.g. "stop", "tool_calls")."""
        return self._finish_reason

    def __repr__(self) -> str:
        # A script can hold 100k chunks: show their number, and only the options that are set.
        if self.raw_events is None:
            shown = [f"<{len(self.chunks)} chunks>"]
        else:
            shown = [f"raw_events=<{len(self.raw_events)} events or bytes>"]
        for name, value in vars(self).items():
            if name.startswith("_") or name in ("chunks", "raw_events"):
                continue
            if name == "model" and value == "test-model":
                continue
            if value is None or (name.endswith("delay") and value == 0.0):
                continue
            if name == "headers" and not value:
                continue
            shown.append(f"{name}={value!r}")
        return f"Script({', '.join(shown)})"


def _raw_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise ValueError(
            "Script(raw_events=...) takes the whole body as a str or bytes, a list of event "
            "objects (dicts), or a list of the body's pieces (all bytes); got a list holding a "
            f"{type(event).__name__}: for SSE text, join the events into one str"
        )
    return dict(event)  # pyright: ignore[reportUnknownArgumentType]
