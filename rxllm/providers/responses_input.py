"""The request side of OpenAI's Responses API: `responses.create`'s arguments from an rxllm
`Request`, and a conversation's turns as input items.

rxllm's messages (chat-style dicts, as every operator and provider shares them) become
Responses input items here: user and system text, assistant text and `function_call`
items, tool results as `function_call_output` items, provider-native items passed through.
The codec (`openai_responses.ResponsesCodec`) calls `responses_arguments`;
`response_input_items` / `tool_output_items` give an answer's own output items for the next
call (keeping a reasoning model's reasoning).

Why ~500 lines in one module: every kind of conversation turn as Responses input items, both
message formats in, with the checks that say what the API cannot take.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx2
from openai.resources.responses import Responses as _ResponsesResource

from rxllm.models import Response, ToolResult
from rxllm.parts import Part, part_to_wire
from rxllm.request import Request
from rxllm.tools import tool_schema

__all__ = [
    "response_input_items",
    "responses_arguments",
    "responses_input",
    "responses_tool",
    "tool_output_items",
]

_CREATE_PARAMS = frozenset(inspect.signature(_ResponsesResource.create).parameters) - {
    "self",
    "input",
    "model",
    "stream",
}

_RENAMED = ("max_tokens", "max_completion_tokens")
"""Chat Completions' output caps, sent as the Responses API's `max_output_tokens`."""

_CHAT_ONLY = {
    "n": "the Responses API makes one answer per call: make several calls",
    "stop": "the Responses API has no stop sequences",
    "seed": "the Responses API takes no seed",
    "logit_bias": "the Responses API takes no logit_bias",
    "frequency_penalty": "the Responses API takes no frequency_penalty",
    "presence_penalty": "the Responses API takes no presence_penalty",
    "logprobs": "ask for include=['message.output_text.logprobs'] with top_logprobs=...",
    "modalities": "the Responses API streams no audio: use rxllm.openai(model) (Chat Completions)",
    "audio": "the Responses API streams no audio: use rxllm.openai(model) (Chat Completions)",
    "prediction": "the Responses API takes no predicted output",
    "web_search_options": "offer the tool instead: tools=[{'type': 'web_search'}]",
    "functions": "pass tools=[...]",
    "function_call": "pass tool_choice=...",
    "response_format": "pass response_format= to stream() (it becomes text.format)",
}
"""Chat Completions parameters the Responses API does not take, with what to do instead."""

_PASSED_ITEMS = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "item_reference",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "computer_call",
        "computer_call_output",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "custom_tool_call",
        "custom_tool_call_output",
        "tool_search_call",
        "tool_search_output",
        "compaction",
    }
)
"""Input item types given as messages that are sent as they are (no `role` to convert)."""


# --- requests -------------------------------------------------------------------------------


def responses_arguments(request: Request, model: str) -> dict[str, Any]:
    """The keyword arguments of `client.responses.create(stream=True, **kwargs)` for an
    rxllm `Request`: `input` items from its messages (`responses_input`), `system` as
    `instructions`, tools as Responses tools (`responses_tool`), `max_tokens` as
    `max_output_tokens`, a `response_format` as `text.format`. Raises `ValueError` for what
    the Responses API does not take, saying what to do instead.

    >>> request = Request(messages=({"role": "user", "content": "Hi"},), system="Be brief.",
    ...     params={"max_tokens": 50})
    >>> responses_arguments(request, "gpt-5-mini")
    {'model': 'gpt-5-mini', 'input': [{'role': 'user', 'content': 'Hi'}], 'instructions': 'Be brief.', 'max_output_tokens': 50}
    """  # noqa: E501
    params = dict(request.params)
    for name in _RENAMED:
        if name in params:
            if "max_output_tokens" in params:
                raise ValueError(
                    f"the Responses API got both {name} and max_output_tokens: give only "
                    "max_output_tokens"
                )
            params["max_output_tokens"] = params.pop(name)
    effort = params.pop("reasoning_effort", None)
    if effort is not None:
        params["reasoning"] = {"effort": effort, **dict(params.get("reasoning") or {})}
    verbosity = params.pop("verbosity", None)
    if verbosity is not None:
        params["text"] = {"verbosity": verbosity, **dict(params.get("text") or {})}
    unknown = sorted(set(params) - _CREATE_PARAMS)
    if unknown:
        hints = [f"{name!r} ({_CHAT_ONLY[name]})" for name in unknown if name in _CHAT_ONLY]
        others = [repr(name) for name in unknown if name not in _CHAT_ONLY]
        raise ValueError(
            f"the OpenAI Responses API takes no parameter {', '.join(hints + others)}"
            + ("; send provider extensions with extra_body={...}" if others else "")
        )
    if request.audio is not None:
        raise ValueError(
            "the Responses API streams no audio: use rxllm.openai(model) (Chat Completions) "
            "for audio=..."
        )
    kwargs: dict[str, Any] = {"model": model, "input": responses_input(request.messages)}
    if request.system is not None:
        if "instructions" in params:
            raise ValueError(
                "got both system=... and instructions=...: they are the same thing in the "
                "Responses API; give one"
            )
        kwargs["instructions"] = request.system
    if request.tools:
        kwargs["tools"] = [responses_tool(tool) for tool in request.tools]
    if "tool_choice" in params:
        choice = params["tool_choice"]
        if isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use"):
            params.setdefault("parallel_tool_calls", False)  # Anthropic's way of saying it
        params["tool_choice"] = _tool_choice(choice)
    if request.response_format is not None:
        text = dict(params.get("text") or {})
        if "format" in text:
            raise ValueError(
                "got both response_format=... and text={'format': ...}: give one (a pydantic "
                "model as response_format becomes text.format)"
            )
        text["format"] = _text_format(request.response_format)
        params["text"] = text
    if request.stall_timeout:
        params.setdefault("timeout", httpx2.Timeout(600.0, read=request.stall_timeout))
    kwargs.update(params)
    return kwargs


def _tool_choice(choice: Any) -> Any:
    """A `tool_choice` in the Responses API's form (Chat's and Anthropic's translated)."""
    if not isinstance(choice, Mapping):
        return choice
    kind = choice.get("type")
    function = choice.get("function")
    if kind == "function" and isinstance(function, Mapping):
        return {"type": "function", "name": function.get("name")}
    if kind == "tool":  # Anthropic's
        return {"type": "function", "name": choice.get("name")}
    if kind == "any":
        return "required"
    if kind in ("auto", "none") and set(choice) <= {"type", "disable_parallel_tool_use"}:
        return kind
    return dict(choice)


def _text_format(value: Any) -> dict[str, Any]:
    """A `response_format` as the Responses API's `text.format`."""
    if inspect.isclass(value):
        from openai.lib._parsing._responses import type_to_text_format_param

        return dict(type_to_text_format_param(value))
    given = dict(value)
    schema = given.get("json_schema")
    if given.get("type") == "json_schema" and isinstance(schema, Mapping):
        # Chat Completions' {"type": "json_schema", "json_schema": {"name", "schema", ...}}
        return {"type": "json_schema", **dict(schema)}
    return given


def responses_tool(tool: Any) -> Any:
    """A tool in the Responses API's form: a Python function, a pydantic model class, a
    Chat Completions or an Anthropic tool dict become a function tool (`strict` False unless
    the dict says otherwise: the API's default is strict, which a function with optional
    parameters fails); a Responses dict and built-in tools (`web_search`, `file_search`,
    MCP, ...) are sent as given.

    >>> def weather(city: str) -> str:
    ...     '''The weather in a city.'''
    ...     return "sunny"
    >>> tool = responses_tool(weather)
    >>> tool["type"], tool["name"], tool["description"], tool["strict"]
    ('function', 'weather', 'The weather in a city.', False)
    >>> responses_tool({"type": "web_search"})
    {'type': 'web_search'}
    """
    if isinstance(tool, Mapping) and not (
        "input_schema" in tool
        or (tool.get("type") == "function" and isinstance(tool.get("function"), Mapping))
    ):
        return tool  # the Responses API's own function tool, or a built-in tool
    converted = tool_schema(tool, "openai")
    function: Mapping[str, Any] = converted["function"]
    spec: dict[str, Any] = {"type": "function", "name": function["name"]}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    spec["strict"] = bool(function.get("strict", False))
    return spec


def responses_input(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """rxllm's messages (OpenAI Chat's or Anthropic's format) as Responses input items.

    System, developer and user messages stay messages (content parts become `input_text`,
    `input_image`, `input_file`); an assistant's text becomes an assistant message and its
    tool calls `function_call` items; tool results (`role: "tool"`, or Anthropic's
    `tool_result` blocks) become `function_call_output` items. Dicts that are already
    Responses items (a `type` such as "function_call" or "reasoning", no `role`) are sent as
    they are, as are messages given as Responses items (`"type": "message"`). Raises
    `ValueError` for what the Responses API cannot take.

    >>> responses_input([
    ...     {"role": "user", "content": "Weather in Oslo?"},
    ...     {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1",
    ...         "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
    ...     {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ... ])[1:]
    [{'type': 'function_call', 'call_id': 'call_1', 'name': 'weather', 'arguments': '{}'}, {'type': 'function_call_output', 'call_id': 'call_1', 'output': 'sunny'}]
    """  # noqa: E501
    items: list[dict[str, Any]] = []
    for position, message in enumerate(messages):
        role = message.get("role")
        kind = message.get("type")
        if kind in _PASSED_ITEMS:  # already a Responses item (an output message too)
            items.append(dict(message))
        elif role is None:
            raise ValueError(
                f"messages[{position}] has no role and is no Responses input item (type "
                f"{kind!r}); give {{'role': ..., 'content': ...}}"
            )
        elif role in ("system", "developer", "user"):
            items.extend(_input_message(position, role, message.get("content")))
        elif role == "assistant":
            items.extend(_assistant(position, message))
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": _tool_output(position, message.get("content")),
                }
            )
        else:
            raise ValueError(
                f"messages[{position}] has role {role!r}, which the Responses API does not "
                "take: answer tool calls with {'role': 'tool', 'tool_call_id': ..., "
                "'content': ...}"
            )
    return items


def _input_message(position: int, role: str, content: Any) -> list[dict[str, Any]]:
    """A system/developer/user message; Anthropic `tool_result` blocks in it become
    `function_call_output` items (before the message's own parts, as they answer calls)."""
    if content is None or isinstance(content, str):
        return [{"role": role, "content": content or ""}]
    outputs: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "tool_result":
            outputs.append(
                {
                    "type": "function_call_output",
                    "call_id": part.get("tool_use_id"),
                    "output": _tool_output(position, part.get("content")),
                }
            )
        elif isinstance(part, Part):  # rxllm.Image / Document (Audio is refused by `check`)
            parts.append(part_to_wire(part, "responses"))
        else:
            parts.append(_input_part(position, part))
    if parts:
        outputs.append({"role": role, "content": parts})
    return outputs


def _input_part(position: int, part: Any) -> dict[str, Any]:
    """One content part as the Responses API's `input_text` / `input_image` / `input_file`."""
    if isinstance(part, str):
        return {"type": "input_text", "text": part}
    if not isinstance(part, Mapping):
        raise ValueError(
            f"messages[{position}] has a content part that is a {type(part).__name__}, not a "
            "dict or a str"
        )
    kind = part.get("type")
    if kind in ("input_text", "input_image", "input_file"):
        return dict(part)
    if kind in ("text", "output_text"):
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        detail = image.get("detail") if isinstance(image, Mapping) else None
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if kind == "file":
        file = part.get("file")
        return {"type": "input_file", **(dict(file) if isinstance(file, Mapping) else {})}
    if kind in ("image", "document"):  # Anthropic's blocks
        return _anthropic_source(position, kind, part.get("source"))
    raise ValueError(
        f"messages[{position}] has a content part of type {kind!r}, which the OpenAI "
        "Responses API does not take (it takes text, images and files)"
    )


def _anthropic_source(position: int, kind: str, source: Any) -> dict[str, Any]:
    """An Anthropic image or document block (a base64 or url source) as an input part."""
    source = source if isinstance(source, Mapping) else {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = source.get("url")
    else:
        raise ValueError(
            f"messages[{position}]: an Anthropic {kind} block with a {source.get('type')!r} "
            "source cannot be sent to the Responses API (base64 or url sources can)"
        )
    if kind == "image":
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    if source.get("type") == "url":
        return {"type": "input_file", "file_url": url}
    return {"type": "input_file", "file_data": url, "filename": "document.pdf"}


def _tool_output(position: int, content: Any) -> Any:
    """A tool result's content as a `function_call_output`'s `output`: text, or parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, Sequence) and not isinstance(content, bytes):
        return [_input_part(position, part) for part in content]
    return json.dumps(content)


def _assistant(position: int, message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An assistant turn: its text as an assistant message, then its tool calls."""
    if message.get("audio"):
        raise ValueError(
            f"messages[{position}] is an assistant audio answer, which the Responses API "
            "cannot take back: send its transcript as text content"
        )
    items: list[dict[str, Any]] = []
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        text.append(content)
    elif content is not None:
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if isinstance(part, str):
                text.append(part)
            elif kind in ("text", "output_text", "input_text"):
                text.append(str(part.get("text") or ""))
            elif kind == "refusal":
                text.append(str(part.get("refusal") or ""))
            elif kind == "tool_use":  # Anthropic's
                calls.append(
                    _function_call_item(part.get("id"), part.get("name"), part.get("input"))
                )
            # thinking blocks and others have no place in a Responses assistant message
    if not text and message.get("refusal"):
        text.append(str(message["refusal"]))
    joined = "".join(text)
    if joined:
        items.append({"role": "assistant", "content": joined})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        calls.append(
            _function_call_item(call.get("id"), function.get("name"), function.get("arguments"))
        )
    return items + calls


def _function_call_item(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


# --- the next turn -------------------------------------------------------------------------

_REPLAYED_FIELDS: dict[str, tuple[str, ...]] = {
    "message": ("type", "id", "role", "status", "content", "phase"),
    "function_call": ("type", "id", "call_id", "name", "arguments", "namespace", "status"),
    "reasoning": ("type", "id", "summary", "content", "encrypted_content", "status"),
}
_CONTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "output_text": ("type", "text", "annotations"),
    "refusal": ("type", "refusal"),
}


def response_input_items(response: Response) -> list[dict[str, Any]]:
    """A Responses answer as input items for the next call (what OpenAI's docs do with
    `input += response.output`).

    With `Response.raw` (the SDK's final `Response`): its output items as the API takes them
    back — reasoning items (which keep a reasoning model's reasoning across tool calls),
    messages, function calls and server tool calls, without response-only fields (parsed
    output). A reasoning item needs its `encrypted_content` (ask for
    `include=["reasoning.encrypted_content"]`) when the response was not stored
    (`store=False`); without it the reasoning is left out, and the other items are sent
    without their ids (an item id refers to a stored response). An answer cut short (no
    finish reason) or from another provider: its text and tool calls, from the fields.

    >>> from rxllm.models import ToolCall
    >>> answer = Response(text="Let me check.", provider="openai",
    ...     tool_calls=(ToolCall(id="call_1", name="weather", arguments='{"city": "Oslo"}'),))
    >>> response_input_items(answer)
    [{'role': 'assistant', 'content': 'Let me check.'}, {'type': 'function_call', 'call_id': 'call_1', 'name': 'weather', 'arguments': '{"city": "Oslo"}'}]
    """  # noqa: E501
    raw = None
    if response.finish_reason is not None:
        with contextlib.suppress(Exception):  # a shape the SDK refused: the fields
            raw = response.raw
    output = getattr(raw, "output", None)
    if getattr(raw, "object", None) != "response" or not isinstance(output, list) or not output:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
        text = response.text or response.refusal or None
        return _assistant(0, {"role": "assistant", "content": text, "tool_calls": calls})
    items: list[dict[str, Any]] = [
        item.model_dump(mode="json", exclude_none=True, warnings=False)
        for item in output  # pyright: ignore[reportUnknownVariableType]
    ]
    stored = getattr(raw, "store", None) is not False
    keep_reasoning = all(
        stored or item.get("encrypted_content") for item in items if item["type"] == "reasoning"
    )
    sent: list[dict[str, Any]] = []
    for item in items:
        kind = item["type"]
        if kind == "reasoning" and not keep_reasoning:
            continue
        fields = _REPLAYED_FIELDS.get(kind)
        kept = item if fields is None else {name: item[name] for name in fields if name in item}
        if kind == "message":
            kept["content"] = [
                {k: part[k] for k in _CONTENT_FIELDS.get(part.get("type"), part) if k in part}
                for part in kept.get("content", [])
            ]
        if not keep_reasoning:
            kept.pop("id", None)
            if kind == "message":  # an output message without its id: as an easy message
                text = "".join(
                    p.get("text") or p.get("refusal") or "" for p in kept.get("content", [])
                )
                kept = {"role": "assistant", "content": text}
        sent.append(kept)
    return sent


def tool_output_items(results: Iterable[ToolResult]) -> list[dict[str, Any]]:
    """The `function_call_output` items that answer tool calls, one per result.

    >>> from rxllm.models import ToolCall
    >>> result = ToolResult(call=ToolCall(id="call_1", name="add"), output=3)
    >>> tool_output_items([result])
    [{'type': 'function_call_output', 'call_id': 'call_1', 'output': '3'}]
    """
    return [
        {"type": "function_call_output", "call_id": result.call.id, "output": result.content}
        for result in results
    ]
