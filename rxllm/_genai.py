"""Messages in the JSON shapes of the OpenTelemetry GenAI conventions
(`gen_ai.input.messages`, `gen_ai.output.messages`): each message `{"role", "parts"}`,
a part `{"type": "text" | "tool_call" | "tool_call_response" | "reasoning" | "blob" |
"uri" | ..., ...}`. Read from OpenAI's and Anthropic's message formats alike; pure
functions over dicts and the fields of a `Response` (by name), for `rxllm.telemetry`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["input_messages", "output_messages", "tool_arguments"]

_OUTPUT_FINISH: Mapping[str, str] = {"tool_calls": "tool_call"}
"""rxllm's finish reasons whose word in the output-messages schema differs."""


def tool_arguments(text: str) -> Any:
    """A tool call's JSON arguments as an object (the conventions' form), else the text.

    >>> tool_arguments('{"city": "Oslo"}'), tool_arguments("not json")
    ({'city': 'Oslo'}, 'not json')
    """
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


def input_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as `gen_ai.input.messages`: `{"role", "parts": [...]}` per message,
    from OpenAI's or Anthropic's format (tool calls and results, images, thinking).

    >>> input_messages([{"role": "user", "content": "Hi"}])
    [{'role': 'user', 'parts': [{'type': 'text', 'content': 'Hi'}]}]
    """
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = str(message.get("role", "user"))
        parts = list(_content_parts(message.get("content")))
        for call in message.get("tool_calls") or ():  # OpenAI's assistant tool calls
            if not isinstance(call, Mapping):
                continue
            function = call.get("function")
            if not isinstance(function, Mapping):
                function = {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name", ""),
                    "arguments": tool_arguments(str(function.get("arguments") or "")),
                }
            )
        if role == "tool":  # OpenAI's tool result: the whole content is the response
            response = message.get("content")
            parts = [
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": response,
                }
            ]
        entry: dict[str, Any] = {"role": role, "parts": parts}
        if isinstance(message.get("name"), str):
            entry["name"] = message["name"]
        converted.append(entry)
    return converted


def _content_parts(content: Any) -> Iterator[dict[str, Any]]:
    if content is None:
        return
    if isinstance(content, str):
        yield {"type": "text", "content": content}
        return
    if not isinstance(content, Sequence):
        yield {"type": type(content).__name__.lower()}
        return
    for block in content:
        if isinstance(block, str):
            yield {"type": "text", "content": block}
        elif isinstance(block, Mapping):
            yield _block_part(block)
        else:  # an input part object (rxllm.Image, ...): its kind, not its bytes
            yield {"type": type(block).__name__.lower()}


def _block_part(block: Mapping[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 - one per block type
    kind = str(block.get("type", ""))
    if kind in ("text", "input_text", "output_text"):
        return {"type": "text", "content": block.get("text", "")}
    if kind in ("thinking", "reasoning"):
        return {"type": "reasoning", "content": block.get("thinking", block.get("text", ""))}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": block.get("id"),
            "name": block.get("name", ""),
            "arguments": block.get("input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": block.get("tool_use_id"),
            "response": block.get("content"),
        }
    if kind == "image_url":
        url = block.get("image_url")
        url = url.get("url") if isinstance(url, Mapping) else url
        return _media("image", str(url or ""))
    if kind in ("image", "document"):
        source = block.get("source")
        modality = "image" if kind == "image" else "document"
        if isinstance(source, Mapping):
            if source.get("type") == "url":
                return {"type": "uri", "modality": modality, "uri": source.get("url", "")}
            if source.get("type") == "base64":
                return {
                    "type": "blob",
                    "modality": modality,
                    "mime_type": source.get("media_type"),
                    "content": source.get("data", ""),
                }
        return {"type": kind}
    if kind == "input_audio":
        audio = block.get("input_audio")
        if isinstance(audio, Mapping):
            return {
                "type": "blob",
                "modality": "audio",
                "mime_type": f"audio/{audio.get('format', '')}",
                "content": audio.get("data", ""),
            }
    return {"type": kind or "unknown"}


def _media(modality: str, url: str) -> dict[str, Any]:
    """An image given by URL: a `uri` part, or a `blob` for a data URL (as the schema says)."""
    if url.startswith("data:") and "," in url:
        head, data = url[5:].split(",", 1)
        return {
            "type": "blob",
            "modality": modality,
            "mime_type": head.split(";", 1)[0] or None,
            "content": data,
        }
    return {"type": "uri", "modality": modality, "uri": url}


def output_messages(response: Any, outcome: str, failed: bool) -> list[dict[str, Any]]:
    """An answer (a `Response`, read by field name) as `gen_ai.output.messages`: one
    assistant message (rxllm streams one choice) with its reasoning, text, refusal and tool
    calls, and its finish reason in the schema's words (`tool_call`; `error` for a failed
    call, `cancelled` for a stopped one that never said why)."""
    parts: list[dict[str, Any]] = []
    if response.thinking:
        parts.append({"type": "reasoning", "content": response.thinking})
    if response.text:
        parts.append({"type": "text", "content": response.text})
    if response.refusal:
        parts.append({"type": "refusal", "content": response.refusal})
    parts.extend(
        {
            "type": "tool_call",
            "id": call.id,
            "name": call.name,
            "arguments": tool_arguments(call.arguments),
        }
        for call in response.tool_calls
    )
    if failed:
        reason = "error"
    elif response.finish_reason:
        reason = _OUTPUT_FINISH.get(response.finish_reason, response.finish_reason)
    else:
        reason = "cancelled" if outcome == "cancelled" else ""
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]
