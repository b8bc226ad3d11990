"""`LLM`: a provider bound to a model name, turning calls into cold observables.

`LLM.stream(...)` validates its arguments at once (bad input is a `ValueError` before
anything is subscribed) and returns an `Observable[Chunk]`; each subscription is one call.
Providers only supply `make_call(request)`; everything callers see is defined here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import reactivex
from pydantic import BaseModel

from rxllm.accumulator import Snapshot
from rxllm.bridge import Call, call_subscriber
from rxllm.codec import Provider
from rxllm.models import Chunk, Response, ToolResult
from rxllm.request import Prompt, Request, build_request, check_params, is_prompt, merge_params
from rxllm.telemetry import CallInfo

__all__ = ["LLM", "CallStream"]

P = ParamSpec("P")


class CallStream(reactivex.Observable[Chunk]):
    """What `LLM.stream` returns: a cold `Observable[Chunk]` that knows its own request.

    It behaves as any observable; `ops.retry` and `rxllm.fallback` use `continue_from` to
    resume a call that failed after some text was delivered, `ops.tool_loop` uses
    `follow_up` to make the next call of a loop.
    """

    def __init__(self, provider: Provider, request: Request) -> None:
        self.provider = provider
        """The provider that makes the call."""
        self.request = request
        """The validated request each subscription sends."""
        super().__init__(call_subscriber(self._make_call, describe=self._describe))

    def _make_call(self) -> Call:
        return self.provider.make_call(self.request)

    def _describe(self) -> CallInfo:
        return CallInfo(self.provider.name, self.provider.model, self.request, self._secrets)

    def _secrets(self) -> tuple[str, ...]:
        return self.provider.codec(self.request).secrets()

    def snapshots(self) -> reactivex.Observable[Snapshot]:
        """The same call emitting `Snapshot`s: `ops.accumulate()` applied to it, fused.

        `stream.pipe(ops.accumulate())` returns this; the call's bridge already keeps the
        response so far (for errors' `partial`), so the snapshots come from it directly.
        """
        return reactivex.Observable(
            call_subscriber(self._make_call, snapshots=True, describe=self._describe)
        )

    def continue_from(self, text: str) -> CallStream | None:
        """The same call, asked to continue after `text` was already delivered.

        None when the provider's protocol cannot continue an answer (then a retry must not
        resume).
        """
        request = self.provider.codec(self.request).continuation(self.request, text)
        return None if request is None else CallStream(self.provider, request)

    def follow_up(self, answer: Response, results: Sequence[ToolResult]) -> CallStream:
        """The next call of a tool loop: this request, the assistant's `answer` and the
        `results` of its tool calls, in the provider's protocol."""
        request = self.provider.codec(self.request).follow_up(self.request, answer, results)
        return CallStream(self.provider, request)


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
        prompt: Prompt | None = None,
        *,
        messages: Sequence[Mapping[str, Any] | BaseModel] | None = None,
        system: str | None = None,
        tools: Sequence[Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> CallStream:
        """The call as a cold `Observable[Chunk]`: nothing is sent until subscription.

        - `prompt`: the user's text, or a list of text and input parts
          (`["What is in this picture?", rxllm.Image("cat.png")]`: `rxllm.Image`,
          `rxllm.Audio`, `rxllm.Document`); or `messages`: dicts with `role` and `content`
          (a str, or such a list, which may also hold the provider's own part dicts), or
          the SDKs' own message objects (`completion.choices[0].message`, an Anthropic
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
        prompt, an unknown role, a negative max_tokens, a tool that is not one, a part the
        provider cannot take, ...).
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
        prompt: Prompt | None = None,
        *,
        messages: Sequence[Mapping[str, Any] | BaseModel] | None = None,
        system: str | None = None,
        tools: Sequence[Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> Request:
        """Validate and normalize the arguments of `stream` into a `Request`."""
        request = build_request(
            self._defaults,
            prompt,
            messages=messages,
            system=system,
            tools=tools,
            audio=audio,
            response_format=response_format,
            **params,
        )
        self._provider.check(request)
        return request

    def prompt(self, fn: Callable[P, Any]) -> Callable[P, reactivex.Observable[Chunk]]:
        """Decorate a function returning a prompt (a `str`, or a list of text and parts) or
        messages into a streaming call.

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
            if is_prompt(result):  # text, or a list with text or an input part in it
                return self.stream(result)
            if isinstance(result, Sequence) and not isinstance(result, bytes | bytearray):
                return self.stream(messages=list(result))  # pyright: ignore[reportUnknownArgumentType]
            raise TypeError(
                f"{fn.__name__}() must return a prompt (a str, or a list of text and parts) "
                "or a list of messages, "
                f"not {type(result).__name__}"
            )

        return call
