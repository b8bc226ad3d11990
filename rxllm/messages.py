"""Conversation messages in each provider's own format: an answer as the assistant turn
to send back, tool results as the messages that answer its calls, an SDK's message object
as the dict a request takes.

`Response.message()`, `Response.messages()` and `ToolResult.message(s)` are the public
face of this module; `ops.tool_loop` and `ops.retry` build their next requests with it.
It reads the models' fields by name only, so it sits below `rxllm.models` (which calls it)
and imports none of rxllm.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import BaseModel

    from rxllm.models import Response, ToolResult

__all__ = [
    "ANTHROPIC_FORMAT",
    "OPENAI_FORMAT",
    "MessageFormat",
    "assistant_message",
    "message_format",
    "message_from_model",
    "says_nothing",
    "tool_result_messages",
]

MessageFormat = Literal["openai", "anthropic"]
"""The two ways providers write a conversation: OpenAI's (Chat Completions, and every
OpenAI-compatible server) and Anthropic's (Messages)."""

OPENAI_FORMAT: set[str] = {"openai", "local", "scripted"}
"""Provider names (`llm.provider`) that take OpenAI's format; `rxllm.model`'s
OpenAI-compatible services are added as they are registered."""
ANTHROPIC_FORMAT: set[str] = {"anthropic"}
"""Provider names that take Anthropic's format."""


def message_format(provider: str) -> MessageFormat:
    """The message format a provider (`llm.provider`) takes: Anthropic's for "anthropic",
    OpenAI's for "openai", the local and scripted providers and OpenAI-compatible services.

    >>> message_format("scripted")
    'openai'
    """
    if provider in ANTHROPIC_FORMAT:
        return "anthropic"
    if provider in OPENAI_FORMAT:
        return "openai"
    known = ", ".join(repr(name) for name in sorted(OPENAI_FORMAT | ANTHROPIC_FORMAT))
    raise ValueError(f"provider must be one of {known} (an LLM's `.provider`), not {provider!r}")


def assistant_message(response: Response, fmt: MessageFormat, own: MessageFormat) -> dict[str, Any]:
    """`response` as the assistant turn in `fmt`; `own` is the format of the provider that
    answered (its raw object is read for what the fields do not hold: an Anthropic thinking
    block's signature, an OpenAI audio answer's id)."""
    if fmt == "anthropic":
        return {"role": "assistant", "content": _anthropic_blocks(response, own)}
    return _openai_message(response, own)


def tool_result_messages(results: Iterable[ToolResult], fmt: MessageFormat) -> list[dict[str, Any]]:
    """The messages that answer several calls: one per result (OpenAI) or one user message
    with a block per result (Anthropic, which wants all results of a turn together)."""
    results = list(results)
    if fmt == "anthropic":
        blocks = [_tool_result_block(result) for result in results]
        return [{"role": "user", "content": blocks}] if blocks else []
    return [
        {"role": "tool", "tool_call_id": result.call.id, "content": result.content}
        for result in results
    ]


def _tool_result_block(result: ToolResult) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": result.call.id,
        "content": result.content,
        "is_error": result.is_error,
    }


def _openai_message(response: Response, own: MessageFormat) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if response.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in response.tool_calls
        ]
    if response.refusal:
        message["refusal"] = response.refusal
    if response.audio and own == "openai":
        audio = getattr(getattr(_raw_message(response), "audio", None), "id", None)
        if audio:  # a later turn refers to the audio answer by its id
            message["audio"] = {"id": audio}
    return message


def _anthropic_blocks(response: Response, own: MessageFormat) -> list[dict[str, Any]]:
    if own == "anthropic":
        raw = _raw_message(response)
        content = getattr(raw, "content", None)
        if isinstance(content, list) and len(content) > 0:  # pyright: ignore[reportUnknownArgumentType]
            sent = [_anthropic_block(block) for block in content]  # pyright: ignore[reportUnknownVariableType]
            # a thinking block cut before its signature cannot be sent back, nor can
            # an empty text block (the API refuses those)
            sent = [b for b in sent if _can_send(b)]
            if _says_the_same(response, sent):
                return sent
            # else the events are of more than one call (a resumed retry): the fields
    blocks: list[dict[str, Any]] = []
    if response.text:
        blocks.append({"type": "text", "text": response.text})
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.args}
        for call in response.tool_calls
    )
    return blocks


def _says_the_same(response: Response, blocks: list[dict[str, Any]]) -> bool:
    """Whether Anthropic content blocks hold this answer's text and tool calls (their
    inputs compared where the arguments parse: a call cut off keeps the API's input)."""
    text = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    uses = [b for b in blocks if b["type"] == "tool_use"]
    if text != response.text or [b.get("id") for b in uses] != [c.id for c in response.tool_calls]:
        return False
    for block, call in zip(uses, response.tool_calls, strict=True):
        try:
            if block.get("input") != call.args:
                return False
        except ValueError:
            continue
    return True


def _raw_message(response: Response) -> Any:
    """The SDK's message (OpenAI: the first choice's), or None if it cannot be built."""
    try:
        raw = response.raw
    except Exception:  # e.g. shapes the SDK's own accumulator rejects
        return None
    choices = getattr(raw, "choices", None)
    if choices is not None:
        return choices[0].message if choices else None
    return raw


def says_nothing(message: dict[str, Any]) -> bool:
    """Whether an assistant message has nothing a provider would take back."""
    return not any(message.get(key) for key in ("content", "tool_calls", "refusal", "audio"))


def _can_send(block: dict[str, Any]) -> bool:
    kind = block["type"]
    if kind == "thinking":
        return bool(block.get("signature"))
    return kind != "text" or bool(block.get("text"))


_ANTHROPIC_BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("type", "text"),
    "thinking": ("type", "thinking", "signature"),
    "redacted_thinking": ("type", "data"),
    "tool_use": ("type", "id", "name", "input"),
}


def _anthropic_block(block: Any) -> dict[str, Any]:
    """An Anthropic response content block as a request block: the fields the API takes
    back (a parsed output or empty citations dropped); blocks of other types (server tools)
    as the API sent them."""
    dumped: dict[str, Any] = block.model_dump(mode="json", exclude_none=True)
    fields = _ANTHROPIC_BLOCK_FIELDS.get(dumped.get("type", ""))
    if fields is None:
        return dumped
    return {name: dumped[name] for name in fields if name in dumped}


_OPENAI_MESSAGE_FIELDS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call"}
)


def message_from_model(model: BaseModel) -> dict[str, Any]:
    """A message given as an SDK object (OpenAI's `ChatCompletionMessage`, Anthropic's
    `Message`, or any model with a `role`) as the dict a request takes: what the API takes
    back, without the response-only fields (`parsed`, `annotations`, audio data)."""
    content = getattr(model, "content", None)
    if getattr(model, "type", None) == "message" and isinstance(content, list):
        blocks: list[Any] = content  # pyright: ignore[reportUnknownVariableType]
        role = getattr(model, "role", "assistant")
        return {"role": role, "content": [_anthropic_block(block) for block in blocks]}
    dumped = model.model_dump(mode="json", exclude_none=True)
    message = {k: v for k, v in dumped.items() if k in _OPENAI_MESSAGE_FIELDS}
    if "content" not in message and "content" in type(model).model_fields:
        message["content"] = None  # an answer that is only tool calls, a refusal or audio
    if "tool_calls" in message:
        message["tool_calls"] = [
            {
                "id": call.get("id"),
                "type": call.get("type", "function"),
                "function": {
                    k: v for k, v in call["function"].items() if k in ("name", "arguments")
                },
            }
            for call in message["tool_calls"]
        ]
    if isinstance(message.get("audio"), dict):
        message["audio"] = {"id": message["audio"].get("id")}
    return message
