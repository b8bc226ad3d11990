"""`partial(Model)`: growing partial models while the JSON streams, the validated one last."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any, Literal, get_args

import pydantic
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

import rxllm
from rxllm.models import Chunk, ToolCallDelta
from rxllm.ops._partial import PartialDecoder, partial, partial_type

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


class Address(BaseModel):
    city: str
    zip_code: str | None = Field(default=None, alias="zip")


class Person(BaseModel):
    name: str
    age: int
    height: float = 0.0
    admin: bool = False
    tags: list[str] = []
    address: Address
    friends: list[Address] = []


PartialPerson = partial_type(Person)
PartialAddress = partial_type(Address)


class Node(BaseModel):
    label: str
    children: list[Node] = []


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Owner(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")


def error_of(message: Recorded[Any]) -> Exception:
    assert isinstance(message.value, OnError)
    return message.value.exception


def decode_all(tp: Any, pieces: list[str]) -> tuple[list[Any], Any]:
    decoder = PartialDecoder(tp)
    partials = [value for piece in pieces for value in decoder.decode(piece)]
    return partials, decoder.flush()


class TestPartialType:
    """The partial variant of a model: every field optional, recursively."""

    def test_fields_become_optional_and_the_variant_is_a_subclass(self) -> None:
        assert issubclass(PartialPerson, Person)
        empty = PartialPerson()
        assert empty.name is None and empty.address is None and empty.tags is None
        assert PartialPerson.__name__ == "PartialPerson"

    def test_nested_models_and_lists_of_models_become_partial(self) -> None:
        value = PartialPerson.model_validate({"address": {}, "friends": [{"city": "Ber"}, {}]})
        assert type(value.address) is PartialAddress
        assert value.friends == [PartialAddress(city="Ber"), PartialAddress()]

    def test_aliases_and_descriptions_are_kept(self) -> None:
        assert PartialAddress.model_validate({"zip": "0150"}).zip_code == "0150"
        assert PartialAddress.model_fields["zip_code"].alias == "zip"

    def test_the_variant_is_cached(self) -> None:
        assert partial_type(Person) is PartialPerson
        assert get_args(partial_type(list[Person])) == (PartialPerson,)

    def test_recursive_models(self) -> None:
        partial_node = partial_type(Node)
        value = partial_node.model_validate({"children": [{"label": "a", "children": [{}]}]})
        assert value.label is None
        assert value.children[0].children == [partial_node()]

    def test_a_discriminated_union_waits_for_its_discriminator(self) -> None:
        # no variant is guessed (a guess could be taken back): None until "kind" arrives
        assert partial_type(Owner).model_validate({"pet": {"lives": 9}}).pet is None
        value = partial_type(Owner).model_validate({"pet": {"kind": "dog"}})
        assert type(value.pet).__name__ == "PartialDog" and value.pet.good is None

    def test_a_discriminator_under_an_alias_is_found_by_its_alias(self) -> None:
        class Fish(BaseModel):
            kind: Literal["fish"] = Field(alias="type")
            fins: int

        class Bird(BaseModel):
            kind: Literal["bird"] = Field(alias="type")
            wings: int

        class Tank(BaseModel):
            pet: Fish | Bird = Field(discriminator="kind")

        value = partial_type(Tank).model_validate({"pet": {"type": "bird"}})
        assert type(value.pet).__name__ == "PartialBird"
        assert partial_type(Tank).model_validate({"pet": {"wings": 2}}).pet is None

    def test_streamed_pets_never_change_species(self) -> None:
        text = '{"pet": {"kind": "dog", "good": true}}'
        partials, final = decode_all(Owner, list(text))
        assert {type(p.pet).__name__ for p in partials if p.pet is not None} == {"PartialDog"}
        assert final == Owner(pet=Dog(kind="dog", good=True))

    def test_other_types_are_kept(self) -> None:
        assert partial_type(int) is int
        assert partial_type(dict[str, int]) == dict[str, int]


class TestDecoder:
    """From JSON text, at any chunking, to partial values, without Rx."""

    def test_each_new_field_value_is_one_partial(self) -> None:
        pieces = ['{"name": "Al', 'ice", ', '"age": 3', "0, ", '"address": {"ci', 'ty": "Oslo"}}']
        partials, final = decode_all(Person, pieces)
        assert [(p.name, p.age, p.address) for p in partials] == [
            ("Al", None, None),
            ("Alice", None, None),
            ("Alice", 30, None),
            ("Alice", 30, PartialAddress()),
            ("Alice", 30, PartialAddress(city="Oslo")),
        ]
        assert final == Person(name="Alice", age=30, address=Address(city="Oslo"))
        assert type(final) is Person

    def test_a_number_at_the_end_waits_for_what_follows(self) -> None:
        decoder = PartialDecoder(Person)
        assert decoder.decode('{"age": 3') == []
        assert decoder.decode("5") == []
        assert decoder.decode(",") == [PartialPerson(age=35)]
        assert decoder.decode('"height": 1.') == []  # pydantic drops an unfinished number
        assert decoder.decode("8") == []
        assert decoder.decode("}") == [PartialPerson(age=35, height=1.8)]

    def test_nothing_new_is_not_emitted_again(self) -> None:
        decoder = PartialDecoder(Person)
        assert decoder.decode("{") == []  # no field value yet
        assert decoder.decode('"name": "A"') == [PartialPerson(name="A")]
        assert decoder.decode("  \n") == []
        assert decoder.decode(", ") == []
        assert decoder.decode('"ag') == []  # a key alone adds no value

    def test_literals_wait_until_they_are_complete(self) -> None:
        decoder = PartialDecoder(Cat)
        assert decoder.decode('{"lives": 7, "kind": "ca') == [partial_type(Cat)(lives=7)]
        assert decoder.decode('t"') == [partial_type(Cat)(lives=7, kind="cat")]

    def test_true_false_null_appear_when_complete(self) -> None:
        decoder = PartialDecoder(Person)
        assert decoder.decode('{"admin": tr') == []
        assert decoder.decode("ue") == [PartialPerson(admin=True)]

    @pytest.mark.parametrize(
        "text",
        [
            '```json\n{"city": "Oslo"}\n```',
            '\n  ```JSON\n{"city": "Oslo"}\n```\nHope this helps!',
            '```\n{"city": "Oslo"}```',
            '```json{"city": "Oslo"}```',
            '`{"city": "Oslo"}`',
            '  {"city": "Oslo"}  \n',
            '``` json\n{"city": "Oslo"}\n```',
            'Sure! Here it is:\n```json\n{"city": "Oslo"}\n```\nAnything else?',
            'The answer:\n\n  ```\n{"city": "Oslo"}\n```',
            'Sure! Here it is: ```json\n{"city": "Oslo"}\n```',
            'Code:\n```python\nprint(1)\n```\nand the data:\n```json\n{"city": "Oslo"}\n```',
        ],
    )
    def test_a_markdown_fence_is_skipped(self, text: str) -> None:
        for pieces in ([text], list(text)):
            partials, final = decode_all(Address, pieces)
            assert final == Address(city="Oslo")
            assert partials[-1] == PartialAddress(city="Oslo")

    def test_invalid_json_fails_at_flush(self) -> None:
        decoder = PartialDecoder(Address)
        decoder.decode('{"city": "Os')
        with pytest.raises(pydantic.ValidationError):
            decoder.flush()

    def test_prose_before_bare_json_is_not_skipped(self) -> None:
        decoder = PartialDecoder(Address)
        partials = decoder.decode('Sure! {"city": "Oslo"}')
        assert partials == []
        with pytest.raises(pydantic.ValidationError):
            decoder.flush()

    def test_prose_before_bare_json_fails_saying_so(self) -> None:
        stream = reactivex.of(Chunk(content='Sure! {"city": '), Chunk(content='"Oslo"}'))
        errors: list[Exception] = []
        stream.pipe(partial(Address)).subscribe(on_error=errors.append)
        assert "starts with prose, not JSON ('Sure! {" in str(errors[0])
        assert "and no ```json block" in str(errors[0])
        assert "response_format=Address" in str(errors[0])
        fenced = reactivex.of(Chunk(content="2 cities:\n```python\nx = 1\n```\n"))
        errors.clear()
        fenced.pipe(partial(Address)).subscribe(on_error=errors.append)
        assert "starts with prose, not JSON ('2 cities" in str(errors[0])
        assert "no ```json block" not in str(errors[0])

    def test_a_long_output_is_parsed_less_often_but_completely(self) -> None:
        items = [Address(city=f"City number {i}") for i in range(800)]  # 23 KB
        text = json.dumps([a.model_dump(by_alias=True) for a in items])
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
        partials, final = decode_all(list[Address], pieces)
        assert final == items
        # Every piece up to 8 KB (~1400 partials), then about 256 parses per growth by e.
        assert 1500 < len(partials) < len(pieces) // 2
        assert all(len(a) <= len(b) for a, b in itertools.pairwise(partials))

    def test_a_list_of_models(self) -> None:
        partials, final = decode_all(list[Address], ['[{"city": "A"}, {"ci', 'ty": "B"}]'])
        assert partials == [
            [PartialAddress(city="A"), PartialAddress()],
            [PartialAddress(city="A"), PartialAddress(city="B")],
        ]
        assert final == [Address(city="A"), Address(city="B")]

    def test_validators_can_tell_a_partial_from_the_final_value(self) -> None:
        seen: list[bool] = []

        class Strict(BaseModel):
            word: Annotated[str, Field(min_length=4)]

            @field_validator("word")
            @classmethod
            def check(cls, value: str, info: ValidationInfo) -> str:
                seen.append(bool(info.context and info.context.get("rxllm_partial")))
                return value

        partials, final = decode_all(Strict, ['{"word": "ab', "cdef", '"}'])
        # "ab" is too short: the partial is retried without the trailing string.
        assert [p.word for p in partials] == ["abcdef"]
        assert final.word == "abcdef"
        assert seen == [True, True, False]


class TestOperator:
    """The Rx operator: timing, completion, errors, disposal."""

    def test_partials_then_the_model_at_completion(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(150, Chunk(content="ignored")),
            on_next(210, Chunk(content='{"city": "Os')),
            on_next(220, Chunk(content="")),
            on_next(230, Chunk(content='lo", "zip": "0150"}')),
            on_next(240, Chunk(finish_reason="stop")),
            on_completed(250),
        )
        results = scheduler.start(lambda: xs.pipe(partial(Address)))
        assert results.messages == [
            on_next(210, PartialAddress(city="Os")),
            on_next(230, PartialAddress(city="Oslo", zip="0150")),
            on_next(250, Address(city="Oslo", zip="0150")),
            on_completed(250),
        ]
        assert xs.subscriptions == [subscribe(200, 250)]

    def test_invalid_output_is_an_output_validation_error(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(content='{"zip": "0150"', provider="openai", model="m")),
            on_next(220, Chunk(content="}", finish_reason="stop", provider="openai")),
            on_completed(230),
        )
        results = scheduler.start(lambda: xs.pipe(partial(Address)))
        assert [m.time for m in results.messages] == [210, 230]
        error = error_of(results.messages[-1])
        assert isinstance(error, rxllm.OutputValidationError)
        assert error.retryable is False
        assert error.provider == "openai"
        assert "Address" in str(error) and "city: Field required" in str(error)
        assert isinstance(error.__cause__, pydantic.ValidationError)
        assert error.partial is not None
        assert error.partial.text == '{"zip": "0150"}'
        assert error.partial.chunk_count == 2
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_cut_off_output_says_so(self) -> None:
        stream = reactivex.of(Chunk(content='{"city": "Os'), Chunk(finish_reason="length"))
        errors: list[Exception] = []
        stream.pipe(partial(Address)).subscribe(on_error=errors.append)
        assert isinstance(errors[0], rxllm.OutputValidationError)
        assert "finish_reason='length'" in str(errors[0])
        assert "Invalid JSON" in str(errors[0])

    def test_a_refusal_says_so(self) -> None:
        # Anthropic's stop_reason "refusal" is finish_reason "content_filter", with no
        # refusal text of its own
        stream = reactivex.of(
            Chunk(content="I can't help with that."), Chunk(finish_reason="content_filter")
        )
        errors: list[Exception] = []
        stream.pipe(partial(Address)).subscribe(on_error=errors.append)
        assert "the model refused or was filtered" in str(errors[0])

    def test_no_output_at_all(self) -> None:
        call = ToolCallDelta(index=0, id="c", name="f", arguments="{}")
        errors: list[Exception] = []
        reactivex.of(Chunk(tool_calls=(call,))).pipe(partial(Address)).subscribe(
            on_error=errors.append
        )
        assert "no content" in str(errors[0]) and "source='tool_arguments'" in str(errors[0])

    def test_errors_pass_through_without_validation(self) -> None:
        error = rxllm.ServerError("overloaded")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(content='{"city": "A"')), on_error(220, error)
        )
        results = scheduler.start(lambda: xs.pipe(partial(Address)))
        assert results.messages == [on_next(210, PartialAddress(city="A")), on_error(220, error)]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_disposal_unsubscribes_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(content='{"city": "A"')),
            on_next(230, Chunk(content="}")),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(partial(Address)), disposed=220)
        assert results.messages == [on_next(210, PartialAddress(city="A"))]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_tool_arguments_as_the_source(self) -> None:
        def args(index: int, text: str) -> Chunk:
            return Chunk(tool_calls=(ToolCallDelta(index=index, arguments=text),))

        stream = reactivex.of(
            args(0, '{"city": '), args(0, '"Oslo"'), args(1, '{"city": "X"}'), args(0, "}")
        )
        found: list[Any] = []
        stream.pipe(partial(Address, source="tool_arguments")).subscribe(found.append)
        assert found == [PartialAddress(city="Oslo"), Address(city="Oslo")]

    def test_each_subscription_decodes_on_its_own(self) -> None:
        stream = reactivex.of(Chunk(content='{"city": '), Chunk(content='"A"}')).pipe(
            partial(Address)
        )
        first: list[Any] = []
        second: list[Any] = []
        stream.subscribe(first.append)
        stream.subscribe(second.append)
        assert first == second == [PartialAddress(city="A"), Address(city="A")]

    def test_other_items_are_a_type_error(self) -> None:
        failures: list[Exception] = []
        reactivex.of("text").pipe(partial(Address)).subscribe(on_error=failures.append)  # type: ignore[arg-type]
        assert isinstance(failures[0], TypeError)

    def test_a_bad_source_argument_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="source"):
            partial(Address, source="thinking")  # type: ignore[arg-type]

    def test_with_a_provider(self) -> None:
        text = '```json\n{"name": "Ada", "age": 36, "tags": ["math", "code"], '
        text += '"address": {"city": "London"}}\n```'
        llm = rxllm.scripted([text[i : i + 7] for i in range(0, len(text), 7)], delay=0.0005)
        found = list(rxllm.iterate(llm.stream("who?").pipe(partial(Person))))
        assert found[-1] == Person(
            name="Ada", age=36, tags=["math", "code"], address=Address(city="London")
        )
        assert all(type(p) is PartialPerson for p in found[:-1])
        assert len(found) > 5

    def test_with_a_provider_that_fails(self) -> None:
        llm = rxllm.scripted(['{"city": "Os'], finish_reason="length")
        with pytest.raises(rxllm.OutputValidationError) as caught:
            list(rxllm.iterate(llm.stream("x").pipe(partial(Address))))
        assert caught.value.partial is not None
        assert caught.value.partial.finish_reason == "length"


# --- properties -------------------------------------------------------------------------

_WORDS = st.text(alphabet=st.sampled_from(list('ab "\\é\n😀{}[],:1')), max_size=12)
_ADDRESSES = st.builds(Address, city=_WORDS, zip=st.none() | _WORDS)
_PEOPLE = st.builds(
    Person,
    name=_WORDS,
    age=st.integers(-(10**6), 10**6),
    height=st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([1e-7, 2.5e20]),
    admin=st.booleans(),
    tags=st.lists(_WORDS, max_size=4),
    address=_ADDRESSES,
    friends=st.lists(_ADDRESSES, max_size=3),
)


@st.composite
def person_and_split(draw: st.DrawFn) -> tuple[Person, list[str]]:
    person = draw(_PEOPLE)
    indent = draw(st.sampled_from([None, 1]))
    text = json.dumps(person.model_dump(by_alias=True), indent=indent, ensure_ascii=False)
    if draw(st.booleans()):
        text = f"```json\n{text}\n```"
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=40)))
    bounds = [0, *cuts, len(text)]
    return person, [text[a:b] for a, b in itertools.pairwise(bounds)]


def grows(before: Any, after: Any) -> bool:
    """True when `after` keeps everything `before` showed, possibly with more."""
    if before is None:
        return True
    if isinstance(before, str):
        return isinstance(after, str) and after.startswith(before)
    if isinstance(before, list):
        return (
            isinstance(after, list)
            and len(after) >= len(before)
            and all(grows(b, a) for b, a in zip(before, after, strict=False))
        )
    if isinstance(before, dict):
        return isinstance(after, dict) and all(grows(v, after.get(k)) for k, v in before.items())
    return bool(before == after)


class TestProperties:
    """Invariants for any model value and any chunking of its JSON."""

    @settings(max_examples=300, deadline=None)
    @given(person_and_split())
    def test_chunking_never_changes_the_result_and_partials_only_grow(
        self, case: tuple[Person, list[str]]
    ) -> None:
        person, pieces = case
        partials, final = decode_all(Person, pieces)
        assert final == person
        dumps = [p.model_dump() for p in partials]
        assert all(grows(a, b) for a, b in itertools.pairwise(dumps))
        assert all(a != b for a, b in itertools.pairwise(dumps))
        assert grows(dumps[-1] if dumps else None, person.model_dump())

    @settings(max_examples=100, deadline=None)
    @given(person_and_split())
    def test_the_operator_ends_with_the_model(self, case: tuple[Person, list[str]]) -> None:
        person, pieces = case
        found: list[Any] = []
        reactivex.from_iterable([Chunk(content=p) for p in pieces]).pipe(partial(Person)).subscribe(
            found.append
        )
        assert found[-1] == person and type(found[-1]) is Person
