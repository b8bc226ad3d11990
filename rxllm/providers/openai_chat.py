"""OpenAI Chat Completions, the protocol of OpenAI and of every OpenAI-compatible server.

`ChatCodec` is the codec of one call (`rxllm.codec`): `OpenAIEvents` maps each
`chat.completion.chunk` JSON to a `Chunk` (also the variants compatible servers send:
`reasoning_content` / `reasoning` as thinking, content as typed parts, tool calls without
an index, chunks without choices, usage in every chunk or in Groq's `x_groq`, an error
object mid-stream (also vLLM's bare one), no `[DONE]` after a finish reason;
`tests/providers/test_compat_quirks.py`); `Chunk.raw` is the SDK's
`ChatCompletionChunk` and `Response.raw` what the SDK's `ChatCompletionStreamState`
accumulates from the same chunks — both built only when read. The request side writes
`chat.completions.create`'s arguments; a retry resumes with the delivered text as an
assistant message and an instruction to continue.

Why ~400 lines in one module: one wire protocol's codec — request, event mapping (with every
compatible server's variant) and the native objects — as CONTRIBUTING.md asks of a codec.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import openai
from openai.types.chat import ChatCompletionChunk

from rxllm import errors
from rxllm.codec import StreamCodec
from rxllm.models import Chunk, Response, ToolCallDelta, ToolResult, Usage, text_chunk_maker
from rxllm.parts import check_parts, wire_messages
from rxllm.providers import _sdk_private
from rxllm.providers.http_call import SDKCodec, parse_json
from rxllm.request import Request, check_sdk_params, with_turn
from rxllm.tools import tool_schema

if TYPE_CHECKING:
    from rxllm.messages import MessageFormat

__all__ = ["CONTINUE_INSTRUCTION", "ChatCodec", "OpenAIEvents", "continue_after"]

_log = logging.getLogger("rxllm.openai")
CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly where it stopped: do not repeat "
    "anything, do not add any preamble."
)
_CREATE_PARAMS = frozenset(
    inspect.signature(openai.resources.chat.completions.Completions.create).parameters
) - {"self", "messages", "model", "stream"}


class ChatCodec(SDKCodec):
    """The codec of one Chat Completions call (see the module docstring)."""

    message_format: MessageFormat = "openai"
    sdk_stream = (openai.Stream, ChatCompletionChunk)
    """The SDK's own stream over these events (what it raises for an error event)."""

    def __init__(
        self,
        request: Request,
        *,
        model: str,
        name: str = "openai",
        secrets: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        super().__init__(request, model=model, name=name, secrets=secrets)
        self._tools = (
            [tool_schema(tool, "openai") for tool in request.tools] if request.tools else None
        )
        # what the SDK's stream helper is given, for Response.raw to be what it ends with
        self._context: dict[str, Any] = {}
        if self._tools is not None:
            self._context["tools"] = self._tools
        if inspect.isclass(request.response_format):
            self._context["response_format"] = request.response_format

    def events(self) -> OpenAIEvents:
        """A fresh event mapper for this call."""
        return OpenAIEvents(self._name, self)

    def raw_event(self, data: bytes) -> ChatCompletionChunk:
        """The SDK's `ChatCompletionChunk` of one event's JSON."""
        return _construct_chunk(parse_json(data))

    def raw_response(self, events: Sequence[Any], response: Response) -> Any:
        """What the SDK's `chat.completions.stream()` helper ends with (`_response_raw`)."""
        return _response_raw(events, response, self._context)

    def open_stream(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """`chat.completions.with_streaming_response.create(stream=True, ...)`."""
        return client.chat.completions.with_streaming_response.create(stream=True, **kwargs)

    def follow_up(
        self, request: Request, answer: Response, results: Sequence[ToolResult]
    ) -> Request:
        """The next call of a tool loop: the answer and its tools' results appended."""
        return with_turn(request, answer, results, "openai")

    @staticmethod
    def check(request: Request) -> None:
        """Reject parameters and input parts the Chat Completions API does not take, before
        any request."""
        check_sdk_params(request, _CREATE_PARAMS, "openai chat completions")
        check_parts(request.messages, "chat", "openai")

    def arguments(self, request: Request) -> dict[str, Any]:
        """The keyword arguments for `chat.completions.create` (without `stream`)."""
        messages: list[Any] = []
        if request.system is not None:
            messages.append({"role": "system", "content": request.system})
        messages.extend(wire_messages(request.messages, "chat"))  # parts in Chat's form
        kwargs: dict[str, Any] = {"model": self._model, "messages": messages, **request.params}
        # Usage is what rxllm adds; the caller's own stream options are kept beside it.
        kwargs["stream_options"] = {"include_usage": True, **(kwargs.get("stream_options") or {})}
        if self._tools is not None:
            kwargs["tools"] = self._tools
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
        return continue_after(request, text)


class OpenAIEvents:
    """Maps Chat Completions stream events (parsed JSON) to `Chunk`s. Pure; one per call."""

    __slots__ = ("_call_ids", "_codec", "_name", "_text", "done", "finished")

    def __init__(self, name: str = "openai", codec: StreamCodec | None = None) -> None:
        self._name = name  # the provider's name on every chunk: "openai", "groq", ...
        self._codec = codec
        self._text = text_chunk_maker(name, codec)
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
        if error:  # OpenAI, OpenRouter (also beside "choices"), SGLang: {"error": {...}}
            raise errors.stream_error_event(self._name, error)
        if data.get("object") == "error":  # vLLM: the error object itself
            raise errors.stream_error_event(self._name, data)
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
        usage = data.get("usage") or _groq_usage(data)
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
            self._name,
            None if payload is not None else lambda: _construct_chunk(data),
            payload,
            self._codec,
        )

    def _audio(self, encoded: str) -> bytes:
        """The bytes of one audio delta: OpenAI sends each as whole base64."""
        try:
            return base64.b64decode(encoded)
        except ValueError as exc:
            raise errors.StreamError(
                f"{self._name}: an audio delta is not whole base64 ({exc}): {encoded[:40]!r}; "
                "each delta's audio.data must decode on its own, as OpenAI sends it",
                provider=self._name,
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
                f"{self._name}: the stream ended before the server said it was done ([DONE])",
                provider=self._name,
            )


def continue_after(request: Request, text: str) -> Request:
    """`request` asked to continue an answer cut off after `text`: the text as an assistant
    message and an instruction to continue (OpenAI's APIs have no assistant prefill)."""
    messages = (
        *request.messages,
        {"role": "assistant", "content": text},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    )
    return dataclasses.replace(request, messages=messages)


def _construct_chunk(data: dict[str, Any]) -> ChatCompletionChunk:
    return ChatCompletionChunk.construct(**data)


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


def _groq_usage(data: dict[str, Any]) -> Any:
    """Groq's usage, sent in `x_groq.usage` of the last chunk instead of `usage`."""
    extra = data.get("x_groq")
    return extra.get("usage") if type(extra) is dict else None  # pyright: ignore[reportUnknownMemberType]


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
    state: Any = _sdk_private.openai_chat_stream_state(
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
    try:
        return state.current_completion_snapshot
    except AssertionError:  # the accumulator refused every chunk: it has no snapshot
        return None


def _response_format(value: Any) -> Any:
    if inspect.isclass(value):
        return _sdk_private.openai_response_format(value)
    return value
