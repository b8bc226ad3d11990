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

    __slots__ = ("_buffer", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""  # the body after the last complete event
        self._pending_cr = False

    def feed(self, piece: bytes) -> list[ServerEvent]:
        """Decode a piece of the body; return the events it completed."""
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
        # Events end at a blank line: split the body into whole events at C speed, and
        # decode the usual shapes ("data: ..." or "event: ...\ndata: ...") without a loop
        # over their lines.
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        events: list[ServerEvent] = []
        for block in blocks:
            if block[:6] == b"data: ":
                if b"\n" not in block:
                    events.append((None, block[6:]))
                    continue
            elif block[:7] == b"event: ":
                end = block.find(b"\n")
                if (
                    end > 0
                    and block[end + 1 : end + 7] == b"data: "
                    and b"\n" not in block[end + 1 :]
                ):
                    events.append((_event_name(block[7:end]), block[end + 7 :]))
                    continue
            event = _decode_block(block)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerEvent]:
        """End of body: the event still pending, if the body did not end with a blank line."""
        block, self._buffer = self._buffer, b""
        event = _decode_block(block) if block else None
        return [event] if event is not None else []


_NAMES: dict[bytes, str] = {}


def _event_name(raw: bytes) -> str:
    """`raw` decoded; the few names a provider uses are decoded once."""
    name = _NAMES.get(raw)
    if name is None:
        name = raw.strip().decode("utf-8", "replace")
        if len(_NAMES) < 256:
            _NAMES[raw] = name
    return name


def _decode_block(block: bytes) -> ServerEvent | None:
    """The event of one block of lines (any shape the SSE spec allows), or None."""
    data: bytes | None = None
    event: str | None = None
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            data = value if data is None else data + b"\n" + value
        elif line.startswith(b"event:"):
            event = _event_name(line[6:])
        # "" (leading blank lines), ":" comments (keep-alives), "id:" and "retry:" carry
        # nothing for us.
    return None if data is None else (event, data)
