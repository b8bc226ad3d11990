"""The data that flows through rxllm: normalized chunks in, materialized responses out.

Every provider maps its own stream events to `Chunk`s, so operators and subscribers never
care which provider they listen to. `Response` is what a finished (or cut-short) call
materializes into. Both are frozen pydantic models; the provider's own objects stay
reachable through `.raw`, which is built on first access so that the hot path never pays
for SDK models nobody reads.

Why ~550 lines in one module: the public data types, each field with its docstring; a
`Chunk`'s fast construction (`unchecked`, `text_chunk_maker`) depends on the class's own
layout and stays beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, PrivateAttr

from rxllm import messages
from rxllm.messages import MessageFormat

__all__ = [
    "Chunk",
    "Response",
    "TextChunkMaker",
    "ToolCall",
    "ToolCallDelta",
    "ToolResult",
    "Usage",
    "text_chunk_maker",
]


# Audio is binary: in JSON it is base64 (pydantic's default, UTF-8, fails on PCM). The
# models are frozen by the class keyword, which type checkers read too.
_CONFIG = ConfigDict(arbitrary_types_allowed=True, ser_json_bytes="base64", val_json_bytes="base64")


class Usage(BaseModel, frozen=True):
    """Token counts as reported by the provider (running totals, the last one wins).

    `input_tokens` is the whole prompt for every provider, cached tokens included; the
    cache and reasoning counts say how much of it (and of `output_tokens`) was what.

    >>> Usage(input_tokens=12, output_tokens=30, total_tokens=42).total_tokens
    42
    >>> usage = Usage(input_tokens=5210, cache_read_tokens=5000, output_tokens=1)
    >>> usage.input_tokens - usage.cache_read_tokens  # the part billed at the full price
    210
    """

    model_config = _CONFIG

    input_tokens: int = 0
    """Tokens of the prompt, cached ones included: OpenAI `prompt_tokens`; Anthropic
    `input_tokens + cache_read_input_tokens + cache_creation_input_tokens` (Anthropic's own
    `input_tokens` counts only the part after the last cache breakpoint)."""
    output_tokens: int = 0
    """Tokens generated so far (OpenAI `completion_tokens`, Anthropic `output_tokens`)."""
    total_tokens: int = 0
    """`input_tokens + output_tokens` unless the provider reports its own total."""
    cache_read_tokens: int = 0
    """Of `input_tokens`, those read from the provider's prompt cache (OpenAI
    `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`)."""
    cache_write_tokens: int = 0
    """Of `input_tokens`, those written to the prompt cache (Anthropic
    `cache_creation_input_tokens`, OpenAI `prompt_tokens_details.cache_write_tokens`)."""
    reasoning_tokens: int = 0
    """Of `output_tokens`, those spent on reasoning (OpenAI
    `completion_tokens_details.reasoning_tokens`, Anthropic
    `output_tokens_details.thinking_tokens`)."""

    def __add__(self, other: Usage) -> Usage:
        """Sum two usages, e.g. over the attempts of a retried call."""
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class ToolCallDelta(BaseModel, frozen=True):
    """One increment of a tool call inside a `Chunk`.

    Fragments with the same `index` belong to the same call; `arguments` fragments
    concatenate to the call's JSON arguments.

    >>> import rxllm
    >>> from rxllm import Chunk, ToolCallDelta
    >>> llm = rxllm.scripted([
    ...     Chunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="weather", arguments='{"ci'),)),
    ...     Chunk(tool_calls=(ToolCallDelta(index=0, arguments='ty": "Oslo"}'),)),
    ... ])
    >>> call = rxllm.collect(llm.stream("Weather in Oslo?")).tool_calls[0]
    >>> call.name, call.args
    ('weather', {'city': 'Oslo'})
    """

    model_config = _CONFIG

    index: int
    """The call's ordinal in this response: 0, 1, ... (for Anthropic too, not its block index)."""
    id: str | None = None
    """The provider's id of the call; usually only on the first fragment."""
    name: str | None = None
    """The tool's name; usually only on the first fragment."""
    arguments: str = ""
    """A fragment of the JSON text of the arguments."""


class ToolCall(BaseModel, frozen=True):
    """A tool call with its arguments complete (or as far as they were received).

    >>> ToolCall(id="c1", name="weather", arguments='{"city": "Oslo"}').args
    {'city': 'Oslo'}
    """

    model_config = _CONFIG

    id: str | None = None
    """The provider's id of the call, to answer it with a tool result."""
    name: str = ""
    """The name of the tool the model wants to call."""
    arguments: str = ""
    """The arguments as JSON text, exactly as the model wrote them."""

    @property
    def args(self) -> dict[str, Any]:
        """The arguments parsed from JSON (`{}` when the model sent none).

        Raises `ValueError` naming the tool when the text is not a JSON object.
        """
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"tool call {self.name!r} has arguments that are not valid JSON: {exc}"
            ) from exc
        if not isinstance(value, dict):
            raise ValueError(
                f"tool call {self.name!r} has arguments that are JSON but not an object: "
                f"{self.arguments[:80]!r}"
            )
        return value


class ToolResult(BaseModel, frozen=True):
    """The outcome of running one tool call: what the function returned, or why it failed.

    >>> call = ToolCall(id="call_1", name="add", arguments='{"a": 1, "b": 2}')
    >>> result = ToolResult(call=call, output={"sum": 3})
    >>> result.content
    '{"sum":3}'
    >>> result.message("openai")
    {'role': 'tool', 'tool_call_id': 'call_1', 'content': '{"sum":3}'}
    """

    call: ToolCall
    """The call that was run."""
    output: Any = None
    """What the function returned (`None` when it failed)."""
    error: str | None = None
    """Why the call failed, for the model to read; `None` when it succeeded."""

    @pydantic.field_serializer("output", when_used="json")
    def _output_json(self, output: Any) -> Any:
        # whatever a tool returned can be written out (a Response with its steps, a batch
        # checkpoint): what JSON cannot hold goes as its str(), as the model read it
        return _jsonable(output)

    @pydantic.computed_field  # type: ignore[prop-decorator]
    @property
    def content(self) -> str:
        """The result as text for the model: `output` if a str, else its JSON (what JSON
        cannot hold as its `str()`); or the error."""
        if self.error is not None:
            return f"Error: {self.error}"
        if isinstance(self.output, str):
            return self.output
        try:
            return pydantic_core.to_json(self.output, fallback=str).decode()
        except (ValueError, TypeError):  # bytes that are not UTF-8, a circular structure
            return str(self.output)

    @property
    def is_error(self) -> bool:
        """True when the call failed (`error` is set)."""
        return self.error is not None

    def message(self, provider: str = "openai") -> dict[str, Any]:
        """The tool-result message to send back, in `provider`'s format (`llm.provider`:
        OpenAI's format for "openai", "local" and "scripted").

        Anthropic wants all results of one assistant turn in a single user message: use
        `ToolResult.messages(results, "anthropic")` for that.
        """
        return messages.tool_result_messages([self], messages.message_format(provider))[0]

    @staticmethod
    def messages(results: Iterable[ToolResult], provider: str = "openai") -> list[dict[str, Any]]:
        """The messages that answer several calls: one per result (OpenAI) or one in all.

        >>> calls = [ToolCall(id=f"t{i}", name="f") for i in range(2)]
        >>> results = [ToolResult(call=c, output=i) for i, c in enumerate(calls)]
        >>> [len(m["content"]) for m in ToolResult.messages(results, "anthropic")]
        [2]
        """
        return messages.tool_result_messages(results, messages.message_format(provider))


def _jsonable(value: Any) -> Any:
    try:
        return pydantic_core.to_jsonable_python(value, fallback=str)
    except (ValueError, TypeError):
        return str(value)


class _LazyRaw(BaseModel, frozen=True):
    """Base for models whose `raw` provider object is built on first access."""

    model_config = _CONFIG

    _raw: Any = PrivateAttr(default=None)
    _raw_factory: Callable[[], Any] | None = PrivateAttr(default=None)
    # the event's JSON bytes; or, for a text delta that said nothing but its text, its
    # block index: the codec rebuilds that event from it and the text (`text_event`)
    _raw_data: bytes | int | None = PrivateAttr(default=None)
    _codec: Any = PrivateAttr(default=None)  # the call's `rxllm.codec.Codec`, if any

    def __init__(self, *, raw: Any = None, **data: Any) -> None:
        super().__init__(**data)
        self._private()["_raw"] = raw

    def _private(self) -> dict[str, Any]:
        # The frozen model's own private attributes: what is built lazily is written here
        # (type checkers see a frozen model's attributes, private ones too, as read-only).
        private = self.__pydantic_private__
        assert private is not None
        return private

    @property
    def raw(self) -> Any:
        """The provider's own object (SDK type), built the first time it is read."""
        private = self._private()
        factory = self._raw_factory
        if factory is not None:
            private["_raw"] = factory()
            private["_raw_factory"] = None
        elif self._raw_data is not None:
            data, codec = self._raw_data, self._codec
            if codec is not None:  # a `StreamCodec`: the SDK's event from its bytes
                private["_raw"] = (
                    codec.raw_event(data)
                    if isinstance(data, bytes)
                    else codec.text_event(data, self.__dict__["content"])
                )
            private["_raw_data"] = None
        return self._raw

    def _with_raw_factory(self, factory: Callable[[], Any] | None) -> None:
        self._private()["_raw_factory"] = factory

    def __eq__(self, other: object) -> bool:
        # Two chunks are equal when what they say is equal; where the raw event came from
        # (and whether it was built yet) is not part of their value.
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))


class Chunk(_LazyRaw, frozen=True):
    """One normalized increment of a streamed response, whatever the provider.

    >>> chunk = Chunk(content="Hel", provider="scripted")
    >>> chunk.content, chunk.finish_reason
    ('Hel', None)
    """

    content: str = ""
    """Text delta, `""` when none."""
    thinking: str = ""
    """Reasoning/thinking text delta, `""` when none."""
    refusal: str = ""
    """Refusal text delta (OpenAI), `""` when none."""
    audio: bytes = b""
    """Raw audio delta (already base64-decoded), `b""` when none."""
    audio_transcript: str = ""
    """Transcript delta of the audio, `""` when none."""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    """Tool-call deltas carried by this chunk."""
    tool_results: tuple[ToolResult, ...] = ()
    """The results of the tools `ops.tool_loop` ran: set on the one chunk that ends a step of
    the loop (its calls answered; the next chunk starts the next call), `()` otherwise."""
    finish_reason: str | None = None
    """Why generation stopped, normalized: "stop", "length", "tool_calls", "content_filter"."""
    usage: Usage | None = None
    """Running token totals as reported so far, when this chunk reports them."""
    model: str | None = None
    """The model name as reported by the provider."""
    id: str | None = None
    """The response id as reported by the provider."""
    provider: str = "scripted"
    """Which provider produced it: "openai", "anthropic", "local", "scripted"."""

    @classmethod
    def unchecked(  # noqa: PLR0917 - positional on purpose: it is the hot path
        cls,
        content: str = "",
        thinking: str = "",
        refusal: str = "",
        audio: bytes = b"",
        audio_transcript: str = "",
        tool_calls: tuple[ToolCallDelta, ...] = (),
        finish_reason: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
        id: str | None = None,
        provider: str = "scripted",
        raw_factory: Callable[[], Any] | None = None,
        raw_data: bytes | None = None,
        codec: Any = None,
    ) -> Chunk:
        """Build a chunk without validation, for providers' hot paths (~1 µs, not ~5 µs).

        The arguments must already have the field types, except that a text field, the
        finish reason, the model or the id given a value of another type (a server's
        malformed event, read without validation) is left empty: a `Response` never holds
        a `dict` for its model. `.raw` is built on first access
        by `raw_factory`, or from `raw_data` (the event's JSON bytes) by `codec` (the
        call's `rxllm.codec.StreamCodec`, which the chunk carries: `Response.raw` and
        `Response.message()` ask it too). The result is an ordinary, equal `Chunk`.
        """
        # A copy of a template chunk's `__dict__` is a key-sharing dict (half the memory of
        # a dict literal) and costs one C call, where setting eleven attributes cost ~1 µs.
        values = _copy_dict(_TEMPLATE)
        if content and type(content) is str:
            values["content"] = content
        if thinking and type(thinking) is str:
            values["thinking"] = thinking
        if refusal and type(refusal) is str:
            values["refusal"] = refusal
        if audio and type(audio) is bytes:
            values["audio"] = audio
        if audio_transcript and type(audio_transcript) is str:
            values["audio_transcript"] = audio_transcript
        if tool_calls:
            values["tool_calls"] = tool_calls
        if finish_reason is not None and type(finish_reason) is str:
            values["finish_reason"] = finish_reason
        if usage is not None:
            values["usage"] = usage
        if model is not None and type(model) is str:
            values["model"] = model
        if id is not None and type(id) is str:
            values["id"] = id
        if provider != "scripted":
            values["provider"] = provider
        return _build(cls, values, raw_factory, raw_data, codec)

    @property
    def has_delta(self) -> bool:
        """True when the chunk adds content: text, thinking, refusal, audio or tool calls."""
        return bool(
            self.content
            or self.thinking
            or self.refusal
            or self.audio
            or self.audio_transcript
            or self.tool_calls
        )

    @property
    def is_empty(self) -> bool:
        """True when the chunk carries no delta, finish reason or usage (e.g. a block stop)."""
        return not (self.has_delta or self.finish_reason or self.usage or self.tool_results)


def _template() -> dict[str, Any]:
    """The `__dict__` of a default chunk, set attribute by attribute so that CPython makes it
    a key-sharing dict; `Chunk.unchecked` copies it (copies keep sharing the keys)."""
    chunk = object.__new__(Chunk)
    for name, field in Chunk.model_fields.items():
        object.__setattr__(chunk, name, field.default)
    return chunk.__dict__


_new = object.__new__
_copy_dict = dict.copy
# The slots pydantic's BaseModel declares, set through their descriptors (the fastest way).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_CHUNK_FIELDS = set(Chunk.model_fields)
_TEMPLATE = _template()


def _build(
    cls: type[Chunk],
    values: dict[str, Any],
    raw_factory: Callable[[], Any] | None,
    raw_data: bytes | int | None,
    codec: Any = None,
) -> Chunk:
    """A chunk whose `__dict__` is `values` (already of the field types), without validation."""
    chunk = _new(cls)
    _set_dict(chunk, values)
    _set_fields_set(chunk, _CHUNK_FIELDS)
    _set_extra(chunk, None)
    _set_private(
        chunk, {"_raw": None, "_raw_factory": raw_factory, "_raw_data": raw_data, "_codec": codec}
    )
    return chunk


TextChunkMaker = Callable[[str, str | None, str | None, bytes | int | None], Chunk]
"""`make(content, model, id, raw_data) -> Chunk`: see `text_chunk_maker`."""


def text_chunk_maker(provider: str, codec: Any = None) -> TextChunkMaker:
    """A function that makes the text-delta chunks of one stream, the bulk of most streams.

    Provider, model and id repeat from chunk to chunk, so they live in a template that is
    copied (as in `Chunk.unchecked`, which every other chunk goes through): ~0.6 µs a chunk
    (`python -m benchmarks.micro`).

    >>> make = text_chunk_maker("openai")
    >>> make("Hel", "gpt-4o", "c1", None) == Chunk(
    ...     content="Hel", model="gpt-4o", id="c1", provider="openai"
    ... )
    True
    """
    template = _copy_dict(_TEMPLATE)
    template["provider"] = provider
    current: list[str | None] = [None, None]

    def make(
        content: str, model: str | None, id: str | None, raw_data: bytes | int | None
    ) -> Chunk:
        if model != current[0] or id != current[1]:
            current[0], current[1] = model, id
            # as in `Chunk.unchecked`: a model or id of another type is left out
            template["model"] = model if type(model) is str else None
            template["id"] = id if type(id) is str else None
        values = _copy_dict(template)
        values["content"] = content
        return _build(Chunk, values, None, raw_data, codec)

    return make


class Response(_LazyRaw, frozen=True):
    """A materialized response: everything a call streamed, put together.

    `finish_reason is None` means the stream ended without the provider saying why
    (for instance it was stopped early with `take_until`).

    >>> import rxllm
    >>> rxllm.collect(rxllm.scripted("Hello there.").stream("hi")).text
    'Hello there.'
    """

    text: str = ""
    """All text content."""
    thinking: str = ""
    """All reasoning/thinking text."""
    refusal: str = ""
    """All refusal text (OpenAI)."""
    audio: bytes = b""
    """All audio bytes, decoded."""
    audio_transcript: str = ""
    """The transcript of the audio."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tool calls, in order."""
    finish_reason: str | None = None
    """Normalized finish reason; `None` when the provider did not say (stopped early)."""
    usage: Usage | None = None
    """The last usage the provider reported."""
    model: str | None = None
    """The model as reported by the provider."""
    id: str | None = None
    """The response id as reported by the provider."""
    provider: str = "scripted"
    """Which provider produced it."""
    chunk_count: int = 0
    """How many chunks were accumulated into it."""
    tool_results: tuple[ToolResult, ...] = ()
    """The results of this answer's tool calls, when `ops.tool_loop` ran them (a step of a
    tool loop); `()` otherwise."""
    steps: tuple[Response, ...] = ()
    """The earlier steps of a tool loop (`ops.tool_loop`), in order, each with its
    `tool_results`; this response is the last step. `()` for a single call."""

    @property
    def total_usage(self) -> Usage | None:
        """The usage of every step of a tool loop added up (`usage` is this step's own);
        for a single call, `usage`."""
        total = self.usage
        for step in self.steps:
            if step.usage is not None:
                total = step.usage if total is None else total + step.usage
        return total

    @property
    def cost(self) -> Decimal | None:
        """The price of this answer in USD (for a tool loop, of all its calls), from the
        `genai-prices` package's data for the provider and the model it reported, cached and
        reasoning tokens at their own prices; None when unknown (see `rxllm.cost`).

        >>> usage = Usage(input_tokens=1200, output_tokens=300)
        >>> Response(provider="openai", model="gpt-4o-mini", usage=usage).cost > 0
        True
        >>> print(Response(provider="vllm", model="my-model", usage=usage).cost)
        None
        """
        from rxllm.cost import response_cost

        return response_cost(self)

    def messages(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Every message this answer adds to the conversation, in `provider`'s format: for
        a tool loop, each step's assistant message and its tool results, then the last
        answer's (`[response.message()]` for a single call). Append them to `messages` to
        go on with the conversation. A last answer that says nothing (a step that failed
        or was stopped before its first event) is left out. (A loop ended by a final-answer
        tool ends with that call, not run: its result must follow before the providers take
        another turn.)

        >>> import rxllm
        >>> from rxllm import Chunk, ToolCallDelta, ops
        >>> def add(a: int, b: int) -> int:
        ...     return a + b
        >>> call = ToolCallDelta(index=0, id="c1", name="add", arguments='{"a": 1, "b": 2}')
        >>> llm = rxllm.scripted([Chunk(tool_calls=(call,))], then=["3."])
        >>> answer = rxllm.collect(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop()))
        >>> [m["role"] for m in answer.messages()]
        ['assistant', 'tool', 'assistant']
        """
        turns: list[dict[str, Any]] = []
        for step in (*self.steps, self):
            message = step.message(provider)
            if step is self and not step.tool_results and messages.says_nothing(message):
                break  # a step that failed or was stopped before saying anything
            turns.append(message)
            turns += ToolResult.messages(step.tool_results, provider or step.provider)
        return turns

    def message(self, provider: str | None = None) -> dict[str, Any]:
        """This answer as the assistant message to send back in the next call's `messages`,
        in `provider`'s format (default: the provider that answered; OpenAI's format for
        the local and scripted ones).

        OpenAI: `content`, `tool_calls`, `refusal` and the audio's id. Anthropic: the
        answer's content blocks as the API sent them (a thinking block keeps the
        `signature` the API needs to see again with tool results; server tools' blocks are
        kept; a thinking block cut before its signature is left out, so an answer cut while
        thinking has no content), else text and tool-use blocks from the fields. Raises
        `ValueError` when a tool call's arguments are not a JSON object (a call cut short)
        and have to be parsed for that format.

        >>> import rxllm
        >>> from rxllm import Chunk, ToolCallDelta
        >>> call = ToolCallDelta(index=0, id="c1", name="add", arguments='{"a": 1}')
        >>> llm = rxllm.scripted(["Adding.", Chunk(tool_calls=(call,))])
        >>> response = rxllm.collect(llm.stream("1+?"))
        >>> response.message()["tool_calls"][0]["function"]
        {'name': 'add', 'arguments': '{"a": 1}'}
        >>> response.message("anthropic")["content"][1]
        {'type': 'tool_use', 'id': 'c1', 'name': 'add', 'input': {'a': 1}}
        """
        own = self.message_format
        fmt = own if provider is None else messages.message_format(provider)
        return messages.assistant_message(self, fmt, own)

    @property
    def message_format(self) -> MessageFormat:
        """The message format of the provider that answered ("openai" or "anthropic"):
        what `message()` writes by default."""
        codec = self._private().get("_codec")
        if codec is not None:
            return codec.message_format  # type: ignore[no-any-return]
        return "anthropic" if self.provider in messages.ANTHROPIC_FORMAT else "openai"
