"""Provider event mappers are pure: recorded-style events in, normalized chunks out."""

from __future__ import annotations

import base64

import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk

import rxllm
from rxllm.accumulator import Accumulator
from rxllm.providers.anthropic_messages import AnthropicEvents, MessagesCodec
from rxllm.providers.openai_chat import ChatCodec, OpenAIEvents

_REQUEST = rxllm.Request(messages=({"role": "user", "content": "hi"},))


def openai_events() -> OpenAIEvents:
    """The event mapper of a Chat Completions call, as the provider makes it."""
    return ChatCodec(_REQUEST, model="gpt-x").events()


def anthropic_events() -> AnthropicEvents:
    """The event mapper of a Messages call, as the provider makes it."""
    return MessagesCodec(_REQUEST, model="claude-x").events()


def openai_chunk(delta: dict, finish: str | None = None, **extra) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


OPENAI_TOOLS = [
    openai_chunk({"role": "assistant", "content": None}),
    openai_chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        }
    ),
    openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Os'}}]}),
    openai_chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "time", "arguments": "{}"},
                }
            ]
        }
    ),
    openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'lo"}'}}]}),
    openai_chunk({}, "tool_calls"),
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-x",
        "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 11, "total_tokens": 18},
    },
]


def run_openai(events: list[dict]) -> list[rxllm.Chunk]:  # type: ignore[type-arg]
    mapper = openai_events()
    chunks = [mapper.map(None, e) for e in events]
    assert mapper.map(None, b"[DONE]") is None and mapper.done
    return [c for c in chunks if c is not None]


def test_openai_parallel_tool_calls_usage_and_finish() -> None:
    chunks = run_openai(OPENAI_TOOLS)
    acc = Accumulator()
    acc.extend(chunks)
    response = acc.response()
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
        ("c1", "weather", {"city": "Oslo"}),
        ("c2", "time", {}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage == rxllm.Usage(input_tokens=7, output_tokens=11, total_tokens=18)
    assert (response.id, response.model, response.provider) == ("chatcmpl-1", "gpt-x", "openai")
    assert isinstance(chunks[0].raw, ChatCompletionChunk)
    # Response.raw is what the SDK's own accumulator builds from the same chunks
    raw = response.raw
    calls = raw.choices[0].message.tool_calls
    assert [c.function.arguments for c in calls] == ['{"city": "Oslo"}', "{}"]
    assert raw.choices[0].finish_reason == "tool_calls"


def test_openai_refusal_reasoning_and_audio() -> None:
    pcm = bytes(range(10))
    chunks = run_openai(
        [
            openai_chunk({"reasoning_content": "think"}),
            openai_chunk({"refusal": "I can't"}),
            openai_chunk(
                {"audio": {"id": "a1", "data": base64.b64encode(pcm).decode(), "transcript": "hi"}}
            ),
            openai_chunk({}, "content_filter"),
        ]
    )
    acc = Accumulator()
    acc.extend(chunks)
    response = acc.response()
    assert (response.thinking, response.refusal) == ("think", "I can't")
    assert (response.audio, response.audio_transcript) == (pcm, "hi")
    assert response.finish_reason == "content_filter"


@pytest.mark.parametrize("cut", [5, 7])
def test_openai_audio_that_is_not_whole_base64_is_a_clear_stream_error(cut: int) -> None:
    # OpenAI sends each delta's audio as base64 that decodes on its own. A delta split
    # inside a 4-character group cannot be told from unpadded deltas, so joining deltas
    # could corrupt the audio silently: it is an error that says what was expected.
    encoded = base64.b64encode(bytes(range(30))).decode()
    with pytest.raises(rxllm.StreamError, match="not whole base64"):
        run_openai(
            [openai_chunk({"audio": {"data": part}}) for part in (encoded[:cut], encoded[cut:])]
        )


def test_openai_audio_base64_with_line_breaks_decodes() -> None:
    pcm = bytes(range(100))
    chunks = run_openai([openai_chunk({"audio": {"data": base64.encodebytes(pcm).decode()}})])
    assert chunks[0].audio == pcm


def test_openai_padded_audio_deltas_each_decode() -> None:
    pieces = [bytes([1]), bytes([2, 3]), bytes([4, 5, 6])]  # "AQ==", "AgM=", "BAUG"
    chunks = run_openai(
        [openai_chunk({"audio": {"data": base64.b64encode(p).decode()}}) for p in pieces]
    )
    assert [chunk.audio for chunk in chunks] == pieces


def test_openai_error_event_raises_a_retryable_stream_error() -> None:
    with pytest.raises(rxllm.StreamError) as caught:
        openai_events().map(None, {"error": {"message": "boom", "type": "server_error"}})
    assert isinstance(caught.value, rxllm.ServerError) and caught.value.retryable


def test_openai_azure_prompt_filter_event_is_an_empty_chunk() -> None:
    chunk = openai_events().map(
        None,
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": [],
        },
    )
    assert chunk is not None and chunk.is_empty


def test_openai_end_without_done_is_interrupted() -> None:
    mapper = openai_events()
    mapper.map(None, openai_chunk({"content": "Hi"}))
    with pytest.raises(rxllm.StreamInterrupted):
        mapper.end()


ANTHROPIC = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    },
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Let me see."},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "sig"},
    },
    {"type": "content_block_stop", "index": 0},
    {"type": "ping"},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Sure"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": '{"city":'},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'},
    },
    {"type": "content_block_stop", "index": 2},
    {
        "type": "content_block_start",
        "index": 3,
        "content_block": {"type": "tool_use", "id": "tu_2", "name": "time", "input": {}},
    },
    {"type": "content_block_stop", "index": 3},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 40},
    },
    {"type": "message_stop"},
]


def test_anthropic_thinking_text_tools_usage_and_stop_reason() -> None:
    mapper = anthropic_events()
    chunks = [c for e in ANTHROPIC if (c := mapper.map(e["type"], e)) is not None]
    assert mapper.done
    acc = Accumulator()
    acc.extend(chunks)
    response = acc.response()
    assert response.thinking == "Let me see."
    assert response.text == "Sure"
    # ordinals 0 and 1, not the content-block indexes 2 and 3
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
        ("tu_1", "weather", {"city": "Oslo"}),
        ("tu_2", "time", {}),
    ]
    assert {d.index for c in chunks for d in c.tool_calls} == {0, 1}
    assert response.finish_reason == "tool_calls"
    assert response.usage == rxllm.Usage(input_tokens=12, output_tokens=40, total_tokens=52)
    assert (response.id, response.model) == ("msg_1", "claude-x")
    assert all(c.raw is not None for c in chunks)
    assert chunks[0].raw.type == "message_start"
    assert isinstance(chunks[0].raw, RawMessageStreamEvent.__args__)  # type: ignore[attr-defined]
    message = response.raw  # what anthropic's accumulate_event builds
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].signature == "sig"
    assert message.content[2].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 40


def _anthropic_response(events: list[dict]) -> rxllm.Response:  # type: ignore[type-arg]
    """The response a fresh mapper makes of `events`, accumulated."""
    mapper = anthropic_events()
    acc = Accumulator()
    acc.extend([c for e in events if (c := mapper.map(e["type"], e)) is not None])
    return acc.response()


def _message_start(content: list[dict], stop_reason: str | None = None) -> dict:  # type: ignore[type-arg]
    message = {
        "id": "msg_p",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 0},
    }
    return {"type": "message_start", "message": message}


def test_anthropic_content_given_whole_in_message_start() -> None:
    # vercel/ai's recorded "message_start prepopulated content": server tool results and a
    # client tool call arrive in message_start, stop reason included, then message_stop.
    events = [
        _message_start(
            [
                {"type": "code_execution_tool_result", "tool_use_id": "srv_1", "content": {}},
                {"type": "text", "text": "Looking up."},
                {"type": "tool_use", "id": "tu_9", "name": "lookup", "input": {"id": "c_1"}},
            ],
            stop_reason="tool_use",
        ),
        {"type": "message_stop"},
    ]
    response = _anthropic_response(events)
    assert response.text == "Looking up."
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
        ("tu_9", "lookup", {"id": "c_1"})
    ]
    assert response.finish_reason == "tool_calls"
    assert response.raw.stop_reason == "tool_use"
    assert response.raw.content[2].input == {"id": "c_1"}


@pytest.mark.parametrize("deltas", [[], ['{"b": ', "2}"]])
def test_anthropic_tool_input_in_its_start_is_replaced_by_deltas(deltas: list[str]) -> None:
    # As the SDK's accumulator: input_json_deltas replace an input given in the block's
    # start; without deltas the start's input is the call's arguments.
    events = [
        _message_start([]),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": 1}},
        },
        *(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": part},
            }
            for part in deltas
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    response = _anthropic_response(events)
    expected = {"b": 2} if deltas else {"a": 1}
    assert [c.args for c in response.tool_calls] == [expected]
    assert response.raw.content[0].input == expected  # the SDK's accumulator agrees


@pytest.mark.parametrize("deltas", [[], [""], ["", ""]])
def test_anthropic_tool_call_without_arguments_has_an_empty_json_object(
    deltas: list[str],
) -> None:
    # The API starts such a call with input {} and may send an empty input_json_delta:
    # arguments were "" (not JSON), where OpenAI sends "{}".
    events = [
        _message_start([]),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "tu_1", "name": "now", "input": {}},
        },
        *(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": part},
            }
            for part in deltas
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
        {"type": "message_stop"},
    ]
    response = _anthropic_response(events)
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("now", "{}")]
    assert response.raw.content[0].input == {}


@pytest.mark.parametrize(
    ("reason", "normalized"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_anthropic_stop_reasons(reason: str, normalized: str) -> None:
    mapper = anthropic_events()
    chunk = mapper.map(
        "message_delta", {"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {}}
    )
    assert chunk is not None and chunk.finish_reason == normalized


def test_anthropic_error_event_overloaded_is_retryable() -> None:
    with pytest.raises(rxllm.StreamError) as caught:
        anthropic_events().map(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    assert caught.value.retryable and isinstance(caught.value, rxllm.ServerError)
    with pytest.raises(rxllm.StreamError) as other:
        anthropic_events().map(
            "error", {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
        )
    assert not other.value.retryable


def test_anthropic_end_before_message_stop_is_interrupted() -> None:
    mapper = anthropic_events()
    mapper.map("message_start", ANTHROPIC[0])
    with pytest.raises(rxllm.StreamInterrupted):
        mapper.end()


# --- the text-delta fast path makes the same chunk as the general path -------------------

OPENAI_TEXT_SHAPES = [
    openai_chunk({"content": "Hel"}),
    openai_chunk({"content": "Hel"}, usage=None),  # include_usage: "usage": null on each
    openai_chunk({"content": "lo"}, obfuscation="xyz", service_tier="default"),
    openai_chunk({"content": ""}),
    openai_chunk({"role": "assistant", "content": "Hi"}),
    openai_chunk({"content": "!"}, finish="stop"),
    openai_chunk({"content": None}),
    openai_chunk({"content": "x"}, usage={"prompt_tokens": 1, "completion_tokens": 2}),
    {**openai_chunk({"content": "x"}), "model": "", "id": ""},
]
ANTHROPIC_TEXT_SHAPES = [
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "h"},
    },
    {"type": "content_block_delta", "index": 0, "delta": None},
]


@pytest.mark.parametrize("event", OPENAI_TEXT_SHAPES)
def test_openai_fast_path_equals_the_general_path(event: dict) -> None:  # type: ignore[type-arg]
    import json

    payload = json.dumps(event).encode()
    fast = openai_events().map(None, event, payload)  # with the bytes: the fast path may run
    general = openai_events().map(None, event, None)  # without: always the general path
    assert fast == general
    assert fast is not None and fast.raw.model_dump() == general.raw.model_dump()  # type: ignore[union-attr]


@pytest.mark.parametrize("event", ANTHROPIC_TEXT_SHAPES)
def test_anthropic_fast_path_equals_the_general_path(event: dict) -> None:  # type: ignore[type-arg]
    import json

    payload = json.dumps(event).encode()
    start = {"type": "message_start", "message": {"id": "m1", "model": "claude-x", "usage": {}}}
    fast_mapper, general_mapper = anthropic_events(), anthropic_events()
    fast_mapper.map(None, start, None)
    general_mapper.map(None, start, None)
    assert fast_mapper.map(None, event, payload) == general_mapper.map(None, event, None)


def test_plain_text_deltas_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk of a stream never goes through the general `Chunk.unchecked` path."""
    import json

    from rxllm.models import Chunk

    def general(*_: object, **__: object) -> None:
        raise AssertionError("a plain text delta took the general path")

    texts_sent = [openai_chunk({"content": "Hel"}, usage=None), openai_chunk({"content": "lo"})]
    anthropic_event = ANTHROPIC_TEXT_SHAPES[0]
    monkeypatch.setattr(Chunk, "unchecked", general)
    openai_mapper, anthropic_mapper = openai_events(), anthropic_events()
    texts = [openai_mapper.map(None, e, json.dumps(e).encode()).content for e in texts_sent]  # type: ignore[union-attr]
    chunk = anthropic_mapper.map(None, anthropic_event, json.dumps(anthropic_event).encode())
    assert texts == ["Hel", "lo"] and chunk is not None and chunk.content == "Hi"
