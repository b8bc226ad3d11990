"""Anthropic Messages, the protocol of Anthropic's API (and of Bedrock and Vertex AI).

`MessagesCodec` is the codec of one call (`rxllm.codec`): `AnthropicEvents` maps each
event (`message_start`, `content_block_*`, `message_delta`, ...) to a `Chunk`: text,
thinking, tool_use arguments via `input_json_delta` (indexed by the call's ordinal, not the
content-block index), usage combined from `message_start` (input) and `message_delta`
(output), stop reasons normalized. `Chunk.raw` is the SDK's `RawMessageStreamEvent`,
`Response.raw` what the SDK's `accumulate_event` builds. A retry resumes with the delivered
text as an assistant prefill.

Why ~430 lines in one module: one wire protocol's codec — request, event mapping, the native
objects — as CONTRIBUTING.md asks of a codec.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
from anthropic.types import RawContentBlockStopEvent, RawMessageStreamEvent

from rxllm import errors
from rxllm.codec import StreamCodec
from rxllm.models import Chunk, Response, ToolCallDelta, ToolResult, Usage, text_chunk_maker
from rxllm.parts import check_parts, wire_message
from rxllm.providers import _sdk_private
from rxllm.providers.http_call import SDKCodec, parse_json
from rxllm.request import Request, check_sdk_params, with_turn
from rxllm.tools import tool_schema

if TYPE_CHECKING:
    from rxllm.messages import MessageFormat

_log = logging.getLogger("rxllm.anthropic")

__all__ = ["DEFAULT_MAX_TOKENS", "STOP_REASONS", "AnthropicEvents", "MessagesCodec"]

DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic stop reasons in rxllm's words; any other is kept as Anthropic says it."""

_CREATE_PARAMS = frozenset(
    inspect.signature(anthropic.resources.messages.Messages.create).parameters
) - {"self", "messages", "model", "stream", "system"}
_INPUT_COUNTS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
"""The prompt's token counts in Anthropic's usage: rxllm's `input_tokens` is their sum."""
_SAMPLING = frozenset({"temperature", "top_p", "top_k"})
"""The Messages API's sampling parameters. SDKs that no longer list them (anthropic 2.x)
get them in `extra_body`, so `rxllm.anthropic(model, temperature=0)` sends them as before;
a model that refuses them answers with `BadRequestError`."""


def _construct_event(data: dict[str, Any]) -> Any:
    return _sdk_private.anthropic_construct_event(data)


class MessagesCodec(SDKCodec):
    """The codec of one Messages call (see the module docstring)."""

    message_format: MessageFormat = "anthropic"
    sdk_stream: tuple[Any, Any] = (anthropic.Stream, RawMessageStreamEvent)
    """The SDK's own stream over these events (what it raises for an error event)."""

    def __init__(
        self,
        request: Request,
        *,
        model: str,
        name: str = "anthropic",
        secrets: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        super().__init__(request, model=model, name=name, secrets=secrets)
        # a pydantic response format, for Response.raw's parsed_output
        self._output_format = (
            request.response_format if inspect.isclass(request.response_format) else None
        )

    def events(self) -> AnthropicEvents:
        """A fresh event mapper for this call."""
        return AnthropicEvents(self._name, self)

    def raw_event(self, data: bytes) -> Any:
        """The SDK's `RawMessageStreamEvent` of one event's JSON."""
        return _construct_event(parse_json(data))

    def text_event(self, index: int, text: str) -> Any:
        """The SDK's event of a text delta that said nothing but its text (what its bytes
        gave: `{"type": "content_block_delta", "index": ..., "delta": {"type":
        "text_delta", "text": ...}}`), rebuilt without keeping them."""
        return _construct_event(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": text},
            }
        )

    def raw_response(self, events: Sequence[Any], response: Response) -> Any:
        """The `Message` the SDK's `messages.stream()` helper ends with (`_response_raw`)."""
        return _response_raw(events, self._output_format)

    def open_stream(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """`messages.with_streaming_response.create(stream=True, ...)`."""
        return client.messages.with_streaming_response.create(stream=True, **kwargs)

    def follow_up(
        self, request: Request, answer: Response, results: Sequence[ToolResult]
    ) -> Request:
        """The next call of a tool loop: the answer's blocks (a thinking block with its
        signature) and one user message with its tools' results."""
        return with_turn(request, answer, results, "anthropic")

    @staticmethod
    def check(request: Request) -> None:
        """Reject what the Messages API cannot take, before any request."""
        check_sdk_params(request, _CREATE_PARAMS | _SAMPLING, "anthropic messages")
        temperature = request.params.get("temperature")
        if isinstance(temperature, int | float) and temperature > 1:
            raise ValueError(
                f"anthropic's temperature goes from 0 to 1, not {temperature}: OpenAI's goes to 2"
            )
        for position, message in enumerate(request.messages):
            if message["role"] in ("tool", "function"):
                raise ValueError(
                    f"messages[{position}]: Anthropic takes tool results as a 'user' message "
                    "with content [{'type': 'tool_result', 'tool_use_id': ..., 'content': ...}]"
                )
        if request.audio is not None:
            raise ValueError("anthropic does not generate audio: remove audio=...")
        check_parts(request.messages, "anthropic", "anthropic")

    def arguments(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `messages.create` (without `stream`)."""
        system_parts = [request.system] if request.system else []
        messages: list[Any] = []
        for message in request.messages:
            if message["role"] in ("system", "developer"):
                system_parts.append(str(message["content"]))
            else:
                messages.append(wire_message(message, "anthropic"))  # parts as blocks
        kwargs: dict[str, Any] = {"model": self._model, "messages": messages, **request.params}
        if kwargs.get("max_tokens") is None:  # the API requires it: None is rxllm's default
            kwargs["max_tokens"] = DEFAULT_MAX_TOKENS
        sampling = {name: kwargs.pop(name) for name in _SAMPLING - _CREATE_PARAMS if name in kwargs}
        sampling = {name: value for name, value in sampling.items() if value is not None}
        if sampling:  # sent as the API names them; an explicit extra_body wins
            kwargs["extra_body"] = {**sampling, **(kwargs.get("extra_body") or {})}
        if system_parts:
            kwargs["system"] = "\n\n".join(system_parts)
        if request.tools:
            kwargs["tools"] = [tool_schema(tool, "anthropic") for tool in request.tools]
        if request.response_format is not None:
            kwargs["output_config"] = {
                **kwargs.get("output_config", {}),
                "format": _output_format(request.response_format),
            }
        if request.stall_timeout:
            kwargs.setdefault("timeout", httpx2.Timeout(600.0, read=request.stall_timeout))
        return kwargs

    def continuation(self, request: Request, text: str) -> Request:
        """The request that continues a response after `text`: an assistant prefill.

        The API rejects a prefill ending in whitespace, so it is stripped; `ops.retry`
        drops the continuation's leading whitespace when the delivered text had it.
        """
        prefill = text.rstrip()
        if not prefill:
            return request
        messages = (*request.messages, {"role": "assistant", "content": prefill})
        return dataclasses.replace(request, messages=messages)


class AnthropicEvents:
    """Maps Messages stream events (parsed JSON) to `Chunk`s. One per call: it keeps the
    block-index -> tool-ordinal table and the prompt's token counts of `message_start`."""

    __slots__ = (
        "_codec",
        "_input",
        "_name",
        "_pending",
        "_text",
        "_tools",
        "done",
        "finished",
        "id",
        "model",
    )

    def __init__(self, name: str = "anthropic", codec: StreamCodec | None = None) -> None:
        self._name = name  # the provider's name on every chunk: "anthropic", "bedrock", ...
        self._codec = codec
        self._text = text_chunk_maker(name, codec)
        self._tools: dict[int, int] = {}
        # block index -> the JSON of a tool_use's input given whole in its start: the call's
        # arguments at the block's stop, unless input_json_deltas replace it (as in the SDK)
        self._pending: dict[int, str] = {}
        # input_tokens, cache_read_input_tokens, cache_creation_input_tokens, as last reported
        self._input = dict.fromkeys(_INPUT_COUNTS, 0)
        self.done = False
        self.finished = False
        self.model: str | None = None
        self.id: str | None = None

    def map(self, event: str | None, data: Any, payload: bytes | None = None) -> Chunk | None:
        """The chunk for one event (None for pings and block/message stops)."""
        if type(data) is not dict:
            return None
        kind = data.get("type") or event
        if kind == "content_block_delta" and payload is not None:
            delta = data.get("delta")
            if type(delta) is dict and delta.get("type") == "text_delta":  # the bulk
                text = delta.get("text")
                index = data.get("index")
                plain = (  # says nothing but its text: rebuilt from it (`text_event`)
                    len(delta) == 2
                    and len(data) == 3
                    and type(text) is str
                    and type(index) is int
                    and data.get("type") == "content_block_delta"
                )
                return self._text(text or "", self.model, self.id, index if plain else payload)
        content = thinking = ""
        tool_calls: tuple[ToolCallDelta, ...] = ()
        finish_reason = None
        usage = None
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                content = delta.get("text") or ""
            elif delta_kind == "thinking_delta":
                thinking = delta.get("thinking") or ""
            elif delta_kind == "input_json_delta":
                index = data.get("index", -1)
                ordinal = self._tools.get(index)
                fragment = delta.get("partial_json") or ""
                if fragment and self._pending:
                    self._pending.pop(index, None)  # the deltas replace the start's input
                if ordinal is not None:
                    tool_calls = (ToolCallDelta(index=ordinal, arguments=fragment),)
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            block_kind = block.get("type")
            if block_kind == "text":
                content = block.get("text") or ""
            elif block_kind == "thinking":
                thinking = block.get("thinking") or ""
            elif block_kind == "tool_use":
                index = data.get("index", -1)
                ordinal = self._tools[index] = len(self._tools)
                # The input given in the start, sent at the block's stop unless deltas
                # replace it; "{}" for a call without arguments, as OpenAI sends it.
                start_input = block.get("input")
                self._pending[index] = json.dumps(start_input) if start_input else "{}"
                tool_calls = (
                    ToolCallDelta(index=ordinal, id=block.get("id"), name=block.get("name")),
                )
        elif kind == "content_block_stop":
            arguments = self._pending.pop(data.get("index", -1), None) if self._pending else None
            if arguments is None:
                return None
            tool_calls = (ToolCallDelta(index=self._tools[data["index"]], arguments=arguments),)
        elif kind == "ping":
            return None
        elif kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model")
            self.id = message.get("id")
            usage = self._usage(message.get("usage") or {})
            blocks = message.get("content")
            if blocks:  # a message that starts with content (prefilled, or whole at once)
                content, thinking, tool_calls = self._blocks(blocks)
            reason = message.get("stop_reason")
            if reason:
                finish_reason = STOP_REASONS.get(reason, reason)
                self.finished = True
        elif kind == "message_delta":
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                finish_reason = STOP_REASONS.get(reason, reason)
                self.finished = True
            usage = self._usage(data.get("usage") or {})
        elif kind == "message_stop":
            self.done = True
            return None
        elif kind == "error":
            raise errors.stream_error_event(self._name, data.get("error"))
        return Chunk.unchecked(
            content,
            thinking,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage,
            model=self.model,
            id=self.id,
            provider=self._name,
            raw_factory=None if payload is not None else lambda: _construct_event(data),
            raw_data=payload,
            codec=self._codec,
        )

    def _blocks(self, blocks: Any) -> tuple[str, str, tuple[ToolCallDelta, ...]]:
        """Text, thinking and tool calls of content blocks given whole in `message_start`."""
        text: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCallDelta] = []
        for index, block in enumerate(blocks if type(blocks) is list else ()):
            kind = block.get("type") if type(block) is dict else None
            if kind == "text":
                text.append(block.get("text") or "")
            elif kind == "thinking":
                thinking.append(block.get("thinking") or "")
            elif kind == "tool_use":
                ordinal = self._tools[index] = len(self._tools)
                start_input = block.get("input")
                calls.append(
                    ToolCallDelta(
                        index=ordinal,
                        id=block.get("id"),
                        name=block.get("name"),
                        arguments=json.dumps(start_input) if start_input else "{}",
                    )
                )
        return "".join(text), "".join(thinking), tuple(calls)

    def _usage(self, reported: dict[str, Any]) -> Usage:
        """The running usage: the prompt's counts of `message_start`, updated by any that a
        `message_delta` reports again (they are cumulative), and the output so far."""
        counts = self._input
        for name in _INPUT_COUNTS:
            value = reported.get(name)
            if type(value) is int:
                counts[name] = value
        read = counts["cache_read_input_tokens"]
        write = counts["cache_creation_input_tokens"]
        prompt = counts["input_tokens"] + read + write
        output = reported.get("output_tokens") or 0
        details = reported.get("output_tokens_details")
        thinking = details.get("thinking_tokens") if type(details) is dict else None
        return Usage(
            input_tokens=prompt,
            output_tokens=output,
            total_tokens=prompt + output,
            cache_read_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=thinking if type(thinking) is int else 0,
        )

    def end(self) -> None:
        """Raise `StreamInterrupted` when the body ended before `message_stop`/a stop reason."""
        if not self.done and not self.finished:
            raise errors.StreamInterrupted(
                f"{self._name}: the stream ended before message_stop", provider=self._name
            )


def _response_raw(events: Sequence[Any], output_format: Any) -> Any:
    """The `Message` the SDK's `messages.stream()` helper ends with: every event through the
    SDK's `accumulate_event`, with the request's output format. Block stops carry no chunk,
    so they are replayed before the message's final delta, where the API sends them (the
    SDK parses `parsed_output` there)."""
    if output_format is None:
        output_format = anthropic.NOT_GIVEN
    snapshot: Any = None
    json_buffers: dict[int, bytes] = {}

    def apply(event: Any) -> Any:
        return _sdk_private.anthropic_accumulate_event(
            event=event,
            current_snapshot=snapshot,
            json_bufs=json_buffers,
            output_format=output_format,
        )

    for event in events:
        kind = getattr(event, "type", None)
        if (snapshot is None and kind != "message_start") or kind == "content_block_stop":
            continue  # block stops (the few that carry a chunk) are replayed below
        try:
            if kind == "message_delta":
                for index in range(len(snapshot.content)):
                    stop = RawContentBlockStopEvent(type="content_block_stop", index=index)
                    # text that does not parse as the format keeps parsed_output None
                    with contextlib.suppress(ValueError):
                        snapshot = apply(stop)
            snapshot = apply(event)
        except Exception as exc:
            # A shape the SDK's accumulator refuses (a message_start without its message, a
            # delta for a block it never saw): that event is left out of `raw`, as on Chat
            # Completions; the normalized fields have all of it.
            _log.debug("Response.raw: the SDK's accumulator refused an event: %s", exc)
    return snapshot


def _output_format(value: Any) -> Any:
    if inspect.isclass(value):
        return {"type": "json_schema", "schema": _sdk_private.anthropic_output_schema(value)}
    if isinstance(value, dict) and value.get("type") == "json_schema" and "json_schema" in value:
        # An OpenAI-style response_format: take its schema.
        return {"type": "json_schema", "schema": value["json_schema"]["schema"]}  # pyright: ignore[reportUnknownVariableType]
    return value
