"""A `Script` as the events of OpenAI's Responses API (`POST /v1/responses`, `stream: true`).

The events follow what the API sends, closely enough that the SDK's own accumulator
(`ResponseStreamState`, behind `client.responses.stream()`) accepts them: `response.created`
and `response.in_progress`, then one output item after the other — each opened by
`response.output_item.added` and closed by `response.output_item.done` with its whole
content —, then `response.completed` (or `response.incomplete`) carrying every item and the
usage. Every event has its `sequence_number`.

What a script's items become:

- text (`str`, `Chunk.content`): `response.output_text.delta` in a `message` item;
- `Chunk.thinking`: `response.reasoning_summary_text.delta` in a `reasoning` item (a
  thinking delta that starts with a blank line after some thinking opens the next summary
  part, as rxllm reads parts back: joined by "\\n\\n");
- `Chunk.refusal`: `response.refusal.delta` in a refusal part of a `message` item;
- tool-call deltas: a `function_call` item per call (`call_id` the delta's `id`, or made
  up), arguments as `response.function_call_arguments.delta`; the fragments of one call
  must be contiguous, as the API streams one item after the other;
- finish reason "length" / "content_filter": `response.incomplete` with reason
  `max_output_tokens` / `content_filter`; any other: `response.completed`;
- `error_event`: an error object or type (e.g. `"server_error"`) is a `response.failed`
  whose `error` has that `code`; a dict with `"type": "error"` is an `error` event itself
  (its `code`, `message`, `param` as given);
- keep-alives: `keepalive` events. Audio is left out (the API streams none).

Why ~440 lines in one module: one protocol's encoder of the same `Script`, every
misbehaviour included, as `_encode.py` has for the others.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing._script import Script, check_contiguous_calls

__all__ = ["ResponsesEncoder", "check_responses"]

_DEFAULT_MESSAGES = {
    "server_error": "The server had an error while processing your request. Sorry about that!",
    "rate_limit_exceeded": "Rate limit reached. Please try again later.",
}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Item:
    """The output item being streamed: its kind, position, id and content so far."""

    __slots__ = ("call", "id", "index", "kind", "parts")

    def __init__(self, kind: str, index: int, item_id: str, call: int | None = None) -> None:
        self.kind = kind  # "message", "reasoning" or "function_call"
        self.index = index
        self.id = item_id
        self.call = call  # the script's tool-call index, for a function call
        # (part kind, pieces): message parts ("output_text" / "refusal"), summary parts
        # ("summary_text"), or one "arguments" part of a function call
        self.parts: list[tuple[str, list[str]]] = []


class ResponsesEncoder:
    """The events of one Responses stream, item by item (the `_encode` plan's interface:
    `start`, `step`, `finish`, `error`, `raw`, `raw_end`, `malformed`, `ping`)."""

    malformed = "event: response.output_text.delta\ndata: {not json\n\n"
    ping = 'event: keepalive\ndata: {"type":"keepalive","sequence_number":0}\n\n'

    def __init__(self, script: Script, body: Mapping[str, Any], response_id: str | None) -> None:
        self._id = response_id or f"resp_{uuid.uuid4().hex}"
        self._tag = self._id.removeprefix("resp_")
        self._model = script.model
        self._body = body
        self._created = int(time.time())
        self._sequence = 0
        self._output: list[dict[str, Any]] = []  # the finished items, as sent in their .done
        self._item: _Item | None = None
        self._calls: dict[int, tuple[str, str]] = {}  # script index -> (call_id, name)
        self._text_prefix = ""

    # --- events ------------------------------------------------------------------------------

    def _event(self, kind: str, fields: Mapping[str, Any]) -> str:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return f"event: {kind}\ndata: {_json(data)}\n\n"

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        body = self._body
        response: dict[str, Any] = {
            "id": self._id,
            "object": "response",
            "created_at": self._created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self._model,
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        response.update(fields)
        return response

    def start(self) -> list[str]:
        response = self._response("in_progress")
        return [
            self._event("response.created", {"response": response}),
            self._event("response.in_progress", {"response": response}),
        ]

    def step(self, item: str | Chunk) -> list[str]:
        events: list[str] = []
        if isinstance(item, str):
            self._text(item, events)
            return events
        if item.thinking:
            self._thinking(item.thinking, events)
        if item.content:
            self._text(item.content, events)
        if item.refusal:
            self._refusal(item.refusal, events)
        for call in item.tool_calls:
            self._call(call, events)
        return events  # audio has no Responses event: left out

    def finish(self, reason: str, usage: Usage) -> list[str]:
        events: list[str] = []
        incomplete = _INCOMPLETE.get(reason)
        self._leave(events, "incomplete" if incomplete else "completed")
        counts = _usage(usage)
        if incomplete is None:
            response = self._response("completed", output=self._output, usage=counts)
            events.append(self._event("response.completed", {"response": response}))
        else:
            response = self._response(
                "incomplete",
                output=self._output,
                usage=counts,
                incomplete_details={"reason": incomplete},
            )
            events.append(self._event("response.incomplete", {"response": response}))
        return events

    def error(self, error: str | Mapping[str, Any]) -> str:
        if isinstance(error, Mapping) and error.get("type") == "error":
            fields = {k: v for k, v in error.items() if k not in ("type", "sequence_number")}
            return self._event("error", fields)
        if isinstance(error, str):
            code: Any = error
            message = _DEFAULT_MESSAGES.get(error, f"Scripted {error}.")
        else:
            code = error.get("code") or error.get("type")
            message = error.get("message") or _DEFAULT_MESSAGES.get(str(code), "Scripted error.")
        output = [*self._output]
        if self._item is not None:  # the item in progress, as far as it got
            output.append(self._item_object(self._item, "incomplete"))
        response = self._response("failed", output=output, error={"code": code, "message": message})
        return self._event("response.failed", {"response": response})

    def raw(self, event: Mapping[str, Any]) -> str:
        kind = event.get("type")
        if isinstance(kind, str):
            return f"event: {kind}\ndata: {_json(event)}\n\n"
        return f"data: {_json(event)}\n\n"

    def raw_end(self) -> list[str]:
        return []

    # --- items -------------------------------------------------------------------------------

    def _enter(self, kind: str, events: list[str], call: int | None = None) -> _Item:
        """The item of this kind in progress, or a new one (closing the one before)."""
        current = self._item
        if current is not None and current.kind == kind and current.call == call:
            return current
        self._leave(events, "completed")
        index = len(self._output)
        prefix = {"message": "msg", "reasoning": "rs", "function_call": "fc"}[kind]
        item = self._item = _Item(kind, index, f"{prefix}_{self._tag}_{index}", call)
        events.append(
            self._event(
                "response.output_item.added",
                {"output_index": index, "item": self._item_object(item, "in_progress")},
            )
        )
        return item

    def _item_object(self, item: _Item, status: str) -> dict[str, Any]:
        """The item as the API shows it in `output_item.added` / `.done` and in `output`."""
        if item.kind == "message":
            content = [_content_part(kind, "".join(pieces)) for kind, pieces in item.parts]
            return {
                "id": item.id,
                "type": "message",
                "status": status,
                "content": content,
                "role": "assistant",
            }
        if item.kind == "reasoning":
            summary = [{"type": "summary_text", "text": "".join(p)} for _, p in item.parts]
            return {"id": item.id, "type": "reasoning", "summary": summary}
        call_id, name = self._calls[item.call or 0]
        arguments = "".join(item.parts[0][1]) if item.parts else ""
        return {
            "id": item.id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call_id,
            "name": name,
        }

    def _part(self, item: _Item, kind: str, events: list[str], *, new: bool = False) -> list[str]:
        """The pieces of the item's current part of this kind (a new part if it differs)."""
        if item.parts and item.parts[-1][0] == kind and not new:
            return item.parts[-1][1]
        self._close_part(item, events)
        pieces: list[str] = []
        item.parts.append((kind, pieces))
        index = len(item.parts) - 1
        if item.kind == "message":
            events.append(
                self._event(
                    "response.content_part.added",
                    {
                        "item_id": item.id,
                        "output_index": item.index,
                        "content_index": index,
                        "part": _content_part(kind, ""),
                    },
                )
            )
            if kind == "output_text":
                self._text_prefix = (
                    f'"item_id":{_json(item.id)},"output_index":{item.index},'
                    f'"content_index":{index},"delta":'
                )
        elif item.kind == "reasoning":
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    {
                        "item_id": item.id,
                        "output_index": item.index,
                        "summary_index": index,
                        "part": {"type": "summary_text", "text": ""},
                    },
                )
            )
        return pieces

    def _close_part(self, item: _Item, events: list[str]) -> None:
        if not item.parts or item.kind == "function_call":
            return
        index = len(item.parts) - 1
        kind, pieces = item.parts[index]
        text = "".join(pieces)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "reasoning":
            where["summary_index"] = index
            part = {"type": "summary_text", "text": text}
            done = {**where, "text": text}
            events.append(self._event("response.reasoning_summary_text.done", done))
            events.append(
                self._event("response.reasoning_summary_part.done", {**where, "part": part})
            )
            return
        where["content_index"] = index
        if kind == "output_text":
            events.append(
                self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            )
        else:
            events.append(self._event("response.refusal.done", {**where, "refusal": text}))
        events.append(
            self._event("response.content_part.done", {**where, "part": _content_part(kind, text)})
        )

    def _leave(self, events: list[str], status: str) -> None:
        """Close the item in progress: its parts' `.done` events, then `output_item.done`."""
        item = self._item
        if item is None:
            return
        self._item = None
        self._close_part(item, events)
        if item.kind == "function_call":
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    {
                        "item_id": item.id,
                        "output_index": item.index,
                        "arguments": "".join(item.parts[0][1]) if item.parts else "",
                    },
                )
            )
        finished = self._item_object(item, status)
        self._output.append(finished)
        events.append(
            self._event("response.output_item.done", {"output_index": item.index, "item": finished})
        )

    def _text(self, text: str, events: list[str]) -> None:
        item = self._enter("message", events)
        pieces = self._part(item, "output_text", events)
        pieces.append(text)
        # the bulk of a stream: spliced into pre-rendered JSON, as the chat encoder does
        sequence = self._sequence
        self._sequence += 1
        events.append(
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            f'"sequence_number":{sequence},{self._text_prefix}{_json(text)},"logprobs":[]}}\n\n'
        )

    def _refusal(self, text: str, events: list[str]) -> None:
        item = self._enter("message", events)
        index = len(item.parts) - 1 if item.parts and item.parts[-1][0] == "refusal" else None
        self._part(item, "refusal", events).append(text)
        if index is None:
            index = len(item.parts) - 1
        events.append(
            self._event(
                "response.refusal.delta",
                {
                    "item_id": item.id,
                    "output_index": item.index,
                    "content_index": index,
                    "delta": text,
                },
            )
        )

    def _thinking(self, text: str, events: list[str]) -> None:
        item = self._enter("reasoning", events)
        new = bool(item.parts) and text.startswith("\n\n") and bool("".join(item.parts[-1][1]))
        if new:
            text = text[2:]
        pieces = self._part(item, "summary_text", events, new=new)
        pieces.append(text)
        events.append(
            self._event(
                "response.reasoning_summary_text.delta",
                {
                    "item_id": item.id,
                    "output_index": item.index,
                    "summary_index": len(item.parts) - 1,
                    "delta": text,
                },
            )
        )

    def _call(self, call: ToolCallDelta, events: list[str]) -> None:
        known_id, known_name = self._calls.get(call.index, ("", ""))
        call_id = known_id or call.id or f"call_{self._tag}_{call.index}"
        self._calls[call.index] = (call_id, known_name or call.name or "")
        item = self._enter("function_call", events, call.index)
        if not item.parts:
            item.parts.append(("arguments", []))
        if call.arguments:
            item.parts[0][1].append(call.arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    {"item_id": item.id, "output_index": item.index, "delta": call.arguments},
                )
            )


def _content_part(kind: str, text: str) -> dict[str, Any]:
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _usage(usage: Usage) -> dict[str, Any]:
    details: dict[str, int] = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": details,
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def check_responses(items: Sequence[str | Chunk]) -> None:
    """Raise `ValueError` for a script the Responses API could not stream: the fragments of
    one tool call must be contiguous (each call is one output item, closed for good when
    the next item starts).

    >>> from rxllm.models import Chunk, ToolCallDelta
    >>> check_responses([Chunk(tool_calls=(ToolCallDelta(index=0, name="f"),)), "text",
    ...     Chunk(tool_calls=(ToolCallDelta(index=0, arguments="{}"),))])
    Traceback (most recent call last):
    ...
    ValueError: this script cannot be streamed as Responses events: the deltas of tool call 0 ...
    """
    check_contiguous_calls(
        items,
        "Responses",
        "the Responses API streams each call as one output item, so script all of a call's "
        "fragments before the next item",
    )
