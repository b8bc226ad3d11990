"""OpenAI Responses API streaming (`POST /v1/responses`), provider name "openai".

The official SDK sends the request (`client.responses.with_streaming_response.create(
stream=True, ...)`: auth, retries, status errors); rxllm reads the raw body through the
shared fast path (`providers/http_call.py`); `ResponsesCodec` is the codec of one call
(`rxllm.codec`) and its `ResponsesEvents` maps each streamed event to a
`Chunk`:

- `response.output_text.delta` -> `content` (the hot path: as cheap as a chat text delta);
- `response.reasoning_summary_text.delta` and `response.reasoning_text.delta` -> `thinking`,
  consecutive parts (summary parts, reasoning items) separated by a blank line ("\\n\\n");
- `function_call` items -> `tool_calls`: `id` is the item's `call_id`, `index` the call's
  position among the function calls of this response (not its `output_index`), the name on
  the call's first delta, then the `response.function_call_arguments.delta` fragments;
- `response.refusal.delta` -> `refusal`;
- `response.completed` / `response.incomplete` -> `usage` and `finish_reason` ("tool_calls"
  exactly when there are function calls, else "stop"; "length" / "content_filter" for an
  incomplete response cut at `max_output_tokens` / by the content filter, else its own
  reason);
- `error` events and `response.failed` -> `StreamError` (a `ServerStreamError` /
  `RateLimitStreamError`, retryable, for the codes `server_error` / `rate_limit_exceeded`).

Text, thinking, refusals and arguments are delivered once: from the deltas, and from a
`.done` event or an `output_item.done` item only when that part had no deltas (servers that
send a part whole); from the final response's `output` only when no item events came at all
(servers that send the answer only there).

**Every event is one chunk** (only the `keepalive` heartbeat is not: it must not count as
activity for `stall_timeout`). Events rxllm does not model — the lifecycle events, web and
file search, code interpreter, MCP, image generation, custom tools, annotations, and any
event type added later — are empty chunks whose `raw` is the SDK's typed event, so a
subscriber can act on them, and `Response.raw` can be rebuilt from the chunks alone.

`Chunk.raw` is the SDK's `ResponseStreamEvent`, constructed from the event's bytes when
read. `Response.raw` replays those events through the SDK's own accumulator
(`openai.lib.streaming.responses.ResponseStreamState`, what `client.responses.stream()`
uses): after `response.completed` it is the SDK's final `ParsedResponse` (what
`get_final_response()` returns; `output_parsed` filled when `response_format` was a pydantic
model), after `response.incomplete` / `response.failed` that event's `Response` (its
`output` recovered by the SDK when the event omits it); for a stream cut short, the
accumulator's snapshot so far (a `ParsedResponseSnapshot`, `status` "in_progress"), or
None when not even `response.created` arrived.

**Continuing a conversation (tool loops, `retry(resume=True)`)**: rxllm sends the earlier
turns back as input items (`input=[...]`: messages, `function_call` and
`function_call_output` items), never `previous_response_id`. Why: input items are
stateless, so they work with `store=False` and zero-data-retention organizations, where a
response cannot be referenced later; a failed or cut-short response (what `retry` resumes)
was never stored complete and cannot be continued by id at all; the next call may go to
another model, project or provider (`fallback`), which only a self-contained request
survives; and `Request.messages` stays the one description of a conversation every operator
and the chat path share. The cost is sending the context again, which OpenAI's prompt cache
discounts. `previous_response_id` still works as a parameter of your own
(`llm.stream(..., previous_response_id=answer.id)`). `response_input_items(response)` gives an
answer's own output items (reasoning with its encrypted content, messages, function calls,
server tool calls) for the next call's input, which keeps a reasoning model's reasoning
across tool calls; `tool_output_items(results)` the `function_call_output` items.

>>> events = ResponsesEvents("openai")
>>> chunk = events.map(None, {"type": "response.output_text.delta", "delta": "Hi",
...     "output_index": 0, "content_index": 0, "item_id": "msg_1", "sequence_number": 3})
>>> chunk.content, chunk.provider
('Hi', 'openai')

Why ~680 lines in one module: the Responses API's event mapping (many event families, each
delivered once) and its native objects; the request side is `responses_input.py`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import openai
from openai.types.responses import ResponseStreamEvent

from rxllm import errors
from rxllm.codec import StreamCodec
from rxllm.models import (
    Chunk,
    Response,
    ToolCallDelta,
    ToolResult,
    Usage,
    text_chunk_maker,
)
from rxllm.parts import check_parts
from rxllm.providers import _sdk_private
from rxllm.providers import openai_chat as _chat
from rxllm.providers.http_call import SDKCodec, parse_json
from rxllm.providers.http_errors import sdk_stream_failure
from rxllm.providers.responses_input import responses_arguments
from rxllm.request import Request, with_turn

if TYPE_CHECKING:
    from rxllm.messages import MessageFormat

__all__ = [
    "INCOMPLETE_REASONS",
    "ResponsesCodec",
    "ResponsesEvents",
    "responses_event",
    "responses_raw",
]

_log = logging.getLogger("rxllm.openai")

INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
"""`response.incomplete` reasons in rxllm's words; any other is kept as OpenAI says it."""

# --- events -> chunks --------------------------------------------------------------------


class _Call:
    """One function call of the response: its ordinal and what was delivered of it."""

    __slots__ = ("announced", "has_arguments", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.announced = False  # id and name delivered
        self.has_arguments = False  # some arguments delivered


_Key = tuple[str, Any, Any]
"""A part of the output: (kind, the item's output_index or id, the part's index)."""


class ResponsesEvents:
    """Maps Responses stream events (parsed JSON) to `Chunk`s. Pure; one per call.

    Same interface as `OpenAIEvents`: `map(event, data, payload)` returns the chunk of one
    event (None only for a `keepalive`) or raises `StreamError` for an `error` event;
    `done` is True after `response.completed` / `response.incomplete` / `response.failed`;
    `end()` raises what the body's end means: the `StreamError` of a `response.failed`
    (whose chunk, carrying the failed response as `raw`, was delivered first, so the
    error's `partial.raw` is the SDK's failed `Response`), or `StreamInterrupted` when the
    body ended before a terminal event.

    An output item is known by its `output_index` and by its id (`item_id` in the delta
    and `.done` events): either one matches, so a server that leaves one out is still read
    without repeats.
    """

    __slots__ = (
        "_call_count",
        "_calls",
        "_codec",
        "_delivered",
        "_failure",
        "_items",
        "_name",
        "_text",
        "_text_content",
        "_text_output",
        "_thinking_key",
        "_thought",
        "done",
        "id",
        "model",
    )

    def __init__(self, name: str = "openai", codec: StreamCodec | None = None) -> None:
        self._name = name  # the provider's name on every chunk and error
        self._codec = codec
        self._text = text_chunk_maker(name, codec)
        # The part the last text delta belonged to: a delta of another part is registered
        # as delivered (the hot path compares two small ints, nothing else).
        self._text_output: Any = _UNSET
        self._text_content: Any = _UNSET
        self._delivered: set[_Key] = set()  # the parts some text was delivered of
        self._calls: dict[Any, _Call] = {}  # a call's output_index and item id -> the call
        self._call_count = 0
        self._thinking_key: _Key | None = None
        self._thought = False
        self._failure: errors.StreamError | None = None
        self._items = False  # whether any event of an output item arrived
        self.done = False
        self.model: str | None = None
        self.id: str | None = None

    def map(self, event: str | None, data: Any, payload: bytes | None = None) -> Chunk | None:
        """The chunk for one event; raises `StreamError` for an `error` event."""
        if type(data) is not dict:
            if data == b"[DONE]":  # not sent by OpenAI; some proxies end with it
                self.done = True
            return None
        kind = data.get("type") or event
        if kind == "response.output_text.delta" and payload is not None:
            delta = data.get("delta")
            if type(delta) is str:  # the bulk of a stream
                if (
                    data.get("output_index") is not self._text_output
                    or data.get("content_index") is not self._text_content
                ):
                    self._text_part(data)
                return self._text(delta, self.model, self.id, payload)
        content = thinking = refusal = ""
        calls: tuple[ToolCallDelta, ...] = ()
        finish_reason = None
        usage = None
        output = data.get("output_index")
        item_id = data.get("item_id")
        if output is not None or item_id is not None:
            self._items = True
        if kind == "response.output_text.delta":
            delta = data.get("delta")
            if type(delta) is str:
                self._text_part(data)
                content = delta
        elif kind == "response.reasoning_summary_text.delta":
            keys = _keys("summary", output, item_id, data.get("summary_index"))
            thinking = self._thinking(keys, data.get("delta"))
        elif kind == "response.reasoning_text.delta":
            keys = _keys("reasoning", output, item_id, data.get("content_index"))
            thinking = self._thinking(keys, data.get("delta"))
        elif kind == "response.refusal.delta":
            refusal = _text_of(data.get("delta"))
            if refusal:
                self._mark(_keys("refusal", output, item_id, data.get("content_index")))
        elif kind == "response.function_call_arguments.delta":
            fragment = _text_of(data.get("delta"))
            call = self._call(output, item_id)
            if fragment:
                call.has_arguments = True
                calls = (ToolCallDelta(index=call.index, arguments=fragment),)
        elif kind == "response.output_text.done":
            keys = _keys("text", output, item_id, data.get("content_index"))
            content = self._once(keys, data.get("text"))
        elif kind == "response.refusal.done":
            keys = _keys("refusal", output, item_id, data.get("content_index"))
            refusal = self._once(keys, data.get("refusal"))
        elif kind == "response.reasoning_summary_text.done":
            keys = _keys("summary", output, item_id, data.get("summary_index"))
            thinking = self._thinking_once(keys, data.get("text"))
        elif kind == "response.reasoning_text.done":
            keys = _keys("reasoning", output, item_id, data.get("content_index"))
            thinking = self._thinking_once(keys, data.get("text"))
        elif kind == "response.function_call_arguments.done":
            known = self._known_call(output, item_id)
            arguments = _text_of(data.get("arguments"))
            if known is not None and not known.has_arguments and arguments:
                known.has_arguments = True  # arguments sent whole: delivered here, once
                calls = (ToolCallDelta(index=known.index, arguments=arguments),)
        elif kind == "response.output_item.added":
            item = data.get("item")
            if type(item) is dict and item.get("type") == "function_call":
                delta = self._function_call(output, item, arguments=False)
                calls = (delta,) if delta is not None else ()
        elif kind == "response.output_item.done":
            item = data.get("item")
            if type(item) is dict:
                content, thinking, refusal, calls = self._item(output, item)
        elif kind in ("response.created", "response.in_progress", "response.queued"):
            self._lifecycle(data.get("response"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = data.get("response")
            response = response if type(response) is dict else {}
            self._lifecycle(response)
            if not self._items:  # a server that sends the answer only here
                content, thinking, refusal, calls = self._final_output(response.get("output"))
            reported = response.get("usage")
            usage = _usage(reported) if type(reported) is dict else None
            self.done = True
            if kind == "response.completed":
                finish_reason = "tool_calls" if self._call_count else "stop"
            elif kind == "response.incomplete":
                details = response.get("incomplete_details")
                reason = details.get("reason") if type(details) is dict else None
                finish_reason = INCOMPLETE_REASONS.get(reason, reason) if reason else "incomplete"
            else:
                self._failure = _failed(self._name, response)
        elif kind == "error":
            raise errors.stream_error_event(self._name, _error_body(data))
        elif kind == "keepalive":
            return None  # a heartbeat, not activity of the model
        return Chunk.unchecked(
            content,
            thinking,
            refusal,
            b"",
            "",
            calls,
            finish_reason,
            usage,
            self.model,
            self.id,
            self._name,
            None if payload is not None else lambda: _construct(data),
            payload,
            self._codec,
        )

    def end(self) -> None:
        """The body ended: raise the `StreamError` of a `response.failed`, or
        `StreamInterrupted` when no terminal event arrived."""
        if self._failure is not None:
            raise self._failure
        if not self.done:
            raise errors.StreamInterrupted(
                f"{self._name}: the Responses stream ended before response.completed",
                provider=self._name,
            )

    # --- the parts ---------------------------------------------------------------------------

    def _text_part(self, data: dict[str, Any]) -> None:
        self._items = True
        output = self._text_output = data.get("output_index")
        part = self._text_content = data.get("content_index")
        self._mark(_keys("text", output, data.get("item_id"), part))

    def _mark(self, keys: tuple[_Key, ...]) -> None:
        self._delivered.update(keys)

    def _once(self, keys: tuple[_Key, ...], value: Any) -> str:
        """The text of a part sent whole, unless its deltas delivered it already."""
        text = _text_of(value)
        if not text or any(key in self._delivered for key in keys):
            return ""
        self._mark(keys)
        return text

    def _thinking(self, keys: tuple[_Key, ...], value: Any) -> str:
        """A thinking delta; the first of a new part is preceded by a blank line."""
        delta = _text_of(value)
        if not delta:
            return ""
        key = keys[0] if keys else None
        if key is not None and key == self._thinking_key:
            return delta
        self._thinking_key = key
        self._mark(keys)
        if self._thought:
            return "\n\n" + delta
        self._thought = True
        return delta

    def _thinking_once(self, keys: tuple[_Key, ...], value: Any) -> str:
        text = _text_of(value)
        if not text or any(key in self._delivered for key in keys):
            return ""
        return self._thinking(keys, text)

    def _known_call(self, output: Any, item_id: Any) -> _Call | None:
        for key in (output, item_id):
            if key is not None and key in self._calls:
                return self._calls[key]
        return None

    def _call(self, output: Any, item_id: Any) -> _Call:
        """The function call of this item (known by its output_index or its id), or a new
        one, numbered among the calls."""
        call = self._known_call(output, item_id)
        if call is None:
            call = _Call(self._call_count)
            self._call_count += 1
        for key in (output, item_id):
            if key is not None:
                self._calls[key] = call
        return call

    def _function_call(
        self, output: Any, item: dict[str, Any], *, arguments: bool
    ) -> ToolCallDelta | None:
        """The delta a `function_call` item adds: its id and name the first time, and (for a
        finished item) arguments no delta delivered."""
        call = self._call(output, item.get("id"))
        announce = not call.announced
        call.announced = True
        text = _text_of(item.get("arguments")) if arguments and not call.has_arguments else ""
        if text:
            call.has_arguments = True
        if not (announce or text):
            return None
        return ToolCallDelta(
            index=call.index,
            id=(item.get("call_id") or None) if announce else None,
            name=(item.get("name") or None) if announce else None,
            arguments=text,
        )

    def _item(
        self, output: Any, item: dict[str, Any]
    ) -> tuple[str, str, str, tuple[ToolCallDelta, ...]]:
        """What a finished output item holds that no delta delivered."""
        kind = item.get("type")
        item_id = item.get("id")
        content = thinking = refusal = ""
        calls: tuple[ToolCallDelta, ...] = ()
        if kind == "message":
            for index, part in _parts(item.get("content")):
                part_kind = part.get("type")
                if part_kind == "output_text":
                    keys = _keys("text", output, item_id, index)
                    content += self._once(keys, part.get("text"))
                elif part_kind == "refusal":
                    keys = _keys("refusal", output, item_id, index)
                    refusal += self._once(keys, part.get("refusal"))
        elif kind == "reasoning":
            for index, part in _parts(item.get("summary")):
                keys = _keys("summary", output, item_id, index)
                thinking += self._thinking_once(keys, part.get("text"))
            for index, part in _parts(item.get("content")):
                if part.get("type") == "reasoning_text":
                    keys = _keys("reasoning", output, item_id, index)
                    thinking += self._thinking_once(keys, part.get("text"))
        elif kind == "function_call":
            delta = self._function_call(output, item, arguments=True)
            calls = (delta,) if delta is not None else ()
        return content, thinking, refusal, calls

    def _final_output(self, output: Any) -> tuple[str, str, str, tuple[ToolCallDelta, ...]]:
        """What the final response's `output` holds, for a stream that sent no item events
        (a server that sends the answer only in its last event)."""
        content = thinking = refusal = ""
        calls: list[ToolCallDelta] = []
        if type(output) is list:
            for index, item in enumerate(output):
                if type(item) is dict:
                    text, thought, refused, deltas = self._item(index, item)
                    content += text
                    thinking += thought
                    refusal += refused
                    calls.extend(deltas)
        return content, thinking, refusal, tuple(calls)

    def _lifecycle(self, response: Any) -> None:
        if type(response) is dict:
            self.model = response.get("model") or self.model
            self.id = response.get("id") or self.id


def _keys(kind: str, output: Any, item_id: Any, part: Any) -> tuple[_Key, ...]:
    """The keys of one part: by the item's output_index and by its id (those it has)."""
    index = part if part is not None else 0
    return tuple((kind, known, index) for known in (output, item_id) if known is not None)


class _Unset:
    """A marker no event's index is (so the first text delta registers its part)."""


_UNSET = _Unset()


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _parts(value: Any) -> Iterable[tuple[int, dict[str, Any]]]:
    if type(value) is not list:
        return ()
    return ((i, part) for i, part in enumerate(value) if type(part) is dict)


def _usage(usage: dict[str, Any]) -> Usage:
    """rxllm's `Usage` of a Responses `usage` object."""
    prompt = usage.get("input_tokens") or 0
    completion = usage.get("output_tokens") or 0
    prompt_details = usage.get("input_tokens_details")
    completion_details = usage.get("output_tokens_details")
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=usage.get("total_tokens") or prompt + completion,
        cache_read_tokens=_chat._count(prompt_details, "cached_tokens"),  # pyright: ignore[reportPrivateUsage]
        cache_write_tokens=_chat._count(prompt_details, "cache_write_tokens"),  # pyright: ignore[reportPrivateUsage]
        reasoning_tokens=_chat._count(completion_details, "reasoning_tokens"),  # pyright: ignore[reportPrivateUsage]
    )


def _error_body(data: dict[str, Any]) -> Any:
    """The error object of an `error` event: documented with `code`, `message`, `param` at
    the top level; sent by the API (and proxies) also nested as `{"error": {...}}`."""
    inner = data.get("error")
    if isinstance(inner, dict | str) and inner:
        return inner
    return {k: data[k] for k in ("code", "message", "param") if k in data}


def _failed(name: str, response: dict[str, Any]) -> errors.StreamError:
    """The `StreamError` of a `response.failed`: its `error` (`code`, `message`)."""
    error = response.get("error")
    if not (type(error) is dict and error):
        error = {"code": None, "message": f"the response failed (status {response.get('status')})"}
    return errors.stream_error_event(name, error)


def _construct(data: dict[str, Any]) -> Any:
    """The SDK's typed event for one event's JSON, as its own stream builds it."""
    return _sdk_private.openai_construct(ResponseStreamEvent, data)


def responses_event(payload: bytes) -> Any:
    """The SDK's `ResponseStreamEvent` built from one event's JSON bytes (what `Chunk.raw`
    is for this provider's chunks).

    >>> responses_event(b'{"type": "keepalive", "sequence_number": 9}').type
    'keepalive'
    >>> type(responses_event(b'{"type": "error", "message": "x", "sequence_number": 1}')).__name__
    'ResponseErrorEvent'
    """
    return _construct(parse_json(payload))


# --- Response.raw --------------------------------------------------------------------------

_LIFECYCLE_END = frozenset({"response.completed", "response.incomplete", "response.failed"})


def responses_raw(events: Sequence[Any], response: Response, context: Any = None) -> Any:
    """`Response.raw` for the Responses API: the events replayed through the SDK's own
    `ResponseStreamState`, given the request's tools and a pydantic `response_format`.

    After `response.completed`: the SDK's final `ParsedResponse` (as `get_final_response()`);
    after `response.incomplete` / `response.failed`: that event's `Response` (its output
    filled in by the SDK when the event omitted it); a stream cut short: the accumulator's
    snapshot so far; None without a `response.created`. Events of several responses (a
    resumed retry) give the last one's. Where the SDK would raise (text that is not the
    format's JSON), the events are replayed without the format: no `output_parsed`.
    """
    run = [event for event in events if isinstance(getattr(event, "type", None), str)]
    starts = [i for i, event in enumerate(run) if event.type == "response.created"]
    if starts:
        run = run[starts[-1] :]
    if not run:
        return None
    options = context if isinstance(context, dict) else {}
    try:
        return _replay(run, options)
    except Exception:
        if not options:
            raise
        return _replay(run, {})


def _replay(events: list[Any], options: dict[str, Any]) -> Any:
    text_format = options.get("text_format", openai.omit)
    state: Any = _sdk_private.openai_responses_stream_state(
        input_tools=options.get("tools", openai.omit), text_format=text_format
    )
    final: Any = None
    for event in events:
        try:
            fired = state.handle_event(event)
        except Exception as exc:
            if options:
                raise  # first try again without the request's tools and format
            # A shape the SDK's accumulator refuses (no response.created first, an index it
            # never saw): that event is left out; the normalized fields have all of it.
            _log.debug("Response.raw: the SDK's accumulator refused an event: %s", exc)
            if event.type in _LIFECYCLE_END:
                final = event
            continue
        for out in fired:
            if getattr(out, "type", None) in _LIFECYCLE_END:
                final = out
    if final is not None:
        return final.response
    return _sdk_private.openai_responses_snapshot(state)


# --- the codec --------------------------------------------------------------------------------


class ResponsesCodec(SDKCodec):
    """The codec of one Responses API call (`rxllm.openai(model, api="responses")`).

    The same SDK clients, keys and `base_url` as Chat Completions (`OpenAIProvider`); what
    differs is the request (`responses_arguments`), the endpoint and the event mapper
    (`ResponsesEvents`). `retry(resume=True)` continues a cut-short answer as on Chat
    Completions: the text so far as an assistant message plus an instruction to continue,
    sent as input items; a tool loop's next call sends the answer and the results as
    input items (`function_call`, `function_call_output`).

    >>> import rxllm
    >>> llm = rxllm.openai("gpt-5-mini", api="responses", api_key="sk-...")
    >>> llm.provider, llm.model
    ('openai', 'gpt-5-mini')
    """

    message_format: MessageFormat = "openai"
    sdk_stream = (openai.Stream, ResponseStreamEvent)
    """The SDK's own stream over these events (what it raises for an error event)."""

    def __init__(
        self,
        request: Request,
        *,
        model: str,
        name: str = "openai",
        secrets: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        super().__init__(request, model=model, name=name, secrets=secrets)
        self._kwargs = responses_arguments(request, model)
        # what the SDK's responses.stream() helper is given, for Response.raw to be what
        # it ends with (`output_parsed`)
        self._context: dict[str, Any] = {}
        if "tools" in self._kwargs:
            self._context["tools"] = self._kwargs["tools"]
        if inspect.isclass(request.response_format):
            self._context["text_format"] = request.response_format

    @staticmethod
    def check(request: Request) -> None:
        """Reject what the Responses API does not take, before any request."""
        check_parts(request.messages, "responses", "openai")
        responses_arguments(request, "")

    def arguments(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `responses.create` (without `stream`)."""
        return dict(self._kwargs)

    def open_stream(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """`responses.with_streaming_response.create(stream=True, ...)`."""
        return client.responses.with_streaming_response.create(stream=True, **kwargs)

    def events(self) -> ResponsesEvents:
        """A fresh event mapper for this call."""
        return ResponsesEvents(self._name, self)

    def raw_event(self, data: bytes) -> Any:
        """The SDK's `ResponseStreamEvent` of one event's JSON."""
        return responses_event(data)

    def raw_response(self, events: Sequence[Any], response: Response) -> Any:
        """What the SDK's `responses.stream()` helper ends with (`responses_raw`); the
        error of a `response.failed` is scrubbed of the call's credentials, as every error
        message is (a server may echo the key there)."""
        raw = responses_raw(events, response, self._context)
        failure = getattr(raw, "error", None)
        message = getattr(failure, "message", None)
        if isinstance(message, str):
            with contextlib.suppress(Exception):  # a model that refuses the assignment
                failure.message = errors.scrub(message, *self.secrets())  # type: ignore[union-attr]
        return raw

    def error_cause(
        self, error: errors.StreamError, client: Any, http: httpx2.Response
    ) -> BaseException | None:
        """What the SDK's own stream raises for this event; for the ones it yields as data
        (a documented `error` event, `response.failed`), the `openai.APIError` its stream
        builds for an error in the stream."""
        if error.event is not None:
            raised = sdk_stream_failure(*self.sdk_stream, client, http, error.event)
            if raised is not None:
                return raised
        body = error.body
        message = body.get("message") if isinstance(body, dict) else body
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        return openai.APIError(message=message, request=http.request, body=body)

    def continuation(self, request: Request, text: str) -> Request:
        """The request that continues an answer after `text` (as on Chat Completions)."""
        return _chat.continue_after(request, text)

    def follow_up(
        self, request: Request, answer: Response, results: Sequence[ToolResult]
    ) -> Request:
        """The next call of a tool loop: the answer and its tools' results appended (sent
        as `function_call` / `function_call_output` items by `responses_input`)."""
        return with_turn(request, answer, results, "openai")
