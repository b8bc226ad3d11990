"""Amazon Bedrock's streaming framing: Anthropic's Messages events as AWS event-stream
messages (`InvokeModelWithResponseStream`, content type `application/vnd.amazon.eventstream`).

A message is a prelude (total length, headers length, the prelude's CRC32), typed headers,
a payload and the message's CRC32. Each Messages event travels as a `chunk` event whose
JSON payload holds the event's JSON in base64 (`{"bytes": ...}`); an error is an
`exception` message (`:exception-type` such as `throttlingException`) with a JSON
`{"message": ...}`. botocore only decodes this format, so the loopback server encodes it
here; the tests decode every message with botocore's `EventStreamBuffer`, the SDK's reader.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct

from rxllm.sse import SSEDecoder
from rxllm.testing._encode import Frame, Plan

__all__ = ["CONTENT_TYPE", "bedrock_plan", "message"]

CONTENT_TYPE = "application/vnd.amazon.eventstream"

_EXCEPTIONS = {
    "overloaded_error": "serviceUnavailableException",
    "rate_limit_error": "throttlingException",
    "api_error": "internalServerException",
    "invalid_request_error": "validationException",
    "timeout_error": "modelTimeoutException",
}
"""Anthropic error types scripted as `error_event`, as Bedrock names them."""

_STRING = 7  # the header value type of a UTF-8 string


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message.

    >>> from botocore.eventstream import EventStreamBuffer
    >>> buffer = EventStreamBuffer()
    >>> buffer.add_data(message({":message-type": "event"}, b"{}"))
    >>> [(m.headers, m.payload) for m in buffer]
    [({':message-type': 'event'}, b'{}')]
    """
    encoded = b"".join(
        struct.pack(">B", len(name.encode()))
        + name.encode()
        + struct.pack(">BH", _STRING, len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    head = prelude + struct.pack(">I", binascii.crc32(prelude))
    body = head + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body))


def _event(name: str | None, data: bytes) -> bytes:
    if name == "error":
        try:
            error = json.loads(data).get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        kind = str(error.get("type") or "internalServerException")
        return message(
            {
                ":message-type": "exception",
                ":exception-type": _EXCEPTIONS.get(kind, kind),
                ":content-type": "application/json",
            },
            json.dumps({"message": str(error.get("message") or kind)}).encode(),
        )
    chunk = {"bytes": base64.b64encode(data).decode("ascii")}
    return message(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        json.dumps(chunk).encode(),
    )


def _frame(frame: Frame) -> Frame:
    decoder = SSEDecoder()
    events = [event for event in decoder.feed(frame.data) + decoder.flush() if event[0] != "ping"]
    data = b"".join(_event(name, payload) for name, payload in events)
    return Frame(data, frame.chunks, len(events), frame.wait)


def bedrock_plan(plan: Plan) -> Plan:
    """An Anthropic plan as Bedrock frames it: the same frames, pauses and ending; each SSE
    event an event-stream message (pings left out: Bedrock sends none)."""
    return Plan((_frame(frame) for frame in plan.frames), plan.ending, plan.normal)
