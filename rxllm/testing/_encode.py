"""Encoders: a `Script` as the bytes of an OpenAI or an Anthropic streaming response.

The events follow what the real APIs send, closely enough that the SDKs' own parsers and
accumulators (`ChatCompletionStreamState`, `MessageStream.get_final_message`) accept them.
A script becomes a `Plan`: a lazy sequence of `Frame`s (the bytes of one scripted chunk,
or of the events around the chunks, with the pause to take before them) and what to do
after the last frame (end the body, drop the connection, or hang).

Encoding is on the hot path of 100k-chunk streams, so plain text deltas are spliced into
pre-rendered JSON around them instead of going through a dict and `json.dumps` each.

Why ~600 lines in one module: one encoder per protocol of the same `Script`, side by side so
that every misbehaviour a script can ask for is written for each protocol at once.
"""

from __future__ import annotations

import base64
import http
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing._encode_responses import ResponsesEncoder, check_responses
from rxllm.testing._script import Script, check_contiguous_calls

__all__ = [
    "Ending",
    "Frame",
    "Plan",
    "Protocol",
    "error_response",
    "ping",
    "plan",
    "reason_phrase",
    "status_response",
]

Protocol = Literal["openai", "anthropic", "openai-responses"]
"""The wire protocol of a request: OpenAI Chat Completions, Anthropic Messages, or OpenAI's
Responses API (`_encode_responses`)."""
Ending = Literal["end", "drop", "hang"]
"""After the last frame: end the body properly, drop the connection, or hang."""

_SSE_EVENT = re.compile(rb"(?s).*?(?:\r\n\r\n|\n\n|\r\r)|.+")
_WORD = re.compile(r"\S+")

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_DEFAULT_MESSAGES = {
    "overloaded_error": "Overloaded",
    "rate_limit_error": "Rate limit exceeded (scripted).",
    "rate_limit_exceeded": "Rate limit exceeded (scripted).",
    "server_error": "The server had an error while processing your request. Sorry about that!",
    "api_error": "Internal server error (scripted).",
}

# Status -> (OpenAI error type, OpenAI error code, message); the last entries are the fallbacks.
_OPENAI_STATUS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (scripted 400)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to make this request."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("conflict_error", None, "Conflict (scripted 409)."),
    422: ("invalid_request_error", None, "Unprocessable request (scripted 422)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, _DEFAULT_MESSAGES["server_error"]),
}
_ANTHROPIC_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (scripted 400)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to do this."),
    404: ("not_found_error", "Not found (scripted 404)."),
    413: ("request_too_large", "Request exceeds the maximum allowed size."),
    429: ("rate_limit_error", "Rate limit exceeded (scripted)."),
    500: ("api_error", "Internal server error (scripted)."),
    504: ("timeout_error", "Request timed out (scripted)."),
    529: ("overloaded_error", "Overloaded"),
}


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes to write as one unit, with what they count for in the recording.

    >>> Frame(b"data: [DONE]\\n\\n", chunks=0, events=1, wait=0.0).events
    1
    """

    data: bytes
    """Complete SSE events (possibly none, e.g. audio scripted for Anthropic)."""
    chunks: int
    """Scripted chunks these bytes carry (0 or 1)."""
    events: int
    """SSE events in `data`."""
    wait: float
    """Seconds to pause before writing them."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A script encoded for one request: the frames to write, then how the response ends.

    >>> from rxllm.testing import Script
    >>> p = plan(Script("Hi there"), "openai", {"messages": []})
    >>> sum(frame.chunks for frame in p.frames), p.ending, p.normal
    (2, 'end', True)
    """

    frames: Iterator[Frame]
    """The frames, encoded lazily as they are written."""
    ending: Ending
    """What to do after the last frame."""
    normal: bool
    """Whether the frames end with the protocol's own end of stream ([DONE], message_stop)."""


def _error_object(protocol: Protocol, error: str | Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(error, str):
        return dict(error)
    message = _DEFAULT_MESSAGES.get(error, f"Scripted {error}.")
    if protocol == "openai":
        return {"message": message, "type": error, "param": None, "code": None}
    return {"type": error, "message": message}


class _OpenAIEvents:
    """Chat Completions chunks: `data: {chat.completion.chunk}` lines, then `data: [DONE]`."""

    malformed = "data: {not json\n\n"
    ping = ": keep-alive\n\n"

    def __init__(self, script: Script, body: Mapping[str, Any], response_id: str | None) -> None:
        self._id = response_id or f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self._head = (
            f'{{"id":{_json(self._id)},"object":"chat.completion.chunk","created":'
            f'{int(time.time())},"model":{_json(script.model)},"system_fingerprint":null,'
        )
        self._prefix = f'data: {self._head}"choices":[{{"index":0,"delta":'
        self._suffix = ',"logprobs":null,"finish_reason":null}]}\n\n'
        options = body.get("stream_options")
        self._include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        self._role_sent = False
        self._audio_sent = False
        self._tools_seen: set[int] = set()

    def start(self) -> list[str]:
        return []

    def _role(self) -> str:
        if self._role_sent:
            return ""
        self._role_sent = True
        return '"role":"assistant",'

    def step(self, item: str | Chunk) -> list[str]:
        if isinstance(item, str):
            delta = f'{{{self._role()}"content":{_json(item)}}}'
        else:
            delta = _json(self._delta(item))
        return [self._prefix + delta + self._suffix]

    def _delta(self, chunk: Chunk) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if not self._role_sent:
            self._role_sent = True
            delta["role"] = "assistant"
        if chunk.content:
            delta["content"] = chunk.content
        if chunk.refusal:
            delta["refusal"] = chunk.refusal
        if chunk.thinking:
            delta["reasoning_content"] = chunk.thinking
        if chunk.audio or chunk.audio_transcript:
            audio: dict[str, str] = {}
            if not self._audio_sent:
                self._audio_sent = True
                audio["id"] = f"audio_{self._id.removeprefix('chatcmpl-')}"
            if chunk.audio:
                audio["data"] = base64.b64encode(chunk.audio).decode("ascii")
            if chunk.audio_transcript:
                audio["transcript"] = chunk.audio_transcript
            delta["audio"] = audio
        if chunk.tool_calls:
            delta["tool_calls"] = [self._tool_call(call) for call in chunk.tool_calls]
        return delta

    def _tool_call(self, call: ToolCallDelta) -> dict[str, Any]:
        wire: dict[str, Any] = {"index": call.index}
        call_id = call.id
        if call.index not in self._tools_seen:
            self._tools_seen.add(call.index)
            # The SDK's final message requires an id on every tool call.
            call_id = call_id or f"call_{self._id.removeprefix('chatcmpl-')}_{call.index}"
        if call_id is not None:
            wire["id"] = call_id
            wire["type"] = "function"
        function: dict[str, str] = {}
        if call.name is not None:
            function["name"] = call.name
        function["arguments"] = call.arguments
        wire["function"] = function
        return wire

    def finish(self, reason: str, usage: Usage) -> list[str]:
        delta = '{"role":"assistant"}' if self._role() else "{}"
        events = [f'{self._prefix}{delta},"logprobs":null,"finish_reason":{_json(reason)}}}]}}\n\n']
        if self._include_usage:
            counts: dict[str, Any] = {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
            }
            prompt_details = {
                name: count
                for name, count in (
                    ("cached_tokens", usage.cache_read_tokens),
                    ("cache_write_tokens", usage.cache_write_tokens),
                )
                if count
            }
            if prompt_details:
                counts["prompt_tokens_details"] = prompt_details
            if usage.reasoning_tokens:
                counts["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
            events.append(f'data: {self._head}"choices":[],"usage":{_json(counts)}}}\n\n')
        events.append("data: [DONE]\n\n")
        return events

    def error(self, error: str | Mapping[str, Any]) -> str:
        return f"data: {_json({'error': _error_object('openai', error)})}\n\n"

    def raw(self, event: Mapping[str, Any]) -> str:
        return f"data: {_json(event)}\n\n"

    def raw_end(self) -> list[str]:
        return ["data: [DONE]\n\n"]


def _event(kind: str, data: object) -> str:
    return f"event: {kind}\ndata: {_json(data)}\n\n"


class _AnthropicEvents:
    """Messages events: message_start, content blocks (start, deltas, stop), message_delta,
    message_stop; a new content block whenever the kind of content changes."""

    malformed = "event: content_block_delta\ndata: {not json\n\n"
    ping = 'event: ping\ndata: {"type": "ping"}\n\n'

    def __init__(self, script: Script, usage: Usage, response_id: str | None) -> None:
        self._id = response_id or f"msg_{uuid.uuid4().hex[:24]}"
        self._model = script.model
        # Anthropic's input_tokens leaves out the cached part that rxllm's includes.
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        self._input: dict[str, int] = {
            "input_tokens": max(usage.input_tokens - read - write, 0),
            **({"cache_read_input_tokens": read} if read else {}),
            **({"cache_creation_input_tokens": write} if write else {}),
        }
        self._block: tuple[str, int] | None = None
        self._index = -1
        self._tools: dict[int, tuple[str, str]] = {}
        self._text_prefix = ""

    def start(self) -> list[str]:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**self._input, "output_tokens": 1},
        }
        return [_event("message_start", {"type": "message_start", "message": message})]

    def _enter(self, block: tuple[str, int], events: list[str], call: ToolCallDelta | None) -> None:
        if self._block == block:
            return
        self._leave(events)
        self._block = block
        self._index += 1
        kind = block[0]
        content: dict[str, Any]
        if kind == "text":
            content = {"type": "text", "text": ""}
            self._text_prefix = (
                'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                f'{self._index},"delta":{{"type":"text_delta","text":'
            )
        elif kind == "thinking":
            content = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            assert call is not None
            seen_id, seen_name = self._tools.get(call.index, ("", ""))
            call_id = call.id or seen_id or f"toolu_{self._id.removeprefix('msg_')}_{call.index}"
            name = call.name or seen_name
            self._tools[call.index] = (call_id, name)
            content = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": content},
            )
        )

    def _leave(self, events: list[str]) -> None:
        if self._block is None:
            return
        if self._block[0] == "thinking":
            events.append(self._delta({"type": "signature_delta", "signature": "c2NyaXB0ZWQ="}))
        events.append(
            _event("content_block_stop", {"type": "content_block_stop", "index": self._index})
        )
        self._block = None

    def _delta(self, delta: dict[str, str]) -> str:
        return _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": self._index, "delta": delta},
        )

    def _text(self, text: str, events: list[str]) -> None:
        self._enter(("text", 0), events, None)
        events.append(f"{self._text_prefix}{_json(text)}}}}}\n\n")

    def step(self, item: str | Chunk) -> list[str]:
        events: list[str] = []
        if isinstance(item, str):
            self._text(item, events)
            return events
        if item.thinking:
            self._enter(("thinking", 0), events, None)
            events.append(self._delta({"type": "thinking_delta", "thinking": item.thinking}))
        # Anthropic has no refusal deltas (a refusal is text with stop_reason "refusal") and
        # no audio output: refusal text is streamed as text, audio is left out.
        if item.content or item.refusal:
            self._text(item.content + item.refusal, events)
        for call in item.tool_calls:
            self._enter(("tool_use", call.index), events, call)
            if call.arguments:
                events.append(
                    self._delta({"type": "input_json_delta", "partial_json": call.arguments})
                )
        return events

    def finish(self, reason: str, usage: Usage) -> list[str]:
        events: list[str] = []
        self._leave(events)
        stop_reason = _STOP_REASONS.get(reason, reason)
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        events.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": delta,
                    "usage": {
                        "output_tokens": usage.output_tokens,
                        **(
                            {"output_tokens_details": {"thinking_tokens": usage.reasoning_tokens}}
                            if usage.reasoning_tokens
                            else {}
                        ),
                    },
                },
            )
        )
        events.append(_event("message_stop", {"type": "message_stop"}))
        return events

    def error(self, error: str | Mapping[str, Any]) -> str:
        return _event("error", {"type": "error", "error": _error_object("anthropic", error)})

    def raw(self, event: Mapping[str, Any]) -> str:
        kind = event.get("type")
        if isinstance(kind, str):
            return _event(kind, event)
        return f"data: {_json(event)}\n\n"

    def raw_end(self) -> list[str]:
        return []


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key in ("content", "text", "thinking"):
            yield from _texts(value.get(key))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for item in value:
            yield from _texts(item)


def _usage(script: Script, body: Mapping[str, Any], chunks: int) -> Usage:
    usage = script.usage
    if usage is None:
        asked = [body.get(key) for key in ("system", "messages", "instructions", "input")]
        words = sum(len(_WORD.findall(text)) for text in _texts(asked))
        usage = Usage(input_tokens=max(words, 1), output_tokens=chunks)
    if not usage.total_tokens:
        usage = usage.model_copy(update={"total_tokens": usage.input_tokens + usage.output_tokens})
    return usage


def _interruption(script: Script, chunks: int) -> tuple[int, str] | None:
    cuts = [
        (after, kind)
        for after, kind in (
            (script.malformed_after, "malformed"),
            (script.drop_after, "drop"),
            (script.hang_after, "hang"),
        )
        if after is not None and after <= chunks
    ]
    return min(cuts, key=lambda cut: cut[0]) if cuts else None


def _check_anthropic(items: Sequence[str | Chunk]) -> None:
    # A tool_use block is closed for good when the next block starts, so the fragments of
    # one call must be contiguous, as the real API sends them.
    check_contiguous_calls(
        items,
        "Anthropic",
        "Anthropic streams each call as one content block, so script all of a call's "
        "fragments before the next",
    )


def plan(
    script: Script,
    protocol: Protocol,
    body: Mapping[str, Any],
    *,
    response_id: str | None = None,
) -> Plan:
    """Encode `script` as the response to a request of `protocol` with JSON `body`.

    Raises `ValueError` for a script the protocol cannot express.

    >>> p = plan(Script("Hi", drop_after=0), "anthropic", {"messages": []})
    >>> [frame.events for frame in p.frames], p.ending
    ([1], 'drop')
    """
    items: Sequence[Any]
    step: Callable[[Any], list[str]]
    tail: Callable[[], list[str]]
    usage = _usage(script, body, len(script.content))
    events: _OpenAIEvents | _AnthropicEvents | ResponsesEncoder
    if protocol == "openai":
        events = _OpenAIEvents(script, body, response_id or script.response_id)
    elif protocol == "openai-responses":
        if script.raw_events is None:
            check_responses(script.content)
        events = ResponsesEncoder(script, body, response_id or script.response_id)
    else:
        if script.raw_events is None:
            _check_anthropic(script.content)
        events = _AnthropicEvents(script, usage, response_id or script.response_id)

    raw = script.raw_events
    if raw is None:
        items, step, head = script.content, events.step, events.start()
        finish = script.finish_reason

        def tail() -> list[str]:
            return events.finish(finish, usage)

    elif isinstance(raw, bytes) or (raw and isinstance(raw[0], bytes)):
        # the whole body, cut into its events; or the pieces given, each written as cut
        items, head = (_SSE_EVENT.findall(raw) if isinstance(raw, bytes) else raw), []

        def step(piece: bytes) -> list[str]:
            return [piece.decode("utf-8", "surrogateescape")]

        def tail() -> list[str]:
            return []

    else:
        items, head, tail = raw, [], events.raw_end

        def step(event: Mapping[str, Any]) -> list[str]:
            return [events.raw(event)]

    cut = _interruption(script, len(items))
    if cut is not None:
        after, kind = cut
        malformed = [events.malformed]
        extra = (lambda: malformed) if kind == "malformed" else None
        ending: Ending = "hang" if kind == "hang" else "drop" if kind == "drop" else "end"
        frames = _frames(script, head, items[:after], step, extra=extra, tail=None)
        return Plan(frames, ending, normal=False)
    error_event = script.error_event
    if error_event is not None:
        # encoded when it is due: a Responses failure carries the output streamed before it
        def error() -> list[str]:
            return [events.error(error_event)]

        return Plan(_frames(script, head, items, step, extra=error, tail=None), "end", False)
    return Plan(_frames(script, head, items, step, extra=None, tail=tail), "end", normal=True)


def _encode(events: list[str]) -> bytes:
    return "".join(events).encode("utf-8", "surrogateescape")


def _frames(
    script: Script,
    head: list[str],
    items: Sequence[Any],
    step: Callable[[Any], list[str]],
    *,
    extra: Callable[[], list[str]] | None,
    tail: Callable[[], list[str]] | None,
) -> Iterator[Frame]:
    wait = script.first_delay
    if head:
        yield Frame(_encode(head), 0, len(head), wait)
        wait = 0.0
    sent_any = bool(head)
    for item in items:
        events = step(item)
        yield Frame(_encode(events), 1, len(events), wait)
        wait = script.delay
        sent_any = True
    if extra is not None:
        # An error or a malformed event stands in for the next chunk, so it comes after
        # the same pause a chunk would.
        last = extra()
        yield Frame(_encode(last), 0, len(last), wait)
    elif tail is not None:
        events = tail()
        yield Frame(_encode(events), 0, len(events), 0.0 if sent_any else wait)


def ping(protocol: Protocol) -> bytes:
    """The keep-alive of `protocol`: an SSE comment (OpenAI), a ping event (Anthropic), a
    keepalive event (Responses).

    >>> ping("openai")
    b': keep-alive\\n\\n'
    """
    if protocol == "openai-responses":
        return ResponsesEncoder.ping.encode()
    events = _OpenAIEvents if protocol == "openai" else _AnthropicEvents
    return events.ping.encode()


def reason_phrase(status: int) -> str:
    """The HTTP reason phrase of `status` (529 is Anthropic's "Overloaded").

    >>> reason_phrase(429)
    'Too Many Requests'
    """
    if status == 529:
        return "Overloaded"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_response(
    protocol: Protocol | None, error_type: str, message: str, code: str | None = None
) -> bytes:
    """A JSON error body in the provider's format (both shapes at once when unknown).

    >>> error_response("anthropic", "not_found_error", "no such path")
    b'{"type":"error","error":{"type":"not_found_error","message":"no such path"}}'
    """
    openai = {"message": message, "type": error_type, "param": None, "code": code}
    if protocol in ("openai", "openai-responses"):
        return _json({"error": openai}).encode()
    if protocol == "anthropic":
        return _json({"type": "error", "error": {"type": error_type, "message": message}}).encode()
    return _json({"type": "error", "error": openai}).encode()


def status_response(script: Script, protocol: Protocol) -> bytes:
    """The body of the HTTP error `script.status`: `script.error_body`, else the provider's.

    >>> status_response(Script(status=529), "anthropic")
    b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    """
    status = script.status or 500
    if script.error_body is not None:
        body = script.error_body
        if isinstance(body, bytes):
            return body
        return body.encode() if isinstance(body, str) else _json(body).encode()
    if protocol != "anthropic":
        fallback = _OPENAI_STATUS[500] if status >= 500 else _OPENAI_STATUS[400]
        error_type, code, message = _OPENAI_STATUS.get(status, fallback)
        return error_response("openai", error_type, message, code)
    fallback_ = _ANTHROPIC_STATUS[500] if status >= 500 else _ANTHROPIC_STATUS[400]
    error_type, message = _ANTHROPIC_STATUS.get(status, fallback_)
    return error_response("anthropic", error_type, message)
