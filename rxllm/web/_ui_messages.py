"""`ui_messages()`: the conversation a `useChat` request sends, as rxllm messages.

`useChat` posts `{"id": ..., "messages": [...], "trigger": ...}` where each message is a UI
message: `{"id", "role", "parts": [...]}`. Its parts are what the page showed: text, files,
reasoning, step boundaries, and one part per tool call holding its input and, once run, its
output. A provider wants messages in its own format instead, with an assistant turn that
called tools followed by their results; each step of an assistant message is such a turn,
formatted by `Response.message` and `ToolResult.messages` as `ops.tool_loop` formats them.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rxllm.models import Response, ToolCall, ToolResult

__all__ = ["ui_messages"]

Format = Literal["openai", "anthropic"]

_ANTHROPIC_FORMAT = frozenset({"anthropic", "bedrock", "vertex"})
"""Providers that take Anthropic's message format (every other speaks OpenAI's)."""

_RESULT_STATES = frozenset({"output-available", "output-error", "output-denied"})
"""Tool part states that hold a result; calls in other states (still streaming, waiting for
an approval) have none to send back, and a call without its result is refused by the
providers, so they are left out."""

_OPENAI_AUDIO = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def ui_messages(
    body: Mapping[str, Any] | Sequence[Any], *, provider: str = "openai"
) -> list[dict[str, Any]]:
    """The messages of a `useChat` request body as rxllm messages, for `llm.stream(messages=...)`.

    `body` is the request's JSON (`await request.json()`), or its `messages` list. A
    message's text parts are joined in order (as `Response.text` joins a streamed answer's
    text parts); `step-start`, reasoning, source and data parts are dropped; file parts
    (`data:` URLs, or http(s) URLs where the provider takes them) become input parts:
    images, PDFs, audio (OpenAI: wav, mp3) and text files. An assistant message is one
    assistant message per step, each followed by the results of its tool calls (a tool part
    in state `output-available` or `output-error`; a call with no result yet is left out).
    `provider` (`llm.provider`) picks the format: Anthropic's for "anthropic", OpenAI's
    for the others.

    >>> body = {"messages": [
    ...     {"id": "1", "role": "user", "parts": [{"type": "text", "text": "Weather in Oslo?"}]},
    ...     {"id": "2", "role": "assistant", "parts": [
    ...         {"type": "step-start"},
    ...         {"type": "tool-weather", "toolCallId": "c1", "state": "output-available",
    ...          "input": {"city": "Oslo"}, "output": "sunny"},
    ...         {"type": "step-start"},
    ...         {"type": "text", "text": "Sunny."}]},
    ...     {"id": "3", "role": "user", "parts": [{"type": "text", "text": "Thanks!"}]}]}
    >>> [m["role"] for m in ui_messages(body)]
    ['user', 'assistant', 'tool', 'assistant', 'user']
    >>> ui_messages(body)[2]
    {'role': 'tool', 'tool_call_id': 'c1', 'content': 'sunny'}
    """
    if not isinstance(provider, str):
        raise TypeError(f"provider must be a provider's name (llm.provider), not {provider!r}")
    style: Format = "anthropic" if provider in _ANTHROPIC_FORMAT else "openai"
    given = body.get("messages") if isinstance(body, Mapping) else body
    if isinstance(given, str | bytes) or not isinstance(given, Sequence):
        what = (
            f"a body whose 'messages' is {_kind(given)}"
            if isinstance(body, Mapping)
            else _kind(body)
        )
        raise ValueError(
            "ui_messages() takes a useChat request body ({'messages': [...], ...}, e.g. "
            f"await request.json()) or its messages list, not {what}"
        )
    messages: list[dict[str, Any]] = []
    for position, message in enumerate(given):
        where = f"messages[{position}]"
        if not isinstance(message, Mapping):
            raise ValueError(
                f"{where} must be a UI message (a dict with 'role' and 'parts'), "
                f"not {_kind(message)}"
            )
        role = message.get("role")
        parts = message.get("parts")
        if isinstance(parts, str | bytes) or not isinstance(parts, Sequence):
            raise ValueError(
                f"{where} has no 'parts' list: UI messages (AI SDK 5 and later) hold "
                "their content in parts"
            )
        for n, part in enumerate(parts):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise ValueError(
                    f"{where}.parts[{n}] must be a dict with a 'type', not {_kind(part)}"
                )
        if role == "assistant":
            messages += _assistant(parts, style, where)
        elif role in ("user", "system"):
            messages.append({"role": role, "content": _content(parts, style, where)})
        else:
            raise ValueError(
                f"{where} has role {role!r}; UI messages are 'system', 'user' or 'assistant'"
            )
    return messages


def _kind(value: object) -> str:
    return type(value).__name__


def _content(
    parts: Sequence[Mapping[str, Any]], style: Format, where: str
) -> str | list[dict[str, Any]]:
    """A user or system message's content: its text, or text and input parts in order."""
    content: list[dict[str, Any]] = []
    joining = False  # the last block is the text of text parts (not of a text file)
    for n, part in enumerate(parts):
        if part["type"] == "text":
            if joining:
                content[-1]["text"] += _text(part, f"{where}.parts[{n}]")
            else:
                content.append({"type": "text", "text": _text(part, f"{where}.parts[{n}]")})
            joining = True
        elif part["type"] == "file":
            content.append(_file(part, style, f"{where}.parts[{n}]"))
            joining = False
    if any(part["type"] == "file" for part in parts):
        return content
    return "".join(block["text"] for block in content)


def _text(part: Mapping[str, Any], where: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where} is a text part without a 'text' string")
    return text


def _file(part: Mapping[str, Any], style: Format, where: str) -> dict[str, Any]:
    """A file part as the provider's input part."""
    url = part.get("url")
    media_type = part.get("mediaType")
    if not isinstance(url, str) or not isinstance(media_type, str):
        raise ValueError(f"{where} is a file part without 'url' and 'mediaType' strings")
    media_type = media_type.lower()
    data = _data(url, where)  # base64, or None for a URL
    if media_type.startswith("text/"):
        if data is None:
            raise ValueError(f"{where}: a text file must come as a data: URL, not {url[:40]!r}")
        return {"type": "text", "text": base64.b64decode(data).decode("utf-8", "replace")}
    if media_type.startswith("image/"):
        if style == "openai":
            return {"type": "image_url", "image_url": {"url": url}}
        source = (
            {"type": "url", "url": url}
            if data is None
            else {"type": "base64", "media_type": media_type, "data": data}
        )
        return {"type": "image", "source": source}
    if media_type == "application/pdf":
        if style == "openai":
            if data is None:
                raise ValueError(
                    f"{where}: OpenAI takes a PDF as a data: URL, not a link ({url[:40]!r})"
                )
            filename = part.get("filename") or "document.pdf"
            return {"type": "file", "file": {"filename": filename, "file_data": url}}
        source = (
            {"type": "url", "url": url}
            if data is None
            else {"type": "base64", "media_type": media_type, "data": data}
        )
        return {"type": "document", "source": source}
    if media_type in _OPENAI_AUDIO and style == "openai":
        if data is None:
            raise ValueError(
                f"{where}: OpenAI takes audio as a data: URL, not a link ({url[:40]!r})"
            )
        return {
            "type": "input_audio",
            "input_audio": {"data": data, "format": _OPENAI_AUDIO[media_type]},
        }
    raise ValueError(
        f"{where}: a file of type {media_type!r} cannot be sent to {style} models "
        "(images, PDFs, text files, and wav or mp3 audio for OpenAI can)"
    )


def _data(url: str, where: str) -> str | None:
    """The base64 data of a `data:` URL (None for an http(s) URL)."""
    if url.startswith(("http://", "https://")):
        return None
    if not url.startswith("data:") or "," not in url:
        raise ValueError(
            f"{where}: a file's url must be a data: URL or an http(s) URL, not {url[:40]!r}"
        )
    header, payload = url[5:].split(",", 1)
    if header.endswith(";base64"):
        try:
            base64.b64decode(payload, validate=True)
        except binascii.Error as error:
            raise ValueError(f"{where}: the data: URL is not valid base64 ({error})") from error
        return payload
    return base64.b64encode(urllib.parse.unquote_to_bytes(payload)).decode()


def _assistant(
    parts: Sequence[Mapping[str, Any]], style: Format, where: str
) -> list[dict[str, Any]]:
    """An assistant UI message as provider messages: per step, the answer and its results."""
    messages: list[dict[str, Any]] = []
    text = ""
    calls: list[ToolCall] = []
    results: list[ToolResult] = []

    def end_step() -> None:
        nonlocal text
        if text or calls:
            answer = Response(text=text, tool_calls=tuple(calls))
            messages.append(answer.message(style))
            messages.extend(ToolResult.messages(results, style))
        text = ""
        calls.clear()
        results.clear()

    for n, part in enumerate(parts):
        kind = part["type"]
        if kind == "step-start":
            end_step()
        elif kind == "text":
            if calls:  # text after tool calls without a step boundary: it answers them
                end_step()
            text += _text(part, f"{where}.parts[{n}]")
        elif kind.startswith("tool-") or kind == "dynamic-tool":
            result = _tool_result(part, f"{where}.parts[{n}]")
            if result is not None:
                calls.append(result.call)
                results.append(result)
    end_step()
    return messages


def _tool_result(part: Mapping[str, Any], where: str) -> ToolResult | None:
    """A tool part's call and its result (None while it has no result)."""
    if part.get("state") not in _RESULT_STATES:
        return None
    name = part.get("toolName") if part["type"] == "dynamic-tool" else part["type"][5:]
    call_id = part.get("toolCallId")
    if not isinstance(name, str) or not name or not isinstance(call_id, str):
        raise ValueError(f"{where} is a tool part without a tool name and a 'toolCallId'")
    call = ToolCall(id=call_id, name=name, arguments=_arguments(part))
    if part["state"] == "output-available":
        return ToolResult(call=call, output=part.get("output"))
    if part["state"] == "output-denied":
        return ToolResult(call=call, error="the user denied this tool call")
    error = part.get("errorText")
    return ToolResult(call=call, error=error if isinstance(error, str) else "the tool failed")


def _arguments(part: Mapping[str, Any]) -> str:
    """The call's arguments as JSON text: its input, or the raw text of an input that did
    not parse when it is a JSON object after all, else `{}`."""
    value = part.get("input")
    if value is None:
        raw = part.get("rawInput")
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except json.JSONDecodeError:
            value = None
    return json.dumps(value if isinstance(value, dict) else {}, ensure_ascii=False)
