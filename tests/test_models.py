"""The data types (`rxllm.models`): frozen values, equal by what they say, cheap to build."""

from __future__ import annotations

import pickle

import pydantic
import pytest

import rxllm
from rxllm.models import (
    Chunk,
    Response,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
    text_chunk_maker,
)


class TestUsage:
    """Usage adds up field by field (a tool loop's or a retry's calls)."""

    def test_every_count_adds_up(self) -> None:
        a = Usage(
            input_tokens=10,
            output_tokens=3,
            total_tokens=13,
            cache_read_tokens=4,
            cache_write_tokens=2,
            reasoning_tokens=1,
        )
        b = Usage(input_tokens=1, output_tokens=1, total_tokens=2, reasoning_tokens=1)
        assert a + b == Usage(
            input_tokens=11,
            output_tokens=4,
            total_tokens=15,
            cache_read_tokens=4,
            cache_write_tokens=2,
            reasoning_tokens=2,
        )

    def test_the_extra_counts_default_to_zero(self) -> None:
        usage = Usage(input_tokens=3, output_tokens=2, total_tokens=5)
        assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (
            0,
            0,
            0,
        )


class TestChunk:
    """A chunk is a frozen value: equal when it says the same, whatever its raw source."""

    def test_unchecked_builds_a_chunk_equal_to_a_validated_one(self) -> None:
        call = ToolCallDelta(index=0, id="c", name="f", arguments="{")
        usage = Usage(input_tokens=1, output_tokens=1, total_tokens=2)
        fast = Chunk.unchecked(
            "a", "t", "r", b"\x00", "tr", (call,), "stop", usage, "m", "i", "openai"
        )
        slow = Chunk(
            content="a",
            thinking="t",
            refusal="r",
            audio=b"\x00",
            audio_transcript="tr",
            tool_calls=(call,),
            finish_reason="stop",
            usage=usage,
            model="m",
            id="i",
            provider="openai",
        )
        assert fast == slow and hash(fast) == hash(slow)

    def test_the_text_maker_follows_model_and_id_changes(self) -> None:
        make = text_chunk_maker("groq")
        first, second = make("a", "m1", "x", None), make("b", "m2", "y", None)
        assert (first.model, first.id, first.provider) == ("m1", "x", "groq")
        assert (second.model, second.id, second.content) == ("m2", "y", "b")

    def test_raw_is_built_once_from_the_codec_and_not_part_of_the_value(self) -> None:
        built: list[bytes] = []

        class Codec:
            def raw_event(self, data: bytes) -> str:
                built.append(data)
                return data.decode()

        chunk = Chunk.unchecked("a", raw_data=b'{"x": 1}', codec=Codec())
        assert chunk == Chunk(content="a")
        assert chunk.raw == '{"x": 1}' and chunk.raw == '{"x": 1}'
        assert built == [b'{"x": 1}']

    def test_fields_cannot_be_assigned(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="frozen"):
            Chunk(content="a").content = "b"  # type: ignore[misc]

    def test_is_empty_and_has_delta(self) -> None:
        assert Chunk().is_empty and not Chunk().has_delta
        assert Chunk(thinking="x").has_delta
        assert (
            not Chunk(finish_reason="stop").has_delta and not Chunk(finish_reason="stop").is_empty
        )


class TestToolCall:
    """A tool call's arguments parse to a dict, or say which tool sent what."""

    def test_args_parse_and_default_to_empty(self) -> None:
        assert ToolCall(name="f", arguments='{"a": 1}').args == {"a": 1}
        assert ToolCall(name="f", arguments="  ").args == {}

    @pytest.mark.parametrize(
        ("arguments", "match"), [('{"a":', "not valid JSON"), ("[1]", "not an object")]
    )
    def test_bad_arguments_name_the_tool(self, arguments: str, match: str) -> None:
        with pytest.raises(ValueError, match=f"'weather'.*{match}"):
            _ = ToolCall(name="weather", arguments=arguments).args


class TestToolResult:
    """A tool's outcome as text for the model, and as JSON for a checkpoint."""

    def test_content_of_outputs_and_errors(self) -> None:
        call = ToolCall(id="c1", name="f")
        assert ToolResult(call=call, output="plain").content == "plain"
        assert ToolResult(call=call, output={"a": [1, 2]}).content == '{"a":[1,2]}'
        failed = ToolResult(call=call, error="boom")
        assert failed.is_error and failed.content == "Error: boom"

    def test_what_json_cannot_hold_goes_as_its_str(self) -> None:
        result = ToolResult(call=ToolCall(id="c1", name="f"), output={1, 2} | {object()})
        dumped = result.model_dump(mode="json")
        assert isinstance(dumped["output"], list | str)
        assert isinstance(result.content, str)


class TestResponse:
    """A response knows its message format and adds up its steps."""

    def test_total_usage_sums_the_steps(self) -> None:
        one = Usage(input_tokens=2, output_tokens=1, total_tokens=3)
        step = Response(text="a", usage=one)
        last = Response(text="b", usage=one, steps=(step,))
        assert last.total_usage == one + one and step.total_usage == one

    def test_the_message_format_follows_the_codec_then_the_name(self) -> None:
        assert Response(provider="anthropic").message_format == "anthropic"
        assert Response(provider="local").message_format == "openai"
        local = rxllm.collect(rxllm.scripted("Hi.").stream("x"))
        assert local.message_format == "openai"

    def test_a_response_without_raw_pickles(self) -> None:
        response = rxllm.collect(rxllm.scripted("Hi there.").stream("x"))
        assert pickle.loads(pickle.dumps(response)).text == "Hi there."
