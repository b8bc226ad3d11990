"""`ui_message_stream()`: chunks in the Vercel AI SDK's UI message stream protocol (v1).

The protocol is what `useChat` reads: Server-Sent Events, each a JSON object with a `type`,
ending with `data: [DONE]`. A response is `start`, then per step `start-step`, its parts
and `finish-step`, then `finish`. A part is opened, filled and closed: text and reasoning
as `*-start` / `*-delta` / `*-end` with an `id`, a tool call as `tool-input-start`,
`tool-input-delta`s of its JSON arguments and `tool-input-available` with the parsed
input, its result as `tool-output-available` or `tool-output-error`.

`UIMessageEvents` turns rxllm's chunks into those events, with no I/O (so it is tested
without a server); `ui_message_stream` writes them as a disconnect-aware response.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pydantic_core
import reactivex

from rxllm._checks import require_observable
from rxllm.errors import scrub
from rxllm.models import Chunk, ToolCall, ToolResult, Usage
from rxllm.web._response import EventStream, error_payload, items_of, log_failure

__all__ = ["UIMessageEvents", "finish_reason", "ui_message_stream"]

Event = dict[str, Any]

UI_MESSAGE_STREAM_HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
}


def finish_reason(reason: str | None) -> str:
    """rxllm's finish reason in the protocol's words: `None` (the stream ended without a
    reason, e.g. cut by `take_until`) and a provider's own word are "other".

    >>> finish_reason("content_filter"), finish_reason(None)
    ('content-filter', 'other')
    """
    return _FINISH_REASONS.get(reason or "", "other")


@dataclass
class _ToolInput:
    """A tool call of the current step whose input is streaming."""

    id: str
    name: str | None
    arguments: str = ""
    started: bool = False
    """`tool-input-start` was sent (it waits for the name)."""
    available: bool = False
    """`tool-input-available` (or `tool-input-error`) was sent: the input is whole."""


class UIMessageEvents:
    """The UI message stream events of one response, from its chunks (no I/O).

    `start()` first, `push(chunk)` for each chunk, then `finish()` (or `fail(error)`); each
    returns the events to send, in order. A chunk carrying `tool_results` (what
    `ops.tool_loop` emits after running a step's tools) ends a step: the results are sent
    and `finish-step`; the next chunk starts the next step. Thinking is reasoning, text
    (also a refusal or an audio transcript) is text; audio itself is not sent.

    >>> events = UIMessageEvents("msg-1")
    >>> [e["type"] for e in events.start() + events.push(Chunk(content="Hi"))]
    ['start', 'start-step', 'text-start', 'text-delta']
    >>> [e["type"] for e in events.finish()]
    ['text-end', 'finish-step', 'finish']
    """

    def __init__(self, message_id: str) -> None:
        self._message_id = message_id
        self._step = 0
        self._in_step = False
        self._parts = 0  # text and reasoning parts opened so far, for their ids
        self._text: str | None = None  # the id of the open text part
        self._reasoning: str | None = None  # the id of the open reasoning part
        self._tools: dict[int, _ToolInput] = {}  # this step's calls by their index
        self._finish_reason: str | None = None
        self._step_usage: Usage | None = None
        self._usage: Usage | None = None  # of the finished steps

    def start(self) -> list[Event]:
        """The events that open the response: `start` (with `messageId`), `start-step`."""
        return [{"type": "start", "messageId": self._message_id}, *self._start_step()]

    def push(self, chunk: Chunk) -> list[Event]:
        """The events a chunk adds (none for a chunk that says nothing new)."""
        if not isinstance(chunk, Chunk):
            raise TypeError(
                f"ui_message_stream() streams rxllm chunks (llm.stream(...) and operators that "
                f"keep chunks, such as ops.tool_loop()), not {type(chunk).__name__}"
            )
        if chunk.tool_results:
            return self._end_step(chunk.tool_results)
        events = [] if self._in_step else self._start_step()
        if chunk.thinking:
            events += self._close_text()
            if self._reasoning is None:
                self._reasoning = self._new_id("reasoning")
                events.append({"type": "reasoning-start", "id": self._reasoning})
            events.append(
                {"type": "reasoning-delta", "id": self._reasoning, "delta": chunk.thinking}
            )
        text = chunk.content + chunk.refusal + chunk.audio_transcript
        if text:
            events += self._close_reasoning()
            if self._text is None:
                self._text = self._new_id("text")
                events.append({"type": "text-start", "id": self._text})
            events.append({"type": "text-delta", "id": self._text, "delta": text})
        if chunk.tool_calls:
            events += self._close_text() + self._close_reasoning()
            for delta in chunk.tool_calls:
                events += self._tool_delta(delta.index, delta.id, delta.name, delta.arguments)
        if chunk.finish_reason is not None:
            self._finish_reason = chunk.finish_reason
            events += self._inputs_available()  # the call is over: its arguments are whole
        if chunk.usage is not None:
            self._step_usage = chunk.usage
        return events

    def finish(self) -> list[Event]:
        """The events that close the response: open parts, the step, then `finish` with the
        last call's finish reason and, when the provider reported it, the usage of all steps
        as `messageMetadata.usage`."""
        events = self._close_parts()
        if self._in_step:
            events += self._finish_step()
        return [*events, self._finish(finish_reason(self._finish_reason))]

    def fail(self, error: BaseException) -> list[Event]:
        """The events after a failure: open text closed (what was received stays), `error`
        with `errorText` "<error class>: <message>" (never a key), then `finish` with
        finish reason "error"."""
        events = self._close_text() + self._close_reasoning()
        payload = error_payload(error)
        events.append({"type": "error", "errorText": f"{payload['type']}: {payload['message']}"})
        if self._in_step:
            events += self._finish_step()
        return [*events, self._finish("error")]

    def _new_id(self, kind: str) -> str:
        self._parts += 1
        return f"{kind}-{self._parts}"

    def _start_step(self) -> list[Event]:
        self._in_step = True
        self._finish_reason = None
        self._step_usage = None
        return [{"type": "start-step"}]

    def _finish_step(self) -> list[Event]:
        self._in_step = False
        self._tools = {}
        self._step += 1
        if self._step_usage is not None:
            self._usage = (
                self._step_usage if self._usage is None else self._usage + self._step_usage
            )
            self._step_usage = None
        return [{"type": "finish-step"}]

    def _finish(self, reason: str) -> Event:
        event: Event = {"type": "finish", "finishReason": reason}
        usage = self._usage
        if self._step_usage is not None:
            usage = self._step_usage if usage is None else usage + self._step_usage
        if usage is not None:
            event["messageMetadata"] = {"usage": _usage(usage)}
        return event

    def _end_step(self, results: tuple[ToolResult, ...]) -> list[Event]:
        events = [] if self._in_step else self._start_step()
        events += self._close_parts()
        for result in results:
            events += self._result(result)
        return events + self._finish_step()

    def _close_text(self) -> list[Event]:
        if self._text is None:
            return []
        part, self._text = self._text, None
        return [{"type": "text-end", "id": part}]

    def _close_reasoning(self) -> list[Event]:
        if self._reasoning is None:
            return []
        part, self._reasoning = self._reasoning, None
        return [{"type": "reasoning-end", "id": part}]

    def _close_parts(self) -> list[Event]:
        return self._close_text() + self._close_reasoning() + self._inputs_available()

    def _tool_delta(
        self, index: int, id: str | None, name: str | None, arguments: str
    ) -> list[Event]:
        call = self._tools.get(index)
        if call is None:
            # the id tool_loop gives a call that came without one, so results match
            call = self._tools[index] = _ToolInput(id or f"call_{self._step}_{index}", name)
        elif call.available:  # a fragment after the call ended: its input was sent
            return []
        if call.name is None and name:
            call.name = name
        call.arguments += arguments
        events: list[Event] = []
        if not call.started:
            if call.name is None:  # the start names the tool: wait for the name
                return events
            events.append(self._input_start(call))
            arguments = call.arguments  # with the fragments that came before the name
        if arguments:
            events.append(_input_delta(call, arguments))
        return events

    def _input_start(self, call: _ToolInput) -> Event:
        call.started = True
        return {"type": "tool-input-start", "toolCallId": call.id, "toolName": call.name or ""}

    def _inputs_available(self) -> list[Event]:
        """`tool-input-available` (or `tool-input-error` for arguments that are not a JSON
        object, e.g. cut off at max_tokens) for each call still streaming its input."""
        events: list[Event] = []
        for index in sorted(self._tools):
            call = self._tools[index]
            if call.available:
                continue
            if not call.started:
                events.append(self._input_start(call))
                if call.arguments:
                    events.append(_input_delta(call, call.arguments))
            events.append(_input_done(call.id, call.name or "", call.arguments))
            call.available = True
        return events

    def _result(self, result: ToolResult) -> list[Event]:
        call = result.call
        events: list[Event] = []
        if call.id not in {c.id for c in self._tools.values()}:
            # a result of a call this stream did not show (it came through another path)
            events += [
                {"type": "tool-input-start", "toolCallId": call.id, "toolName": call.name},
                _input_done(call.id or "", call.name, call.arguments),
            ]
        if result.error is not None:
            return [
                *events,
                {
                    "type": "tool-output-error",
                    "toolCallId": call.id,
                    "errorText": scrub(result.error),
                },
            ]
        output = result.model_dump(mode="json", include={"output"})["output"]
        return [*events, {"type": "tool-output-available", "toolCallId": call.id, "output": output}]


def _input_delta(call: _ToolInput, arguments: str) -> Event:
    return {"type": "tool-input-delta", "toolCallId": call.id, "inputTextDelta": arguments}


def _input_done(id: str, name: str, arguments: str) -> Event:
    try:
        value = ToolCall(id=id, name=name, arguments=arguments).args
    except ValueError as error:
        return {
            "type": "tool-input-error",
            "toolCallId": id,
            "toolName": name,
            "input": arguments,
            "errorText": str(error),
        }
    return {"type": "tool-input-available", "toolCallId": id, "toolName": name, "input": value}


def _usage(usage: Usage) -> dict[str, int]:
    """A usage in the AI SDK's words (`LanguageModelUsage`)."""
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
        "reasoningTokens": usage.reasoning_tokens,
        "cachedInputTokens": usage.cache_read_tokens,
    }


def ui_message_stream(
    source: reactivex.Observable[Chunk], *, message_id: str | None = None
) -> EventStream:
    """Stream chunks in the Vercel AI SDK's UI message stream protocol, for `useChat`.

    The response has the header `x-vercel-ai-ui-message-stream: v1` and sends `start`
    (with `messageId`: `message_id`, or a new one), per step `start-step` ... `finish-step`
    (each call of an `ops.tool_loop` is a step), text as `text-start`/`text-delta`/
    `text-end`, thinking as `reasoning-start`/`-delta`/`-end`, tool calls as
    `tool-input-start`/`tool-input-delta`/`tool-input-available`, a tool's return value as
    `tool-output-available` (`tool-output-error` for a tool that raised), then `finish`
    with `finishReason` ("stop", "length", "content-filter", "tool-calls", "error",
    "other") and the usage of all steps as `messageMetadata.usage` (`inputTokens`,
    `outputTokens`, ...) when the provider reported it, and `data: [DONE]`. A failure
    sends `error` with `errorText` ("<error class>: <message>", never a key). When the
    client goes away (a closed tab, an aborted fetch, `useChat`'s `stop()`), the call is
    cancelled at once, also while the model is silent.

    >>> import rxllm
    >>> from rxllm import web
    >>> llm = rxllm.scripted("Hello there.")
    >>> async def chat(request):  # POST /api/chat, from useChat()
    ...     messages = web.ui_messages(await request.json())
    ...     return web.ui_message_stream(llm.stream(messages=messages))
    """
    require_observable("web.ui_message_stream", source)
    if message_id is not None and not isinstance(message_id, str):
        raise TypeError(f"message_id must be a str (or None for a new one), not {message_id!r}")
    events = UIMessageEvents(message_id or f"msg-{uuid.uuid4().hex}")
    return EventStream(_ui_events(source, events), headers=UI_MESSAGE_STREAM_HEADERS)


async def _ui_events(
    source: reactivex.Observable[Chunk], events: UIMessageEvents
) -> AsyncGenerator[bytes, None]:
    yield _encode(events.start())
    try:
        async with aclosing(items_of(source)) as chunks:
            async for chunk in chunks:
                added = events.push(chunk)
                if added:
                    yield _encode(added)
    except Exception as error:
        log_failure("ui message", error)
        yield _encode(events.fail(error))
    else:
        yield _encode(events.finish())
    yield b"data: [DONE]\n\n"


def _encode(events: list[Event]) -> bytes:
    return b"".join(b"data: " + pydantic_core.to_json(e) + b"\n\n" for e in events)
