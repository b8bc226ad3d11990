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
