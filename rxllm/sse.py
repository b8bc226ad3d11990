"""Server-sent events, decoded incrementally from bytes.

The SDKs decode SSE into `ServerSentEvent` objects and then build a pydantic model per
event; at thousands of chunks per second that is most of the cost of a stream. rxllm reads
the SDK's raw HTTP response instead and decodes here: `feed(piece)` returns the events
completed by that piece, `flush()` the last one at the end. Comment lines (`: keep-alive`)
are dropped here, so keep-alives never count as provider activity.

>>> decoder = SSEDecoder()
>>> decoder.feed(b"event: ping\\ndata: {}\\n\\ndata: {\\"a\\"")
[('ping', b'{}')]
>>> decoder.feed(b": 1}\\n\\n")
[(None, b'{"a": 1}')]
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "ServerEvent"]

ServerEvent = tuple[str | None, bytes]
"""One event: its `event:` name (None when absent) and its `data:` payload."""


class SSEDecoder:
    """Incremental SSE decoder: bytes in, `(event, data)` pairs out, any split of the input."""

    __slots__ = ("_buffer", "_data", "_event", "_first", "_pending_cr")

    def __init__(self) -> None:
        self._first = True
        self._buffer = b""
        self._event: str | None = None
        self._data: bytes | None = None
        self._pending_cr = False

    def feed(self, piece: bytes) -> list[ServerEvent]:
        """Decode a piece of the body; return the events it completed."""
        if self._first:
            self._first = False
            piece = piece.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is no field
        if self._pending_cr:
            self._pending_cr = False
            if piece.startswith(b"\n"):
                piece = piece[1:]
        if b"\r" in piece:
            if piece.endswith(b"\r"):
                # A CR at the end may be half of a CRLF split across pieces.
                self._pending_cr = True
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + piece if self._buffer else piece
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return self._lines(lines)

    def flush(self) -> list[ServerEvent]:
        """End of body: the event still pending, if the body did not end with a blank line."""
        lines = [self._buffer, b""] if self._buffer else [b""]
        self._buffer = b""
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[ServerEvent]:
        events: list[ServerEvent] = []
        data = self._data
        event = self._event
        for line in lines:
            if not line:
                if data is not None:
                    events.append((event, data))
                data = None
                event = None
            elif line.startswith(b"data: "):
                data = line[6:] if data is None else data + b"\n" + line[6:]
            elif line.startswith(b"data:"):
                data = line[5:] if data is None else data + b"\n" + line[5:]
            elif line.startswith(b"event:"):
                event = _NAMES.get(line) or _event_name(line)
            # ":" comments (keep-alives), "id:" and "retry:" carry nothing for us.
        self._data = data
        self._event = event
        return events


_NAMES: dict[bytes, str] = {}


def _event_name(line: bytes) -> str:
    """The name in an `event:` line; the few names a provider uses are decoded once."""
    name = line[6:].strip().decode("utf-8", "replace")
    if len(_NAMES) < 256:
        _NAMES[line] = name
    return name
