"""One call's arguments: `Request`, and the checks that turn `LLM.stream`'s arguments into it.

Everything here runs in `stream()` itself, before anything is subscribed, so bad input is a
`ValueError` that says what to change, never a failure later in a worker thread.

Why ~420 lines in one module: every check of `stream()`'s arguments, which must all run
before anything is subscribed and each say what to change.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pydantic import BaseModel

from rxllm._checks import is_int, is_number
from rxllm.messages import MessageFormat, message_from_model, tool_result_messages
from rxllm.models import Response, ToolResult
from rxllm.parts import Part

__all__ = [
    "ROLES",
    "Prompt",
    "Request",
    "build_request",
    "check_messages",
    "check_params",
    "check_sdk_params",
    "is_prompt",
    "merge_params",
    "tool_name",
    "with_turn",
]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens", "max_output_tokens")

Prompt: TypeAlias = str | Part | Sequence[str | Part | Mapping[str, Any]]
"""What `LLM.stream` takes as its prompt: the text, or a list of text and input parts
(`rxllm.Image`, `rxllm.Audio`, `rxllm.Document`, or a provider's own part dict)."""


@dataclass(frozen=True)
class Request:
    """One call's arguments, validated and normalized; each provider maps it to its own format.

    `llm.stream(...)` builds it at once (bad arguments are a `ValueError` there) and keeps
    it as the call's `request`; the model's defaults are merged in.

    >>> import rxllm
    >>> llm = rxllm.scripted("Hi.", temperature=0.2)
    >>> request = llm.stream("Hello", system="Be brief.", max_tokens=50).request
    >>> request.messages, request.system, dict(request.params)
    (({'role': 'user', 'content': 'Hello'},), 'Be brief.', {'temperature': 0.2, 'max_tokens': 50})
    """

    messages: tuple[Mapping[str, Any], ...]
    """The conversation (system messages stay where the caller put them). A content list
    holds text as `{"type": "text", "text": ...}`, input parts as `rxllm.parts.Part`s (each
    codec sends them in its protocol's form) and providers' own part dicts as given."""
    system: str | None = None
    """The `system=` argument, if any."""
    tools: Sequence[Any] | None = None
    """Tool definitions, in the provider's own format (or Python functions)."""
    audio: Mapping[str, Any] | None = None
    """Audio output options (OpenAI: voice and format)."""
    response_format: Any = None
    """Structured-output format: the provider's own dict, or a pydantic model class."""
    params: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """Other request parameters (temperature, max_tokens, ...), passed through."""
    stall_timeout: float | None = None
    """Seconds without a provider event before the call fails with `StreamTimeout`."""
    max_retries: int | None = None
    """Per-call override of the SDK's retries before the stream starts."""


def build_request(
    defaults: Mapping[str, Any],
    prompt: Prompt | None = None,
    *,
    messages: Sequence[Mapping[str, Any] | BaseModel] | None = None,
    system: str | None = None,
    tools: Sequence[Any] | None = None,
    audio: Mapping[str, Any] | None = None,
    response_format: Any = None,
    **params: Any,
) -> Request:
    """Validate and normalize `LLM.stream`'s arguments over an LLM's `defaults` into a
    `Request` (what no provider could take is a `ValueError` here; what one provider cannot
    take is its own `check`)."""
    if prompt is None and messages is None:
        raise ValueError(
            "stream() needs a prompt or messages: call llm.stream('your prompt') or "
            "llm.stream(messages=[{'role': 'user', 'content': '...'}])"
        )
    if prompt is not None and messages is not None:
        raise ValueError(
            "stream() takes a prompt or messages, not both: put the prompt in messages as "
            "{'role': 'user', 'content': prompt}"
        )
    content = None if prompt is None else _prompt_content(prompt)
    if "stream" in params:
        raise ValueError("rxllm always streams: remove the 'stream' argument")
    merged = merge_params(defaults, params)
    # stream()'s own arguments given as defaults (rxllm.openai(m, response_format=City))
    # apply to every call that does not give its own
    default = {name: merged.pop(name, None) for name in _OWN_ARGUMENTS}
    system = default["system"] if system is None else system
    tools = default["tools"] if tools is None else tools
    audio = default["audio"] if audio is None else audio
    if response_format is None:
        response_format = default["response_format"]
    if system is not None and not isinstance(system, str):
        raise ValueError(f"system must be a str, not {type(system).__name__}")
    if response_format is not None:
        _check_response_format(response_format)
    if tools is not None:
        _check_tools(tools)
    if audio is not None and not isinstance(audio, Mapping):
        raise ValueError(
            "audio must be a dict of OpenAI's audio output options, e.g. "
            f"{{'voice': 'alloy', 'format': 'pcm16'}}, not {audio!r}"
        )
    check_params(merged)
    stall_timeout = merged.pop("stall_timeout", None)
    max_retries = merged.pop("max_retries", None)
    if messages is not None:
        normalized = check_messages(messages)
    else:
        normalized = ({"role": "user", "content": content},)
    return Request(
        messages=normalized,
        system=system,
        tools=list(tools) if tools is not None else None,
        audio=audio,
        response_format=response_format,
        params=merged,
        stall_timeout=stall_timeout,
        max_retries=max_retries,
    )


_MERGED = ("extra_headers", "extra_query", "extra_body")
"""Request options whose keys add up: a call's own do not drop the defaults' (a tenant or
tracing header set once stays on every call)."""


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` over `defaults`; `extra_headers`, `extra_query` and `extra_body` are merged
    key by key (give a key `openai.Omit()` / `anthropic.Omit()` to drop a default one).
    A `None` overrides like any value: `timeout=None` is no timeout, `max_tokens=None` no
    cap (on OpenAI; Anthropic requires one, so there it means rxllm's default).

    >>> merge_params({"temperature": 0.2, "extra_headers": {"x-tenant": "a"}},
    ...              {"temperature": 0.7, "extra_headers": {"x-trace": "1"}})
    {'temperature': 0.7, 'extra_headers': {'x-tenant': 'a', 'x-trace': '1'}}
    """
    merged = dict(defaults)
    for name, value in params.items():
        old = merged.get(name)
        if name in _MERGED and isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[name] = {**old, **value}  # pyright: ignore[reportUnknownArgumentType]
        else:
            merged[name] = value
    return merged


def check_params(params: Mapping[str, Any]) -> None:
    """Raise `ValueError` for request parameters no provider could take."""
    for name in _TOKEN_LIMITS:
        value = params.get(name)
        if value is None:
            continue
        if not is_int(value):
            raise ValueError(f"{name} must be a positive int, not {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}: it caps the answer's tokens")
    temperature = params.get("temperature")
    if temperature is not None and (not is_number(temperature) or not 0 <= temperature <= 2):
        raise ValueError(f"temperature must be a number from 0 to 2, not {temperature!r}")
    stall = params.get("stall_timeout")
    if stall is not None and (not is_number(stall) or not stall > 0 or math.isnan(stall)):
        raise ValueError(f"stall_timeout must be a positive number of seconds, not {stall!r}")
    retries = params.get("max_retries")
    if retries is not None and (not is_int(retries) or retries < 0):
        raise ValueError(f"max_retries must be an int >= 0, not {retries!r}")


_OWN_ARGUMENTS = ("system", "tools", "audio", "response_format")
"""`stream()`'s named arguments that an LLM's defaults may hold too."""


def _check_response_format(value: Any) -> None:
    if isinstance(value, Mapping):
        return  # the provider's own format, e.g. {"type": "json_object"}
    if inspect.isclass(value) and issubclass(value, BaseModel):
        return
    raise ValueError(
        f"response_format must be a pydantic model class or the provider's own dict (e.g. "
        f"{{'type': 'json_object'}}), not {value!r}; for a list, a union or a dataclass, "
        "wrap it in a model: class Answer(BaseModel): items: list[Item]"
    )


def _check_tools(tools: Sequence[Any]) -> None:
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise ValueError(f"tools must be a list of tools, not {type(tools).__name__}")
    names: dict[str, int] = {}
    for position, tool in enumerate(tools):
        name = tool_name(position, tool)
        if name is None:
            continue
        if name in names:
            raise ValueError(
                f"tools[{names[name]}] and tools[{position}] are both named {name!r}: the model "
                "could not tell them apart; give each tool its own name"
            )
        names[name] = position


def tool_name(position: int, tool: Any) -> str | None:
    """The name the model calls `tool` by (None for a provider's own tool, e.g. web search);
    a ValueError when it is no tool a model can call."""
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if tool.get("type") == "function" and isinstance(function, Mapping):
            name = function.get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        elif "input_schema" in tool or "type" in tool:
            name = tool.get("name")
        else:
            raise ValueError(
                f"tools[{position}] is a dict in neither provider's format: OpenAI's is "
                "{'type': 'function', 'function': {'name': ..., 'parameters': {...}}}, "
                "Anthropic's {'name': ..., 'input_schema': {...}}"
            )
        return name if isinstance(name, str) else None
    if not callable(tool):
        raise ValueError(
            f"tools[{position}] must be a function, a pydantic model class or a tool dict "
            f"in a provider's format, not {type(tool).__name__}"
        )
    name = getattr(tool, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"tools[{position}] ({type(tool).__name__}) has no name the model can call it "
            "by: define it with def, or pass a tool dict with a 'name'"
        )
    from rxllm.tools import tool_parameters

    try:
        tool_parameters(tool)
    except Exception as exc:
        raise ValueError(
            f"tools[{position}] ({name}): its parameters have no JSON schema a model can "
            f"fill ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "annotate each with a JSON type (str, int, float, bool, list[...], a pydantic "
            "model, Literal[...])"
        ) from exc
    return name


def is_prompt(value: Any) -> bool:
    """Whether `value` is a prompt (text, a part, or a list with text or a part in it)
    rather than a list of messages (`@llm.prompt` functions may return either).

    >>> is_prompt(["What is this?", {"type": "image_url", "image_url": {"url": "..."}}])
    True
    >>> is_prompt([{"role": "user", "content": "Hi"}])
    False
    """
    if isinstance(value, str | Part):
        return True
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Sequence):
        return False
    return any(isinstance(item, str | Part) for item in value)


def _prompt_content(prompt: Any) -> str | list[Any]:
    """The user message's content for a prompt: the text, or the list of its parts."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError(
                "the prompt is empty: give the text to answer, e.g. llm.stream('Hello'); "
                "to send only a system prompt, put it in messages=[...] with a user message"
            )
        return prompt
    if isinstance(prompt, Part):
        return [prompt]
    if isinstance(prompt, bytes | bytearray | Mapping) or not isinstance(prompt, Sequence):
        raise ValueError(
            f"the prompt must be a str or a list of text and parts (rxllm.Image, rxllm.Audio, "
            f"rxllm.Document), not {type(prompt).__name__}; pass a list of messages with "
            "messages=[...]"
        )
    if not prompt:
        raise ValueError(
            "the prompt is an empty list: give the text (and parts) to answer, e.g. "
            "llm.stream(['What is in this picture?', rxllm.Image('cat.png')])"
        )
    content = _content_parts(prompt, "user", lambda j: f"prompt[{j}]")
    return list(prompt) if content is None else content


def _content_parts(
    items: Sequence[Any], role: str, where: Callable[[int], str]
) -> list[Any] | None:
    """A content list with its text as text parts and its input parts checked (only a
    user message takes them); None when it holds only providers' own part dicts, which
    pass unchanged."""
    converted: list[Any] = []
    changed = False
    for j, item in enumerate(items):
        if isinstance(item, str):
            if not item.strip():
                raise ValueError(f"{where(j)} is empty text: remove it, or give the text")
            converted.append({"type": "text", "text": item})
            changed = True
        elif isinstance(item, Part):
            if role != "user":
                raise ValueError(
                    f"{where(j)} is {item!r} in a {role} message: only user messages take "
                    "images, audio and documents; put it in a user message"
                )
            converted.append(item)
            changed = True
        elif isinstance(item, Mapping):
            if "role" in item:
                raise ValueError(
                    f"{where(j)} is a message (it has a 'role'), not a content part: pass "
                    "messages with messages=[...]"
                )
            if "type" not in item:
                raise ValueError(
                    f"{where(j)} is a dict without a 'type': a content part is text (a str), "
                    "an rxllm.Image, rxllm.Audio or rxllm.Document, or a provider's own part "
                    "dict, e.g. {'type': 'text', 'text': ...}"
                )
            converted.append(item)
        else:
            hint = (
                "; wrap a file in rxllm.Image(...), rxllm.Audio(...) or rxllm.Document(...)"
                if isinstance(item, bytes | bytearray | os.PathLike)
                else ""
            )
            raise ValueError(
                f"{where(j)} is {type(item).__name__}: a content part is text (a str), an "
                "rxllm.Image, rxllm.Audio or rxllm.Document, or a provider's own part "
                f"dict{hint}"
            )
    return converted if changed else None


def check_messages(
    messages: Sequence[Mapping[str, Any] | BaseModel],
) -> tuple[Mapping[str, Any], ...]:
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ValueError(
            "messages must be a list of {'role': ..., 'content': ...} dicts; "
            "for a single prompt pass it as the first argument"
        )
    if not messages:
        raise ValueError("messages is empty: give at least one {'role': 'user', ...} message")
    checked: list[Mapping[str, Any]] = []
    for position, given in enumerate(messages):
        if isinstance(given, Response):
            raise ValueError(
                f"messages[{position}] is a Response, not a message: pass response.message()"
            )
        # an SDK's message object, e.g. response.raw.choices[0].message, is taken as a dict
        message = message_from_model(given) if isinstance(given, BaseModel) else given
        if not isinstance(message, Mapping):
            raise ValueError(
                f"messages[{position}] must be a dict with 'role' and 'content', "
                f"not {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(
                f"messages[{position}] has unknown role {role!r}; use one of "
                f"{', '.join(sorted(ROLES))}"
            )
        if "content" not in message and not message.get("tool_calls"):
            raise ValueError(f"messages[{position}] ({role}) has no 'content'")
        content = message.get("content")
        if content is not None and (
            isinstance(content, bytes) or not isinstance(content, str | Sequence)
        ):
            raise ValueError(
                f"messages[{position}] content must be a str or a list of content parts, "
                f"not {type(content).__name__}"
            )
        if content is not None and not isinstance(content, str):
            parts = _content_parts(content, str(role), _content_place(position))
            if parts is not None:
                message = {**message, "content": parts}
        checked.append(message)
    return tuple(checked)


def _content_place(position: int) -> Callable[[int], str]:
    return lambda j: f"messages[{position}].content[{j}]"


def check_sdk_params(request: Request, allowed: frozenset[str], api: str) -> None:
    """Reject parameters an SDK's `create` does not take, before any request."""
    unknown = sorted(set(request.params) - allowed)
    if unknown:
        raise ValueError(
            f"{api} take no parameter {', '.join(map(repr, unknown))}; "
            "send provider extensions with extra_body={...}"
        )


def with_turn(
    request: Request, answer: Response, results: Sequence[ToolResult], fmt: MessageFormat
) -> Request:
    """`request` with `answer` as the assistant's turn and its tools' `results` after it,
    in `fmt` (a tool loop's next call in a chat-style protocol)."""
    added = check_messages([answer.message(fmt), *tool_result_messages(results, fmt)])
    return dataclasses.replace(request, messages=(*request.messages, *added))
