"""A server that echoes the key back: rxllm's errors and partials never show it (bugs the
reliability harness's secrets section found)."""

from __future__ import annotations

import traceback

import anthropic
import openai
import pytest

import rxllm
from rxllm.testing import Script, Server

KEY = "rx0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # opaque: only rxllm knowing it can hide it
SAID = f"Incorrect API key provided: {KEY}."


def _everything(error: BaseException) -> str:
    texts = ["".join(traceback.format_exception(error))]
    current: BaseException | None = error
    while current is not None:
        texts += [repr(getattr(current, name, None)) for name in ("body", "event", "message")]
        current = current.__cause__
    return "\n".join(texts)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_key_in_a_clients_default_headers_is_scrubbed(server: Server, sdk: str) -> None:
    server.push(Script(status=401, error_body={"error": {"message": SAID}}))
    if sdk == "openai":
        client = openai.OpenAI(
            api_key="placeholder", base_url=server.url, default_headers={"api-key": KEY}
        )
        llm = rxllm.openai("m", client=client)
    else:
        client_ = anthropic.Anthropic(
            api_key=None, base_url=server.url, default_headers={"Authorization": f"Bearer {KEY}"}
        )
        llm = rxllm.anthropic("m", client=client_)
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    assert KEY not in _everything(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_the_event_bytes_kept_on_a_stream_error_are_scrubbed(server: Server, protocol: str) -> None:
    server.push(Script(["Hel", "lo"], error_event={"type": "server_error", "message": SAID}))
    if protocol == "chat":
        llm = rxllm.openai("m", base_url=server.url, api_key=KEY)
    else:
        llm = rxllm.anthropic("m", base_url=server.url, api_key=KEY)
    with pytest.raises(rxllm.StreamError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    assert caught.value.event is not None and b"***" in caught.value.event
    assert KEY not in _everything(caught.value)


def test_a_failed_responses_partial_raw_is_scrubbed(server: Server) -> None:
    server.push(Script(["Hel", "lo"], error_event={"code": "server_error", "message": SAID}))
    llm = rxllm.openai("m", api="responses", base_url=server.url, api_key=KEY)
    with pytest.raises(rxllm.StreamError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    partial = caught.value.partial
    assert partial is not None and partial.text == "Hello"
    assert partial.raw is not None and partial.raw.error is not None
    assert KEY not in repr(partial.raw) and "***" in partial.raw.error.message
