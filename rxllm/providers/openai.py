"""OpenAI Chat Completions streaming (and any OpenAI-compatible server via `base_url`).

The official SDK sends the request (auth, retries, status errors) in its streaming-response
mode; `OpenAIEvents` maps each `chat.completion.chunk` JSON to a `Chunk`. `Chunk.raw` is
the SDK's `ChatCompletionChunk`, `Response.raw` what the SDK's `ChatCompletionStreamState`
accumulates from the same chunks — both built only when read.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from rxllm import errors
from rxllm.accumulator import register_raw_builder
from rxllm.calls import run_awaitable
from rxllm.llm import LLM, Request, check_params
from rxllm.models import (
    Chunk,
    Response,
    ToolCallDelta,
    Usage,
    register_event_builder,
    text_chunk_maker,
)
from rxllm.providers._http import SDKProvider, parse_json, sync_http_client
from rxllm.providers.tools import tool_schema

__all__ = ["OpenAIEvents", "OpenAIProvider", "openai_llm"]

PROVIDER = "openai"
_log = logging.getLogger("rxllm.openai")
CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly where it stopped: do not repeat "
    "anything, do not add any preamble."
)
_CREATE_PARAMS = frozenset(
    inspect.signature(openai.resources.chat.completions.Completions.create).parameters
) - {"self", "messages", "model", "stream"}


class OpenAIEvents:
    """Maps Chat Completions stream events (parsed JSON) to `Chunk`s. Pure; one per call."""

    __slots__ = ("_call_ids", "_text", "done", "finished")

    def __init__(self) -> None:
        self._text = text_chunk_maker(PROVIDER)
        self._call_ids: dict[str, int] = {}  # for tool calls sent without an index (Gemini)
        self.done = False
        self.finished = False

    def map(self, event: str | None, data: Any, payload: bytes | None = None) -> Chunk | None:
        """The chunk for one event; raises `StreamError` for an error event."""
        if data == b"[DONE]":
            self.done = True
            return None
        if type(data) is not dict:
            return None
        error = data.get("error")
        if error:
            raise errors.stream_error_event(PROVIDER, error)
        choices = data.get("choices")
        if choices and payload is not None and not data.get("usage"):
            choice = choices[0]
            delta = choice.get("delta")
            if (
                type(delta) is dict
                and len(delta) == 1
                and not choice.get("finish_reason")  # null, or "" (Ollama, SGLang)
                and type(content := delta.get("content")) is str
                and not choice.get("index")
            ):  # the bulk of a stream: a text delta alone, of the first choice
                return self._text(
                    content, data.get("model") or None, data.get("id") or None, payload
                )
        content = thinking = refusal = transcript = ""
        audio = b""
        tool_calls: tuple[ToolCallDelta, ...] = ()
        finish_reason = None
        # With n > 1 the choices' deltas interleave: chunks follow the first choice (the
        # others stay in each chunk's .raw, and so in Response.raw).
        choice = _first_choice(choices) if choices else None
        if choice is not None:
            delta = choice.get("delta")
            if delta:
                content = delta.get("content") or ""
                if type(content) is not str:  # e.g. Mistral's list of typed parts
                    content, thinking = _content_parts(content)
                refusal = delta.get("refusal") or ""
                thinking = delta.get("reasoning_content") or delta.get("reasoning") or thinking
                calls = delta.get("tool_calls")
                if calls:
                    tool_calls = tuple(
                        self._tool_delta(position, call) for position, call in enumerate(calls)
                    )
                sound = delta.get("audio")
                if sound:
                    encoded = sound.get("data")
                    if encoded:
                        audio = self._audio(encoded)
                    transcript = sound.get("transcript") or ""
            finish_reason = choice.get("finish_reason") or None  # "" says nothing either
            if finish_reason is not None:
                self.finished = True
        usage = data.get("usage")
        return Chunk.unchecked(
            content,
            thinking,
            refusal,
            audio,
            transcript,
            tool_calls,
            finish_reason,
            _usage(usage) if usage else None,
            data.get("model") or None,
            data.get("id") or None,
            PROVIDER,
            None if payload is not None else lambda: _construct_chunk(data),
            payload,
        )

    @staticmethod
    def _audio(encoded: str) -> bytes:
        """The bytes of one audio delta: OpenAI sends each as whole base64."""
        try:
            return base64.b64decode(encoded)
        except ValueError as exc:
            raise errors.StreamError(
                f"{PROVIDER}: an audio delta is not whole base64 ({exc}): {encoded[:40]!r}; "
                "each delta's audio.data must decode on its own, as OpenAI sends it",
                provider=PROVIDER,
                retryable=False,
            ) from exc

    def _tool_delta(self, position: int, call: dict[str, Any]) -> ToolCallDelta:
        function = call.get("function") or {}
        call_id = call.get("id") or None
        index = call.get("index")
        if index is None:
            # Some OpenAI-compatible servers (Gemini) send each call whole without an index:
            # a new id is a new call, no id continues the last one.
            if call_id is not None:
                index = self._call_ids.setdefault(call_id, len(self._call_ids))
            else:
                index = len(self._call_ids) - 1 if self._call_ids else position
        return ToolCallDelta(
            index=index,
            id=call_id,
            name=function.get("name") or None,
            arguments=function.get("arguments") or "",
        )

    def end(self) -> None:
        """Raise `StreamInterrupted` when the body ended without `[DONE]` or a finish reason."""
        if not self.done and not self.finished:
            raise errors.StreamInterrupted(
                "openai: the stream ended before the server said it was done ([DONE])",
                provider=PROVIDER,
            )


def _construct_chunk(data: dict[str, Any]) -> ChatCompletionChunk:
    return ChatCompletionChunk.construct(**data)


register_event_builder(PROVIDER, lambda payload: _construct_chunk(parse_json(payload)))


def _first_choice(choices: Any) -> dict[str, Any] | None:
    for choice in choices:
        if type(choice) is dict and not choice.get("index"):
            return choice
    return None


def _content_parts(parts: Any) -> tuple[str, str]:
    """(text, thinking) of a `content` sent as a list of typed parts, e.g. Mistral's
    `[{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}, {"type": "text", ...}]`."""
    text: list[str] = []
    thinking: list[str] = []
    for part in parts if isinstance(parts, list) else [parts]:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, dict):
            kind = part.get("type")
            if kind == "text":
                text.append(str(part.get("text") or ""))
            elif kind == "thinking":
                inner = part.get("thinking")
                thinking.append(inner if isinstance(inner, str) else _content_parts(inner)[0])
    return "".join(text), "".join(thinking)


def _usage(usage: dict[str, Any]) -> Usage:
    """rxllm's usage from a Chat Completions `usage` object, as OpenAI and the compatible
    services report it: the cache counts from `prompt_tokens_details` (DeepSeek's older
    `prompt_cache_hit_tokens` too); reasoning from `completion_tokens_details`, and added to
    the output where the service counts it apart from `completion_tokens` (xAI: its total is
    prompt + completion + reasoning)."""
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    total = usage.get("total_tokens")
    prompt_details = usage.get("prompt_tokens_details")
    reasoning = _count(usage.get("completion_tokens_details"), "reasoning_tokens")
    if reasoning and total == prompt + completion + reasoning:
        completion += reasoning
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=total or prompt + completion,
        cache_read_tokens=(
            _count(prompt_details, "cached_tokens") or _count(usage, "prompt_cache_hit_tokens")
        ),
        cache_write_tokens=_count(prompt_details, "cache_write_tokens"),
        reasoning_tokens=reasoning,
    )


def _count(details: Any, name: str) -> int:
    """A count in one of the usage's `*_details` objects (absent or null on many servers)."""
    value = details.get(name) if type(details) is dict else None  # pyright: ignore[reportUnknownMemberType]
    return value if type(value) is int else 0


def _response_raw(events: Sequence[Any], response: Response, context: Any = None) -> Any:
    """What the SDK's `chat.completions.stream()` helper ends with: its own state, given the
    request's tools and response format, replays every chunk; a finished stream gives its
    `get_final_completion()` (`message.parsed`, tool calls' `parsed_arguments`), one cut
    short the snapshot so far. Where the SDK would raise (content that is not the format's
    JSON, the length limit), the chunks are replayed without the format: no `parsed`."""
    # As the SDK's helper, skip what is not a chunk (Azure's asynchronous-filter and
    # prompt-filter events, Perplexity's "chat.completion.done"); keep chunks that name no
    # object at all (some compatible servers), which the helper would reject.
    chunks = [
        raw
        for raw in events
        if isinstance(raw, ChatCompletionChunk)
        and getattr(raw, "object", None) in (None, "chat.completion.chunk")
    ]
    if not chunks:
        return None
    options = context if isinstance(context, dict) else {}
    try:
        return _replay(chunks, response, options)
    except Exception:
        if not options:
            raise
        return _replay(chunks, response, {})


def _replay(chunks: list[ChatCompletionChunk], response: Response, options: dict[str, Any]) -> Any:
    state: Any = ChatCompletionStreamState(
        input_tools=options.get("tools", openai.NOT_GIVEN),
        response_format=options.get("response_format", openai.NOT_GIVEN),
    )
    for chunk in chunks:
        try:
            state.handle_chunk(chunk)
        except Exception as exc:
            # A shape the SDK's accumulator refuses (e.g. OpenRouter's index-less
            # annotation lists): that chunk is left out of `raw` rather than making the
            # whole answer's `raw` unreadable. The normalized fields have all of it.
            if options:
                raise  # first try again without the request's tools and format
            _log.debug("Response.raw: the SDK's accumulator refused a chunk: %s", exc)
    if response.finish_reason is not None:
        with contextlib.suppress(Exception):  # e.g. "length": the SDK refuses to parse
            return state.get_final_completion()
    return state.current_completion_snapshot


register_raw_builder(PROVIDER, _response_raw)


class OpenAIProvider(SDKProvider):
    """Configuration and SDK clients for one OpenAI model."""

    name = PROVIDER
    env_var = "OPENAI_API_KEY"
    key_hint = (
        " (a local OpenAI-compatible server that needs no key takes any value, "
        "e.g. api_key='unused')"
    )

    def sdk_body_error(
        self, error: httpx2.TransportError, http: httpx2.Response
    ) -> BaseException | None:
        """`APITimeoutError` / `APIConnectionError`, as `openai.Stream` raises mid-body."""
        if isinstance(error, httpx2.TimeoutException):
            return openai.APITimeoutError(request=http.request)
        return openai.APIConnectionError(request=http.request)

    def copyable(self, client: Any) -> bool:
        """`OpenAI` / `AsyncOpenAI` themselves (an Azure client has its own paths and
        header)."""
        return type(client) in (openai.OpenAI, openai.AsyncOpenAI)

    def twin_options(self, client: Any, *, asynchronous: bool) -> dict[str, Any]:
        """The organization, project and key provider a given client sends with."""
        options = {"organization": client.organization, "project": client.project}
        provider = getattr(client, "_api_key_provider", None)
        if provider is not None:  # a callable key, called per request
            options["api_key"] = _key_provider(provider, asynchronous=asynchronous)
        return options

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new `openai.OpenAI` / `openai.AsyncOpenAI`."""
        if asynchronous:
            # a plain http client: the SDK's own wrapper schedules an aclose() on whatever
            # loop runs when it is collected, which fails once its own loop is closed
            return openai.AsyncOpenAI(**options, http_client=openai.DefaultAsyncHttpxClient())
        return openai.OpenAI(**options, http_client=sync_http_client(openai.DefaultHttpxClient))

    def raw_context(self, request: Request, kwargs: dict[str, Any]) -> Any:
        """The tools and a pydantic response format, for `Response.raw` to be parsed."""
        context: dict[str, Any] = {}
        if "tools" in kwargs:
            context["tools"] = kwargs["tools"]
        if inspect.isclass(request.response_format):
            context["response_format"] = request.response_format
        return context or None

    def sdk_stream_error(self, error: errors.StreamError, http: httpx2.Response) -> BaseException:
        """`openai.APIError`, as `openai.Stream` raises for an `error` in the stream."""
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        return openai.APIError(message=message, request=http.request, body=body)

    def open_stream(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """`chat.completions.with_streaming_response.create(stream=True, ...)`."""
        return client.chat.completions.with_streaming_response.create(stream=True, **kwargs)

    def mapper(self) -> OpenAIEvents:
        """A fresh event mapper."""
        return OpenAIEvents()

    def check(self, request: Request) -> None:
        """Reject parameters the Chat Completions API does not take, before any request."""
        self.check_params(request, _CREATE_PARAMS, "openai chat completions")

    def arguments(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `chat.completions.create` (without `stream`)."""
        messages: list[Any] = []
        if request.system is not None:
            messages.append({"role": "system", "content": request.system})
        messages.extend(dict(m) for m in request.messages)
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, **request.params}
        # Usage is what rxllm adds; the caller's own stream options are kept beside it.
        kwargs["stream_options"] = {"include_usage": True, **(kwargs.get("stream_options") or {})}
        if request.tools:
            kwargs["tools"] = [tool_schema(tool, "openai") for tool in request.tools]
        if request.audio is not None:
            kwargs["audio"] = dict(request.audio)
            kwargs.setdefault("modalities", ["text", "audio"])
        if request.response_format is not None:
            kwargs["response_format"] = _response_format(request.response_format)
        if request.stall_timeout:
            kwargs.setdefault("timeout", httpx2.Timeout(600.0, read=request.stall_timeout))
        return kwargs

    def continuation(self, request: Request, text: str) -> Request:
        """The request that continues a response after `text` (used by `ops.retry`)."""
        messages = (
            *request.messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        )
        return dataclasses.replace(request, messages=messages)


def _response_format(value: Any) -> Any:
    if inspect.isclass(value):
        from openai.lib._parsing._completions import type_to_response_format_param

        return type_to_response_format_param(value)
    return value


def _key_provider(provider: Any, *, asynchronous: bool) -> Any:
    """A sync client's key provider for an async client, or the other way round."""
    if asynchronous:

        async def async_key() -> str:
            key = provider()
            return str(await key if inspect.isawaitable(key) else key)

        return async_key

    def sync_key() -> str:
        key = provider()
        return str(run_awaitable(key) if inspect.isawaitable(key) else key)

    return sync_key


def openai_llm(
    model: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: openai.OpenAI | None = None,
    async_client: openai.AsyncOpenAI | None = None,
    **defaults: Any,
) -> LLM:
    """An `LLM` on OpenAI Chat Completions streaming (or any OpenAI-compatible `base_url`).

    `**defaults` are request parameters merged into every call, plus `stall_timeout` and
    `max_retries` (given to the SDK client for failures before the stream starts). With
    `n` > 1 choices the chunks and the `Response` follow the first choice; `Response.raw`
    has them all. Compatible servers' variants are read too: `reasoning_content` /
    `reasoning` as thinking, content sent as typed parts (Mistral), tool calls sent without
    an index (Gemini), Azure's filter events (left out of `Response.raw`, as the SDK does).

    `api_key` (default: the `OPENAI_API_KEY` environment variable) and `base_url` configure
    the clients rxllm makes (with a client of your own, set them on it instead).
    `client=` / `async_client=` are SDK clients to use instead; given only one, calls of
    the other kind (sync vs asyncio) use a copy of it (same key, base URL, headers,
    query, timeout, retries); an Azure client or one with its own `http_client` cannot be
    copied, so pass both.

    >>> import rxllm
    >>> llm = rxllm.openai("gpt-4o-mini", api_key="sk-...", temperature=0)
    >>> llm.model
    'gpt-4o-mini'
    """
    max_retries = defaults.pop("max_retries", None)
    check_params({"max_retries": max_retries})
    provider = OpenAIProvider(
        model,
        api_key=api_key,
        base_url=base_url,
        client=client,
        async_client=async_client,
        max_retries=max_retries,
    )
    return LLM(provider, **defaults)
