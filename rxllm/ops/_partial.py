"""`partial(Model)`: structured output as it streams — a growing `Model`, then the final one.

Why partial models are a variant of the model: pydantic parses incomplete JSON
(`experimental_allow_partial`), but a partial object still lacks required fields, so
validating it against `Model` itself fails until the very end. `partial_type(Model)` is a
subclass of `Model` whose fields are all optional (default `None`), recursively: nested
models, models inside lists, dicts, unions and `Annotated` become their partial variants
too. Partials are instances of it, so `isinstance(p, Model)` holds and every field the JSON
so far has fully or partly given is set; the others are `None`.

The text work is a plain object, `PartialDecoder` (`decode(piece) -> list`,
`flush() -> value`, like `SentenceDecoder`), usable without Rx. It re-parses the JSON so
far with pydantic when a piece adds non-blank text — O(text) per piece, so beyond 8 KB
it waits until 1/256 of the text past 8 KB is new, which keeps a long output's total cost
linear —
and skips the moments when the text ends inside a number, whose value could still change
("3" then "35"); strings grow in place ("trailing-strings"), so a partial never takes
back what an earlier one showed, for plain field types. A leading fence is taken as the
JSON's own; after prose, the first ```` ```json ```` (or untagged) block is read, blocks in
other languages before it skipped; everything from the closing fence on is ignored.

Why ~540 lines in one module: the partial-model type, the decoder and the operator are one
feature whose parts are only meaningful together (and tested so).
"""

from __future__ import annotations

import functools
import re
import threading
import types
import typing
from collections.abc import Callable, Iterable
from typing import (
    Annotated,
    Any,
    ForwardRef,
    Generic,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

import pydantic
import reactivex
from pydantic import BaseModel, TypeAdapter
from reactivex import abc

from rxllm.accumulator import Accumulator
from rxllm.errors import OutputValidationError
from rxllm.models import Chunk, Response
from rxllm.ops._completion import complete_with

__all__ = ["PartialDecoder", "partial", "partial_type"]

M = TypeVar("M")

Source = Literal["content", "tool_arguments"]

PARTIAL_CONTEXT = {"rxllm_partial": True}
"""The validation context of partials: validators can tell a partial from the final object."""

# Field attributes a partial variant keeps: how the field is named and described. Defaults,
# discriminators and the like are what a partial variant exists to drop.
_KEPT_ATTRIBUTES = (
    "alias",
    "alias_priority",
    "validation_alias",
    "serialization_alias",
    "title",
    "description",
    "examples",
    "json_schema_extra",
    "exclude",
    "repr",
)
_LEADING_FENCE = re.compile(r"\s*`{1,3}[^\S\n]*[\w+.-]*[^\S\n]*(?:\n|(?=[{\[]))")
_FENCE = re.compile(r"```[^\S\n]*([\w+.-]*)[^\S\n]*\n")
"""A fence line's start: its language, up to the end of the line."""
_JSON_FIRST = frozenset('{["-0123456789')
"""How a JSON text of a model, a list or a number starts; anything else is prose."""
_CLOSING_FENCE = "\n```"
# Re-parsing costs O(text). Up to this many characters every piece is parsed; beyond, a
# parse waits until 1/_PARSES_PER_TEXT of the text is new, so a long output costs about
# _PARSES_PER_TEXT parses of itself in all, not one per piece.
_ALWAYS_PARSE_BELOW = 8192
_PARSES_PER_TEXT = 256

# Partial variants and adapters are built once per type (pydantic keeps its own per-type
# caches the same way); a type that cannot be hashed is simply not a key here.
_cache: dict[Any, Any] = {}
_adapter_cache: dict[Any, tuple[TypeAdapter[Any], TypeAdapter[Any]]] = {}
_cache_lock = threading.Lock()


def partial_type(tp: Any) -> Any:
    """The partial variant of `tp`: every model in it with all fields optional, recursively.

    A model becomes a subclass named `Partial<Name>` (cached), with the same aliases,
    descriptions, constraints and validators, whose fields default to `None`.
    Discriminated unions become plain (smart) unions, because a partial object may not
    have its discriminator yet; one whose discriminator names a field is None until that
    field arrives, so no variant is guessed and then taken back. Other types are returned
    as they are. The model's own properties, computed fields and validators run on
    partials too, where fields may be `None`; a partial variant that pydantic cannot build
    falls back to the model itself.

    >>> from pydantic import BaseModel
    >>> class City(BaseModel):
    ...     name: str
    ...     population: int
    >>> PartialCity = partial_type(City)
    >>> PartialCity(name="Os")
    PartialCity(name='Os', population=None)
    >>> issubclass(PartialCity, City)
    True
    """
    hashable = _hashable(tp)
    with _cache_lock:
        cached = _cache.get(tp) if hashable else None
        if cached is not None:
            return cached
        builder = _PartialBuilder()
        try:
            converted = builder.convert(tp)
            builder.finish()
        except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, TypeError):
            # A model pydantic can use but whose variant it cannot build: partials will be
            # emitted only once the value validates as a whole, which is still correct.
            converted = tp
        else:
            _cache.update(builder.built)
        if hashable:
            _cache[tp] = converted
        return converted


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True


def _adapters(tp: Any) -> tuple[TypeAdapter[Any], TypeAdapter[Any]]:
    """`tp`'s own adapter and its partial variant's, built once per type."""
    hashable = _hashable(tp)
    with _cache_lock:
        adapters = _adapter_cache.get(tp) if hashable else None
    if adapters is None:
        adapters = (TypeAdapter(tp), TypeAdapter(partial_type(tp)))
        if hashable:
            with _cache_lock:
                _adapter_cache[tp] = adapters
    return adapters


class _PartialBuilder:
    """Builds the partial variants of the models in one type, self-references included."""

    def __init__(self) -> None:
        self.built: dict[type[BaseModel], type[BaseModel]] = {}
        self._refs: dict[type[BaseModel], str] = {}
        self._namespace: dict[str, Any] = {}

    def convert(self, tp: Any) -> Any:  # noqa: PLR0911 - one return per kind of type
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self._model(tp)
        origin = get_origin(tp)
        if origin is None or origin is Literal:
            return tp
        args = get_args(tp)
        if origin is Annotated:
            kept, waits = _without_discriminators(tp.__metadata__, args[0])
            metadata = kept + waits
            inner = self.convert(args[0])
            return Annotated[(inner, *metadata)] if metadata else inner
        converted = tuple(self.convert(arg) for arg in args)
        if origin in (Union, types.UnionType):
            return Union[converted]  # noqa: UP007 - a runtime union of computed members
        if all(new is old for new, old in zip(converted, args, strict=True)):
            return tp
        try:
            return origin[converted]
        except TypeError:
            return tp

    def finish(self) -> None:
        """Resolve the references of recursive models, now that every variant exists."""
        for partial_model in self.built.values():
            if not partial_model.__pydantic_complete__:
                partial_model.model_rebuild(_types_namespace=self._namespace)

    def _model(self, model: type[BaseModel]) -> Any:
        done = self.built.get(model) or _cache.get(model)
        if done is not None:
            return done
        ref = self._refs.get(model)
        if ref is not None:  # a model that contains itself: refer to it, resolve in finish()
            return ForwardRef(ref)
        ref = self._refs[model] = f"_Partial{model.__name__}_{id(model):x}"
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            spec = info.asdict()
            annotation = self.convert(spec["annotation"])
            metadata, waits = _without_discriminators(spec["metadata"], spec["annotation"])
            discriminator = spec["attributes"].get("discriminator")
            if discriminator is not None:  # Field(discriminator=...) on the field itself
                waits += _unknown_variant_is_none(discriminator, spec["annotation"])
            if metadata:
                annotation = Annotated[(annotation, *metadata)]
            optional: Any = typing.Optional[annotation]  # noqa: UP045 - built at runtime
            if waits:  # outside the Optional: the field may be None until its variant is known
                optional = Annotated[(optional, *waits)]
            attributes = {k: v for k, v in spec["attributes"].items() if k in _KEPT_ATTRIBUTES}
            fields[name] = (optional, pydantic.Field(None, **attributes))
        partial_model: type[BaseModel] = pydantic.create_model(
            f"Partial{model.__name__}",
            __base__=model,
            __module__=model.__module__,
            __doc__=f"`{model.__name__}` as far as it was streamed: every field optional.",
            **fields,
        )
        self.built[model] = partial_model
        self._namespace[ref] = partial_model
        return partial_model


def _without_discriminators(metadata: Iterable[Any], union: Any) -> tuple[list[Any], list[Any]]:
    """`metadata` without discriminators (a partial object may not have its own yet), and
    for each discriminator that names a field a validator that reads an object without that
    field as None, so no variant is guessed before the object says which it is."""
    kept: list[Any] = []
    waits: list[Any] = []
    for item in metadata:
        if isinstance(item, pydantic.Discriminator) or (
            isinstance(item, pydantic.fields.FieldInfo) and item.discriminator is not None
        ):
            waits += _unknown_variant_is_none(item.discriminator, union)
        else:
            kept.append(item)
    return kept, waits


def _unknown_variant_is_none(discriminator: Any, union: Any) -> list[Any]:
    if isinstance(discriminator, pydantic.Discriminator):
        discriminator = discriminator.discriminator
    if not isinstance(discriminator, str):
        return []  # a callable discriminator: the plain union decides
    keys = {discriminator}  # the field's name, and its aliases in the variants
    for given in get_args(union):
        member = get_args(given)[0] if get_origin(given) is Annotated else given
        field = member.model_fields.get(discriminator) if _is_model(member) else None
        if field is not None:
            keys.update(a for a in (field.alias, field.validation_alias) if isinstance(a, str))
    return [pydantic.BeforeValidator(functools.partial(_none_without, frozenset(keys)))]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _none_without(keys: frozenset[str], value: Any) -> Any:
    if isinstance(value, dict) and keys.isdisjoint(value):  # pyright: ignore[reportUnknownArgumentType]
        return None
    return value


class PartialDecoder(Generic[M]):
    """Turns incrementally arriving JSON text into partial values of `tp`, then the final one.

    `decode(piece)` returns `[partial]` when the text so far adds to the previous partial,
    else `[]`; `flush()` validates the whole text against `tp` itself and returns it
    (raising pydantic's `ValidationError` when it does not validate).

    >>> from pydantic import BaseModel
    >>> class City(BaseModel):
    ...     name: str
    ...     population: int
    >>> decoder = PartialDecoder(City)
    >>> decoder.decode('```json\\n{"name": "Os')
    [PartialCity(name='Os', population=None)]
    >>> decoder.decode('lo", "population": 7')  # "7" may become "709000": wait
    []
    >>> decoder.decode('09000}\\n```')
    [PartialCity(name='Oslo', population=709000)]
    >>> decoder.flush()
    City(name='Oslo', population=709000)
    """

    def __init__(self, tp: type[M]) -> None:
        final, partial = _adapters(tp)
        self._final: TypeAdapter[M] = final
        self._partial: TypeAdapter[M] = partial
        self._text = ""
        self._start: int | None = None  # where the JSON starts, once a fence is ruled out
        self._end: int | None = None  # where a closing fence starts
        self._searched = 0  # the closing fence is not before this
        self._previous: Any = None
        self._unparsed = 0  # characters added since the last parse

    @property
    def text(self) -> str:
        """All the text received so far, fences included."""
        return self._text

    def decode(self, piece: str) -> list[M]:
        """Add `piece`; the new partial value, if the text so far adds anything."""
        if not piece:
            return []
        self._text += piece
        if self._end is not None or piece.isspace():
            return []
        self._unparsed += len(piece)
        value = self._parse()
        if value is None or _adds_nothing(value, self._previous):
            return []
        self._previous = value
        return [value]

    def _parse(self) -> M | None:
        """The partial value of the text so far; None if it is not the moment to parse."""
        if self._start is None:
            self._start = _json_start(self._text)
            if self._start is None:
                return None
        json = self._json()
        if not json or json[-1].isdigit():  # a number at the end may still grow
            return None
        if self._unparsed * _PARSES_PER_TEXT < len(json) - _ALWAYS_PARSE_BELOW:
            return None  # a long text: wait until enough is new (keeps the total cost linear)
        self._unparsed = 0
        return self._validate_partial(json)

    def flush(self) -> M:
        """The whole text validated against the type itself (raises `ValidationError`)."""
        if self._start is None:
            self._start = _json_start(self._text) or 0
        json = self._json().rstrip().rstrip("`")
        return self._final.validate_json(json)

    def _json(self) -> str:
        assert self._start is not None
        text = self._text
        if self._start > 0 and self._end is None:  # inside a fence: the JSON ends at its close
            end = text.find(_CLOSING_FENCE, max(self._searched, self._start))
            if end >= 0:
                self._end = end
            self._searched = max(self._start, len(text) - len(_CLOSING_FENCE) + 1)
        return text[self._start : self._end]

    def _validate_partial(self, json: str) -> M | None:
        # Trailing strings first (a string field grows as it streams); a trailing string
        # that does not validate yet (a prefix of a Literal, a too-short string) is dropped
        # instead. Whatever fails is not an error here: the final validation is the judge.
        for mode in ("trailing-strings", True):
            try:
                return self._partial.validate_json(
                    json,
                    experimental_allow_partial=mode,
                    context=PARTIAL_CONTEXT,
                )
            except Exception:
                continue
        return None


def _json_start(text: str) -> int | None:
    """Where the JSON begins: after blank space and a leading fence, or inside the first
    fenced block after some prose ("Sure! Here it is: ```json ..."); None while undecided."""
    stripped = len(text) - len(text.lstrip())
    if stripped == len(text):
        return None
    first = text[stripped]
    if first == "`":
        fence = _LEADING_FENCE.match(text)
        return fence.end() if fence else None
    if first in _JSON_FIRST:
        return stripped
    return _json_block(text, stripped)


def _json_block(text: str, start: int) -> int | None:
    """Where the first fenced block after `start` that is JSON (```` ```json ```` or no
    language) begins; blocks in another language are skipped whole."""
    inside = False  # within a block of another language: the next fence closes it
    for fence in _FENCE.finditer(text, start):
        if inside:
            inside = False
        elif fence.group(1).lower() in ("", "json", "jsonc", "json5"):
            return fence.end()
        else:
            inside = True
    return None


def _adds_nothing(value: Any, previous: Any) -> bool:
    if previous is None:
        if isinstance(value, BaseModel):
            return not value.model_fields_set
        return value is None or value in ({}, [])
    return bool(value == previous)


def partial(
    model: type[M], *, source: Source = "content"
) -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[M]]:
    """Structured output as it streams: partially filled `model`s, the validated one last.

    A partial is emitted each time the JSON so far adds a field value (never twice the
    same one; past 8 KB of JSON, at most once per 1/256 of what is past 8 KB). It is an
    instance of
    `partial_type(model)`, a subclass of `model` whose unfilled fields are `None` (see the
    module docstring). Partials are validated with
    `context={"rxllm_partial": True}` so a validator can let incomplete values pass;
    a partial that does not validate is skipped, not an error. When the source completes,
    the whole JSON is validated against `model` itself and emitted last. If that fails
    (invalid or cut-off JSON, no output at all, a validation error) the stream fails with
    `OutputValidationError` (`retryable=False`, `partial` = the response so far, pydantic's
    error as `__cause__`). Errors from the source pass through; nothing is validated then.

    `source="content"` (the default) reads the text; `source="tool_arguments"` reads the
    arguments of the first tool call (index 0), for structured output through a forced
    tool call. A leading fence is taken as the JSON's own; after prose ("Sure! Here it
    is:"), the first ```` ```json ```` (or untagged) block is read, blocks in other
    languages before it skipped; prose before bare JSON is not skipped (the error says so).

        chunks:   -'{"city": "Os'--'lo", "pop'--'": 709}'-|
        partial(City)
        output:   -P(city="Os")----P(city="Oslo")---------P(...)-City(...)|

    >>> import rxllm
    >>> from pydantic import BaseModel
    >>> from rxllm import ops
    >>> class City(BaseModel):
    ...     name: str
    ...     population: int
    >>> llm = rxllm.scripted(['{"name": "Os', 'lo", "popu', 'lation": 709000}'])
    >>> for city in rxllm.iterate(llm.stream("Oslo?").pipe(ops.partial(City))):
    ...     print(type(city).__name__, city.name, city.population)
    PartialCity Os None
    PartialCity Oslo None
    PartialCity Oslo 709000
    City Oslo 709000
    """
    if source not in ("content", "tool_arguments"):
        raise ValueError(f"source must be 'content' or 'tool_arguments', not {source!r}")
    if isinstance(model, str):
        raise TypeError(
            f"partial() takes a type (a pydantic model class, list[Model], ...), not the "
            f"str {model!r}: pass the class itself"
        )
    name = getattr(model, "__name__", repr(model))
    _adapters(model)  # a type pydantic cannot handle fails here, not at subscription

    def operator(chunks: reactivex.Observable[Chunk]) -> reactivex.Observable[M]:
        def subscribe(
            observer: abc.ObserverBase[M], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            decoder = PartialDecoder(model)
            acc = Accumulator()

            def on_next(chunk: Chunk) -> None:
                if not isinstance(chunk, Chunk):
                    observer.on_error(_not_a_chunk("partial", chunk))
                    return
                nonlocal decoder
                acc.push(chunk)
                if chunk.tool_results:  # a tool loop's next step: its answer is read anew
                    decoder = PartialDecoder(model)
                if source == "content":
                    piece = chunk.content
                else:
                    piece = "".join(d.arguments for d in chunk.tool_calls if d.index == 0)
                for value in decoder.decode(piece):
                    observer.on_next(value)

            def on_completed() -> None:
                try:
                    value = decoder.flush()
                except Exception as error:
                    response = acc.response()
                    failure = OutputValidationError(
                        _failure_message(name, source, decoder.text, response, error),
                        partial=response,
                        provider=response.provider if len(acc) else None,
                        retryable=False,
                    )
                    failure.__cause__ = error
                    observer.on_error(failure)
                    return
                complete_with(observer, value)

            return chunks.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


def _not_a_chunk(name: str, item: object) -> TypeError:
    return TypeError(
        f"{name}() takes an observable of Chunk, got {type(item).__name__}: apply it to "
        "what LLM.stream() returns, before operators like text()"
    )


def _failure_message(
    name: str, source: Source, text: str, response: Response, error: Exception
) -> str:
    what = "content" if source == "content" else "tool-call arguments"
    if not text.strip():
        message = f"partial({name}): the response has no {what} to validate"
        if response.refusal:
            message += f"; the model refused: {response.refusal[:200]!r}"
        elif source == "content" and response.tool_calls:
            message += "; it made a tool call instead: use partial(..., source='tool_arguments')"
    elif isinstance(error, pydantic.ValidationError):
        problems = [
            (".".join(str(part) for part in e["loc"]) + ": " if e["loc"] else "") + e["msg"]
            for e in error.errors(include_url=False)
        ]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        verb = "does" if source == "content" else "do"
        message = f"partial({name}): the {what} {verb} not validate as {name}: "
        message += "; ".join(problems[:3]) + more
    else:
        message = f"partial({name}): validating the {what} failed: {type(error).__name__}: {error}"
    start = text.lstrip()[:1]
    if start and start not in '{["`':
        fenced = "" if "```" in text else ", and no ```json block"
        message += (
            f"; the {what} starts with prose, not JSON ({text.strip()[:40]!r}){fenced}: ask "
            "for JSON only" + (f", or pass response_format={name}" if source == "content" else "")
        )
    if response.finish_reason == "content_filter":
        message += " (the model refused or was filtered: finish_reason='content_filter')"
    elif response.finish_reason == "length":
        message += " (the output was cut off at max_tokens: finish_reason='length')"
    elif response.finish_reason is None and text.strip():
        message += " (the stream ended before the provider finished)"
    return message
