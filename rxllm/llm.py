"""`LLM`: a provider bound to a model name, turning calls into cold observables.

`LLM.stream(...)` validates its arguments at once (bad input is a `ValueError` before
anything is subscribed) and returns an `Observable[Chunk]`; each subscription is one call.
Providers only supply `make_call(request)`; everything callers see is defined here.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol

import reactivex
from pydantic import BaseModel

from rxllm._checks import is_int, is_number
from rxllm.accumulator import Snapshot
from rxllm.calls import Call, call_subscriber
from rxllm.models import Chunk, Response, message_from_model

__all__ = [
    "LLM",
    "CallStream",
    "Provider",
    "Request",
    "check_messages",
    "check_params",
    "tool_name",
]

P = ParamSpec("P")

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# Options of rxllm itself, not sent to the provider.
_RXLLM_OPTIONS = ("stall_timeout", "max_retries")


@dataclass(frozen=True)
class Request:
    """One call's arguments, validated and normalized; each provider maps it to its own format."""

    messages: tuple[Mapping[str, Any], ...]
    """The conversation (system messages stay where the caller put them)."""
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


class Provider(Protocol):
    """What a provider implements: its name, its model, and how to make one call."""

    name: str
    model: str

    def check(self, request: Request) -> None:
        """Raise `ValueError` for arguments this provider cannot take (before any request)."""
        ...

    def make_call(self, request: Request) -> Call:
        """Build the call (runs at subscription; may raise e.g. `AuthenticationError`)."""
        ...


class CallStream(reactivex.Observable[Chunk]):
    """What `LLM.stream` returns: a cold `Observable[Chunk]` that knows its own request.

    It behaves as any observable; `ops.retry` uses `continue_from` to resume a call that
    failed after some text was delivered.
    """

    def __init__(self, provider: Provider, request: Request) -> None:
        self.provider = provider
        """The provider that makes the call."""
        self.request = request
        """The validated request each subscription sends."""
        super().__init__(call_subscriber(self._make_call))

    def _make_call(self) -> Call:
        return self.provider.make_call(self.request)

    def snapshots(self) -> reactivex.Observable[Snapshot]:
        """The same call emitting `Snapshot`s: `ops.accumulate()` applied to it, fused.

        `stream.pipe(ops.accumulate())` returns this; the call's bridge already keeps the
        response so far (for errors' `partial`), so the snapshots come from it directly.
        """
        return reactivex.Observable(call_subscriber(self._make_call, snapshots=True))

    def continue_from(self, text: str) -> CallStream | None:
        """The same call, asked to continue after `text` was already delivered.

        None when the provider cannot continue a response (then a retry must not resume).
        """
        continuation = getattr(self.provider, "continuation", None)
        if continuation is None:
            return None
        request = continuation(self.request, text)
        return None if request is None else CallStream(self.provider, request)


class LLM:
    """A model of one provider, with default request parameters.

    >>> import rxllm
    >>> llm = rxllm.scripted("Hi there!")
    >>> rxllm.collect(llm.stream("Say hi")).text
    'Hi there!'
    """

    def __init__(self, provider: Provider, **defaults: Any) -> None:
        self._provider = provider
        check_params(defaults)
        self._defaults = dict(defaults)
        # What this provider cannot take is known now: say so here, not at the first call.
        self.request("check the defaults")

    @property
    def provider(self) -> str:
        """The provider's name: "openai", "anthropic", "local", "scripted"."""
        return self._provider.name

    @property
    def model(self) -> str:
        """The model name requests are sent with."""
        return self._provider.model

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The request parameters merged into every call."""
        return dict(self._defaults)

    def __repr__(self) -> str:
        return f"LLM(provider={self.provider!r}, model={self.model!r})"

    def with_params(self, **params: Any) -> LLM:
        """A copy of this LLM whose defaults are updated with `params`.

        >>> import rxllm
        >>> rxllm.scripted("x").with_params(temperature=0.2).defaults["temperature"]
        0.2
        """
        return LLM(self._provider, **merge_params(self._defaults, params))

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any] | BaseModel] | None = None,
        system: str | None = None,
        tools: Sequence[Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> CallStream:
        """The call as a cold `Observable[Chunk]`: nothing is sent until subscription.

        - `prompt`: the user's text; or `messages`: dicts with `role` and `content`, or the
          SDKs' own message objects (`completion.choices[0].message`, an Anthropic
          `Message`); an rxllm `Response` goes back as `response.message()`.
        - `system`: a system prompt (Anthropic's `system`, an OpenAI system message).
        - `tools`: Python functions (schema from the signature, description from the
          docstring's first paragraph, parameters from its `Args:` section), pydantic model
          classes, or tool dicts in either provider's format.
        - `audio`: OpenAI's audio output options (`{"voice": ..., "format": "pcm16"}`).
        - `response_format`: a pydantic model class (structured output; pair it with
          `ops.partial(Model)`) or the provider's own dict.
        - `**params`: other request parameters, over the LLM's defaults (which may also
          hold any of the arguments above).

        Raises `ValueError` at once for bad arguments (no prompt and no messages, both, an empty
        prompt, an unknown role, a negative max_tokens, a tool that is not one, ...).
        """
        request = self.request(
            prompt,
            messages=messages,
            system=system,
            tools=tools,
            audio=audio,
            response_format=response_format,
            **params,
        )
        return CallStream(self._provider, request)

    def request(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any] | BaseModel] | None = None,
        system: str | None = None,
        tools: Sequence[Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> Request:
        """Validate and normalize the arguments of `stream` into a `Request`."""
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
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError(
                f"the prompt must be a str, not {type(prompt).__name__}; "
                "pass a list of messages with messages=[...]"
            )
        if prompt is not None and not prompt.strip():
            raise ValueError(
                "the prompt is empty: give the text to answer, e.g. llm.stream('Hello'); "
                "to send only a system prompt, put it in messages=[...] with a user message"
            )
        if "stream" in params:
            raise ValueError("rxllm always streams: remove the 'stream' argument")
        merged = merge_params(self._defaults, params)
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
            normalized = ({"role": "user", "content": prompt},)
        request = Request(
            messages=normalized,
            system=system,
            tools=list(tools) if tools is not None else None,
            audio=audio,
            response_format=response_format,
            params=merged,
            stall_timeout=stall_timeout,
            max_retries=max_retries,
        )
        self._provider.check(request)
        return request

    def prompt(self, fn: Callable[P, Any]) -> Callable[P, reactivex.Observable[Chunk]]:
        """Decorate a function returning a prompt (`str`) or messages into a streaming call.

        The decorated function takes exactly the original parameters (anything else is a
        `TypeError`). For a call's own parameters make another one from the same function:
        `llm.with_params(temperature=0.9).prompt(capital.__wrapped__)`. Put `@llm.prompt`
        under `@staticmethod`/`@classmethod`, not over them.

        >>> import rxllm
        >>> llm = rxllm.scripted("Paris.")
        >>> @llm.prompt
        ... def capital(country: str) -> str:
        ...     return f"What is the capital of {country}?"
        >>> rxllm.collect(capital("France")).text
        'Paris.'
        """
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"@llm.prompt takes a plain function returning the prompt; {fn.__name__} is "
                "async (the call it returns already works from asyncio: await "
                "rxllm.acollect(...) on it)"
            )
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> reactivex.Observable[Chunk]:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                unknown = "unexpected keyword" in str(exc)
                hint = (
                    f"; for parameters of the call (e.g. temperature) make the function with "
                    f"those: llm.with_params(temperature=...).prompt({fn.__name__}.__wrapped__)"
                    if unknown
                    else ""
                )
                raise TypeError(f"{fn.__name__}() {exc}{hint}") from None
            result = fn(*args, **kwargs)
            if isinstance(result, str):
                return self.stream(result)
            if isinstance(result, Sequence) and not isinstance(result, bytes | bytearray):
                return self.stream(messages=list(result))  # pyright: ignore[reportUnknownArgumentType]
            raise TypeError(
                f"{fn.__name__}() must return a prompt (str) or a list of messages, "
                f"not {type(result).__name__}"
            )

        return call


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
    from rxllm.providers.tools import tool_parameters

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
        checked.append(message)
    return tuple(checked)
