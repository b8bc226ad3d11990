"""Bugs the reliability harness (`python -m benchmarks.reliability`) found, one test each."""

from __future__ import annotations

import pytest

import rxllm
from rxllm.testing import Script, Server


def _llm(protocol: str, url: str) -> rxllm.LLM:
    if protocol == "anthropic":
        return rxllm.anthropic("m", base_url=url, api_key="test", max_retries=0)
    api = "responses" if protocol == "responses" else "chat"
    return rxllm.openai("m", api=api, base_url=url, api_key="test", max_retries=0)


@pytest.mark.parametrize("protocol", ["chat", "responses", "anthropic"])
def test_a_body_broken_before_its_first_event_is_an_interrupted_stream(
    server: Server, protocol: str
) -> None:
    # The 200 and its headers came, then the connection dropped: the stream had begun, so
    # it is StreamInterrupted in every protocol (Chat Completions, whose first event is a
    # text delta, said APIConnectionError: "could not connect").
    server.push(Script(["never sent"], drop_after=0))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(_llm(protocol, server.url).stream("hi"), timeout=10)
    assert caught.value.retryable
    assert caught.value.partial is None or caught.value.partial.text == ""


async def test_the_same_from_asyncio(server: Server) -> None:
    server.push(Script(["never sent"], drop_after=0))
    with pytest.raises(rxllm.StreamInterrupted):
        await rxllm.acollect(_llm("chat", server.url).stream("hi"))


def test_a_refused_connection_is_still_a_connection_error() -> None:
    with Server() as gone:
        url = gone.url
    with pytest.raises(rxllm.APIConnectionError):
        rxllm.collect(_llm("chat", url).stream("hi"), timeout=10)


# Found by the fuzz section: events of a shape no server should send must still end in a
# typed error or a well-typed Response, never in a bare LLMError wrapping a TypeError.

_CHAT_HEAD = '"id":"c1","object":"chat.completion.chunk","created":1'


def _chat(*events: str) -> bytes:
    return "".join(f"data: {{{_CHAT_HEAD},{e}}}\n\n" for e in events).encode() + b"data: [DONE]\n\n"


def test_a_field_of_an_unhashable_type_is_a_stream_error(server: Server) -> None:
    body = (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
        b'"sequence_number":1,"item_id":"m","output_index":0,"content_index":[],"delta":"x"}\n\n'
    )
    server.push(Script(raw_events=body))
    with pytest.raises(rxllm.StreamError) as caught:
        rxllm.collect(_llm("responses", server.url).stream("hi"), timeout=10)
    assert type(caught.value) is rxllm.StreamError  # not the bare LLMError of a crash
    assert "TypeError" in str(caught.value) and isinstance(caught.value.__cause__, TypeError)


def test_a_delta_that_is_not_an_object_is_a_stream_error(server: Server) -> None:
    server.push(Script(raw_events=_chat('"model":"m","choices":[{"index":0,"delta":"oops"}]')))
    with pytest.raises(rxllm.StreamError) as caught:
        rxllm.collect(_llm("chat", server.url).stream("hi"), timeout=10)
    assert caught.value.provider == "openai" and caught.value.retryable


def test_fields_of_the_wrong_type_are_left_empty(server: Server) -> None:
    server.push(
        Script(
            raw_events=_chat(
                '"model":{"a":1},"choices":[{"index":0,"delta":{"content":"Hi"}}]',
                '"model":"m","choices":[{"index":0,"delta":{"refusal":5,"reasoning":[1]},'
                '"finish_reason":7}]',
                '"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]',
            )
        )
    )
    response = rxllm.collect(_llm("chat", server.url).stream("hi"), timeout=10)
    assert response.text == "Hi" and response.refusal == "" and response.thinking == ""
    assert response.model == "m" and response.finish_reason == "stop"


def test_raw_is_none_when_the_sdk_refuses_every_chunk(server: Server) -> None:
    server.push(Script(raw_events=_chat('"model":"m","choices":null')))
    response = rxllm.collect(_llm("chat", server.url).stream("hi"), timeout=10)
    assert response.raw is None  # was an AssertionError from the SDK's accumulator


def test_raw_is_readable_after_a_message_start_without_its_message(server: Server) -> None:
    body = (
        b'event: message_start\ndata: {"type":"message_start"}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
        b'"end_turn"},"usage":{"output_tokens":0}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    server.push(Script(raw_events=body))
    response = rxllm.collect(_llm("anthropic", server.url).stream("hi"), timeout=10)
    assert response.finish_reason == "stop"
    assert response.raw is None  # was an AttributeError from the SDK's accumulate_event
