"""Spans of calls made through the real SDKs against the loopback server: the attributes
from what the server sent, `server.address`, the Anthropic SDK's own span switched off on
the clients rxllm makes (so tokens are counted once), no key in any span or log record,
and cancellation closing the HTTP response while the span ends once, as cancelled."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anthropic as anthropic_sdk
import openai as openai_sdk
import pytest
import reactivex
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from reactivex.subject import Subject

import rxllm
from rxllm import ops
from rxllm.models import Chunk
from rxllm.providers.anthropic import without_sdk_spans
from rxllm.telemetry import CAPTURE_CONTENT
from rxllm.testing import Script, Server

PROVIDERS = ["openai", "anthropic"]
KEY = "sk-test-secret-key-0123456789"
SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # shaped like an Azure key: no "sk-" to spot
tracer = trace.get_tracer("tests")

anthropic_has_spans = pytest.mark.skipif(
    not without_sdk_spans(anthropic_sdk.Anthropic),
    reason="this anthropic SDK makes no spans of its own (before 2.17)",
)


@pytest.fixture(autouse=True)
def _content_not_captured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Content capture off unless a test opts in, whatever the environment says."""
    monkeypatch.delenv(CAPTURE_CONTENT, raising=False)


def make(provider: str, server: Server, **kw: Any) -> rxllm.LLM:
    factory: Callable[..., rxllm.LLM] = getattr(rxllm, provider)
    kw.setdefault("max_retries", 0)
    kw.setdefault("api_key", KEY)
    return factory("test-model", base_url=server.url, **kw)


def run(stream: reactivex.Observable[Chunk], mode: str) -> rxllm.Response:
    if mode == "sync":
        return rxllm.collect(stream, timeout=10)
    return asyncio.run(rxllm.acollect(stream, timeout=10))


def every_text(span: Any) -> str:
    """Everything a span says, as text: attributes, events, status."""
    texts = [span.name, repr(dict(span.attributes)), str(span.status.description)]
    texts += [f"{e.name} {dict(e.attributes)!r}" for e in span.events]
    return "\n".join(texts)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_call_over_http_is_one_span_with_what_the_server_sent(
    server: Server, spans: Any, provider: str, mode: str
) -> None:
    usage = rxllm.Usage(input_tokens=9, output_tokens=5, cache_read_tokens=3)
    server.push(Script("The quick brown fox.", usage=usage, model="served-1", response_id="r-77"))
    with tracer.start_as_current_span("request") as parent:
        run(make(provider, server).stream("Tell me", max_tokens=50, temperature=0.2), mode)

    finished = spans.settled(2)
    [span] = [s for s in finished if s.instrumentation_scope.name == "rxllm"]
    assert [s.name for s in finished if s is not span] == ["request"]  # nothing else
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.name == "chat test-model"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    url = urlsplit(server.url)
    attributes = span.attributes
    assert attributes["gen_ai.provider.name"] == provider
    assert attributes["server.address"] == url.hostname == "127.0.0.1"
    assert attributes["server.port"] == url.port
    assert attributes["gen_ai.request.model"] == "test-model"
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.response.model"] == "served-1"
    assert attributes["gen_ai.response.id"] == "r-77"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 9
    assert attributes["gen_ai.usage.output_tokens"] == 5
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 3
    assert [e.name for e in span.events] == ["rxllm.first_chunk"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_server_of_a_given_client_is_read_from_it(
    server: Server, spans: Any, provider: str
) -> None:
    server.push(Script("Hi."))
    sdk = openai_sdk.OpenAI if provider == "openai" else anthropic_sdk.Anthropic
    client = sdk(base_url=server.url, api_key=KEY, max_retries=0, **without_sdk_spans(sdk))
    llm = getattr(rxllm, provider)("test-model", client=client)
    rxllm.collect(llm.stream("hi"), timeout=10)
    [span] = spans.settled(1)
    assert span.attributes["server.port"] == urlsplit(server.url).port


# --- the SDKs' own spans -----------------------------------------------------------------


@anthropic_has_spans
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_anthropic_sdks_own_span_is_off_on_the_clients_rxllm_makes(
    server: Server, spans: Any, mode: str
) -> None:
    server.push(Script("Hello there.", usage=rxllm.Usage(input_tokens=4, output_tokens=2)))
    run(make("anthropic", server).stream("hi"), mode)
    finished = spans.settled(1)
    assert [s.instrumentation_scope.name for s in finished] == ["rxllm"]  # tokens counted once


@anthropic_has_spans
def test_the_copy_rxllm_makes_of_a_given_client_has_no_sdk_span_either(
    server: Server, spans: Any
) -> None:
    server.push(Script("Hello there."))
    given = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    llm = rxllm.anthropic("test-model", client=given)  # asyncio calls use rxllm's copy
    asyncio.run(rxllm.acollect(llm.stream("hi"), timeout=10))
    finished = spans.settled(1)
    assert [s.instrumentation_scope.name for s in finished] == ["rxllm"]


@anthropic_has_spans
def test_a_bare_anthropic_client_does_make_its_own_span(server: Server, spans: Any) -> None:
    """The check above can fail: the SDK's span reaches the same exporter."""
    server.push(Script("Hello there."))
    client = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    with client.messages.stream(
        model="test-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        stream.until_done()
    finished = spans.settled(1)
    assert [s.instrumentation_scope.name for s in finished] == ["com.anthropic.sdk.python"]
    assert "gen_ai.usage.output_tokens" in finished[0].attributes


def test_the_openai_sdk_makes_no_span_of_its_own(server: Server, spans: Any) -> None:
    server.push(Script("Hello there."))
    rxllm.collect(make("openai", server).stream("hi"), timeout=10)
    client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    for _ in client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        pass
    finished = spans.settled(1)
    assert [s.instrumentation_scope.name for s in finished] == ["rxllm"]


# --- never a key ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["http_status", "error_event"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_key_in_any_span_or_log_record_even_when_the_provider_echoes_it(
    server: Server,
    spans: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    where: str,
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT, "true")  # content too: the prompt holds the key
    caplog.set_level(logging.DEBUG)
    echo = {"message": f"key {SECRET} is not allowed", "type": "invalid_request_error"}
    if where == "http_status":
        body = {"type": "error", "error": echo} if provider == "anthropic" else {"error": echo}
        server.push(Script("x", status=401, error_body=body))
    else:
        server.push(Script("partial answer", error_event=echo))
    llm = make(provider, server, api_key=SECRET)
    with pytest.raises(rxllm.LLMError) as caught:
        rxllm.collect(llm.stream(f"my key is {SECRET}", system=f"key: {SECRET}"), timeout=10)

    [span] = spans.settled(1)
    said = every_text(span)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(caught.value).__name__
    assert "is not allowed" in said  # the exception's message is there...
    assert "my key is" in span.attributes["gen_ai.input.messages"]  # ...and the content
    assert SECRET not in said  # but never the key
    logged = "\n".join(
        r.getMessage() + (r.exc_text or "") for r in caplog.records if r.name.startswith("rxllm")
    )
    assert "is not allowed" in logged
    assert SECRET not in logged


# --- cancellation ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stop_closes_the_response_and_ends_the_span_as_cancelled(
    server: Server, spans: Any, provider: str, mode: str
) -> None:
    server.push(Script([f"word{i} " for i in range(500)], delay=0.01))
    stopped = (
        make(provider, server).stream("talk").pipe(ops.take_until(lambda c: c.content == "word3 "))
    )
    assert run(stopped, mode).text == "word0 word1 word2 word3 "
    assert server.last.wait_closed(5)
    [span] = spans.settled(1)
    assert span.attributes["rxllm.cancelled"] is True
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["server.address"] == "127.0.0.1"
    assert spans.ends[span.context.span_id] == 1


@pytest.mark.slow
async def test_many_http_calls_at_once_with_random_stops_end_every_span_once(
    server: Server, spans: Any
) -> None:
    """60 concurrent calls over both SDKs, stopped at random moments: each span ends once,
    under its request, and the server sees every stopped response closed."""
    rng = random.Random(7)
    server.push(Script([f"w{i} " for i in range(40)], delay=0.005))
    llms = {p: make(p, server) for p in PROVIDERS}
    kinds: dict[int, str] = {}

    async def request(i: int) -> None:
        provider = PROVIDERS[i % 2]
        stopping = rng.random() < 0.7
        kinds[i] = "stopped" if stopping else "complete"
        with tracer.start_as_current_span(f"request {i}"):
            source: reactivex.Observable[Chunk] = llms[provider].stream(f"q{i}")
            if stopping:
                stop: Subject[bool] = Subject()
                asyncio.get_running_loop().call_later(rng.uniform(0, 0.15), stop.on_next, True)
                source = source.pipe(ops.take_until(stop))
            await rxllm.acollect(source, timeout=30)

    await asyncio.gather(*(request(i) for i in range(60)))
    finished = await asyncio.to_thread(spans.settled, 120, 30)
    assert set(spans.ends.values()) == {1}
    requests = {s.context.span_id: s.name for s in finished if s.name.startswith("request ")}
    calls = [s for s in finished if s.instrumentation_scope.name == "rxllm"]
    assert len(calls) == 60
    assert sorted(requests[c.parent.span_id] for c in calls) == sorted(requests.values())
    for call in calls:
        i = int(requests[call.parent.span_id].split()[1])
        assert call.status.status_code is StatusCode.UNSET
        if kinds[i] == "complete":
            assert call.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert all(r.wait_closed(5) or r.finished for r in server.requests)
