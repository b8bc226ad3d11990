"""Everything rxllm takes from the SDKs' private modules still works with the installed SDKs
(`rxllm/providers/_sdk_private.py`): a release that moves one fails here, by name."""

from __future__ import annotations

import base64
import json

import anthropic
import httpx2
import openai
import pytest
from pydantic import BaseModel

from rxllm.providers import _sdk_private


class City(BaseModel):
    name: str


def test_openai_chat_stream_state_accumulates() -> None:
    state = _sdk_private.openai_chat_stream_state()
    chunk = openai.types.chat.ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
        }
    )
    state.handle_chunk(chunk)
    assert state.get_final_completion().choices[0].message.content == "Hi"


def test_openai_response_format_of_a_model() -> None:
    fmt = _sdk_private.openai_response_format(City)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"


def test_anthropic_event_construction_and_accumulation() -> None:
    start = _sdk_private.anthropic_construct_event(
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 0},
            },
        }
    )
    assert isinstance(start, anthropic.types.RawMessageStartEvent)
    snapshot = _sdk_private.anthropic_accumulate_event(
        event=start, current_snapshot=None, json_bufs={}, output_format=anthropic.NOT_GIVEN
    )
    assert snapshot.id == "m"


def test_anthropic_output_schema_of_a_model() -> None:
    assert _sdk_private.anthropic_output_schema(City)["properties"]["name"]["type"] == "string"


def test_client_attributes_are_read() -> None:
    client = openai.OpenAI(
        api_key="k",
        default_headers={"x-a": "1"},
        default_query={"q": "2"},
        base_url="http://127.0.0.1:9",
    )
    assert _sdk_private.custom_headers(client)["x-a"] == "1"
    assert _sdk_private.custom_query(client) == {"q": "2"}
    assert type(_sdk_private.http_client(client)).__name__ in _sdk_private.SDK_HTTP_CLIENTS
    keyed = openai.OpenAI(api_key=lambda: "k", base_url="http://127.0.0.1:9")
    assert callable(_sdk_private.api_key_provider(keyed))


def test_bedrock_stream_decoder_reads_a_chunk_and_an_exception_message() -> None:
    pytest.importorskip("botocore")
    from botocore.eventstream import EventStreamBuffer

    from rxllm.testing._eventstream import message

    event = b'{"type":"message_stop"}'
    chunk = message(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        json.dumps({"bytes": base64.b64encode(event).decode()}).encode(),
    )
    failure = message(
        {":message-type": "exception", ":exception-type": "throttlingException"},
        b'{"message": "slow down"}',
    )
    buffer = EventStreamBuffer()
    buffer.add_data(chunk + failure)
    decoder = _sdk_private.bedrock_stream_decoder()
    decoded = [_sdk_private.bedrock_message_event(decoder, m) for m in buffer]
    assert decoded[0] == ("message_stop", event)
    name, data = decoded[1] or (None, b"")
    assert name == "error"
    assert json.loads(data)["error"] == {"type": "throttlingException", "message": "slow down"}


def test_anthropic_sse_stream_reads_sse_with_a_bedrock_client() -> None:
    pytest.importorskip("botocore")
    client = anthropic.AnthropicBedrock(aws_region="us-east-1", api_key="k")
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    body = b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n"
    request = httpx2.Request("POST", "http://127.0.0.1/model/m/invoke-with-response-stream")
    response = httpx2.Response(200, content=body, request=request)
    stream = _sdk_private.anthropic_sse_stream(
        cast_to=anthropic.types.RawMessageStreamEvent, response=response, client=client
    )
    with pytest.raises(anthropic.APIStatusError, match="busy"):
        list(stream)
