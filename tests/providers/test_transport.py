"""The two HTTP transports of the async clients rxllm makes: httpx2 (the SDKs' default) and
aiohttp (the SDKs' `DefaultAioHttpClient`, extra `rxllm[aiohttp]`). Every asyncio test here
runs on both (`conftest.py`): the errors keep their types, partials are exact, a stop
closes the connection (the loopback server's record), and the loop's end closes the
client's connections."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from typing import Any

import httpx2
import openai as openai_sdk
import pytest
import reactivex

import rxllm
from rxllm import ops
from rxllm.providers import sdk_provider
from rxllm.testing import Script, Server

PROVIDERS = ["openai", "anthropic"]
KEY = "sk-test-secret-key-0123456789"
AIOHTTP_CLIENTS = {"_InstalledAioHttpClient", "_DefaultAioHttpClient"}


def make(provider: str, url: str, **kw: Any) -> rxllm.LLM:
    return getattr(rxllm, provider)("test-model", base_url=url, api_key=KEY, max_retries=0, **kw)


def asyncio_call(stream: reactivex.Observable[Any]) -> rxllm.Response:
    return asyncio.run(rxllm.acollect(stream, timeout=10))


def http_client_of(llm: rxllm.LLM) -> Any:
    (client,) = llm._provider._async_clients.values()  # type: ignore[attr-defined]
    return client._client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- choosing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_async_clients_send_with_the_chosen_transport(
    server: Server, provider: str, transport: str
) -> None:
    llm = make(provider, server.url)
    server.push(Script("Hi."))
    assert asyncio_call(llm.stream("hi")).text == "Hi."
    uses_aiohttp = type(http_client_of(llm)).__name__ in AIOHTTP_CLIENTS
    assert uses_aiohttp is (transport == "aiohttp")
    explicit = make(provider, server.url, transport=transport)  # overrides the default
    assert asyncio_call(explicit.stream("hi")).text == "Hi."
    assert (type(http_client_of(explicit)).__name__ in AIOHTTP_CLIENTS) is uses_aiohttp


def test_aiohttp_is_the_default_when_the_sdks_extra_is_installed(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiohttp")
    monkeypatch.setattr(sdk_provider, "_default_transport", None)
    llm = make("anthropic", server.url)
    server.push(Script("Hi."))
    assert asyncio_call(llm.stream("hi")).text == "Hi."
    assert type(http_client_of(llm)).__name__ in AIOHTTP_CLIENTS
    # the sync clients always send with httpx2
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "Hi."
    assert isinstance(llm._provider._client._client, httpx2.Client)  # type: ignore[attr-defined]


def test_without_the_extra_the_default_is_httpx_and_asking_for_aiohttp_says_what_to_install(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Missing:  # what the SDK offers when its aiohttp extra is not installed
        def __init__(self, **_: Any) -> None:
            raise RuntimeError("To use the aiohttp client you must have installed the package")

    monkeypatch.setattr(openai_sdk, "DefaultAioHttpClient", Missing)
    monkeypatch.setattr(sdk_provider, "_default_transport", None)
    llm = make("openai", server.url)
    server.push(Script("Hi."))
    assert asyncio_call(llm.stream("hi")).text == "Hi."
    assert type(http_client_of(llm)).__name__ == "_DefaultAsyncHttpxClient"
    with pytest.raises(rxllm.LLMError, match=r"rxllm\[aiohttp\]"):
        asyncio_call(make("openai", server.url, transport="aiohttp").stream("hi"))


def test_an_unknown_transport_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="'httpx', 'aiohttp'"):
        rxllm.openai("m", api_key=KEY, transport="requests")


# Every HTTP provider `rxllm.model()` names takes `transport=` (was: only rxllm.openai and
# rxllm.anthropic; a compatible service refused it as a request parameter, and Azure's,
# Bedrock's and Vertex's async clients were always httpx2).
MODELS: dict[str, Any] = {
    "groq": lambda url, **kw: rxllm.model("groq:m", api_key=KEY, base_url=f"{url}/v1", **kw),
    "azure": lambda url, **kw: rxllm.model(
        "azure:d", azure_endpoint=url, api_key=KEY, api_version="2024-10-21", **kw
    ),
    "bedrock": lambda url, **kw: rxllm.model(
        "bedrock:anthropic.claude-m", api_key=KEY, aws_region="us-east-1", base_url=url, **kw
    ),
    "vertex": lambda url, **kw: rxllm.model(
        "vertex:claude-m", region="us-east5", project_id="p", access_token=KEY, base_url=url, **kw
    ),
}


@pytest.mark.parametrize("name", MODELS)
def test_every_model_string_takes_the_transport(server: Server, name: str, transport: str) -> None:
    if name == "bedrock":
        pytest.importorskip("botocore")
    llm = MODELS[name](server.url, max_retries=0, transport=transport)
    server.push(Script("Hi."))
    assert asyncio_call(llm.stream("hi")).text == "Hi."
    assert (type(http_client_of(llm)).__name__ in AIOHTTP_CLIENTS) is (transport == "aiohttp")
    with pytest.raises(ValueError, match="'httpx', 'aiohttp'"):
        MODELS[name](server.url, transport="requests")


# --- every guarantee, on each transport -------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stop_closes_the_connection_at_once(server: Server, provider: str) -> None:
    server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
    stream = make(provider, server.url).stream("count")
    response = asyncio_call(stream.pipe(ops.take_until(lambda c: "w4" in c.content)))
    assert response.text == "w0 w1 w2 w3 w4 "
    record = server.last
    assert record.wait_closed(2)
    assert record.chunks_after_close == 0 and record.chunks_written <= 7
    assert not record.finished


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stop_while_the_model_is_silent_closes_the_connection(
    server: Server, provider: str
) -> None:
    server.push(Script(["a", "b", "c"], hang_after=2))

    async def main() -> rxllm.Response:
        stop = reactivex.subject.Subject[None]()
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, stop.on_next, None)
        return await rxllm.acollect(
            make(provider, server.url).stream("hi").pipe(ops.take_until(stop))
        )

    assert asyncio.run(main()).text == "ab"
    record = server.last
    assert record.wait_closed(2)
    assert record.chunks_written == 2 and not record.finished


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_dropped_connection_is_stream_interrupted_with_the_exact_partial(
    server: Server, provider: str
) -> None:
    server.push(Script(["Half ", "an ", "answer"], drop_after=2))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        asyncio_call(make(provider, server.url).stream("hi"))
    assert caught.value.retryable
    assert caught.value.partial is not None and caught.value.partial.text == "Half an "


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_error_event_and_a_malformed_event_keep_their_types(
    server: Server, provider: str
) -> None:
    llm = make(provider, server.url)
    server.push(Script(["Hello", " there"], error_event="overloaded_error"))
    with pytest.raises(rxllm.ServerError) as overloaded:
        asyncio_call(llm.stream("hi"))
    assert isinstance(overloaded.value, rxllm.StreamError)
    assert overloaded.value.partial is not None and overloaded.value.partial.text == "Hello there"
    server.push(Script(["a", "b", "c"], malformed_after=2))
    with pytest.raises(rxllm.StreamError, match="not valid JSON") as malformed:
        asyncio_call(llm.stream("hi"))
    assert malformed.value.partial is not None and malformed.value.partial.text == "ab"


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, rxllm.RateLimitError), (400, rxllm.BadRequestError), (529, rxllm.ServerError)],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_http_statuses_keep_their_types(
    server: Server, provider: str, status: int, error: type[rxllm.LLMError]
) -> None:
    server.push(Script("no", status=status, headers={"retry-after": "3"}))
    with pytest.raises(error) as caught:
        asyncio_call(make(provider, server.url).stream("hi"))
    if status == 429:
        assert caught.value.retry_after == 3.0  # type: ignore[attr-defined]
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_connection_is_a_connection_error_not_a_timeout(provider: str) -> None:
    # (the openai SDK's aiohttp transport calls it a ConnectTimeout; rxllm reads the
    # aiohttp error under it)
    with pytest.raises(rxllm.APIConnectionError) as caught:
        asyncio_call(make(provider, f"http://127.0.0.1:{free_port()}").stream("hi"))
    assert not isinstance(caught.value, rxllm.StreamTimeout)
    assert caught.value.retryable


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stall_is_a_stream_timeout_with_the_partial(server: Server, provider: str) -> None:
    server.push(Script(["a", "b", "c"], hang_after=2))
    with pytest.raises(rxllm.StreamTimeout) as caught:
        asyncio_call(make(provider, server.url, stall_timeout=0.3).stream("hi"))
    assert caught.value.partial is not None and caught.value.partial.text == "ab"
    assert server.last.wait_closed(2)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_end_of_the_loop_closes_the_client_s_connections(server: Server, provider: str) -> None:
    llm = make(provider, server.url)
    server.push(Script("Hi."))
    gc.collect()  # what earlier tests left behind is not this test's to judge
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # a new loop each time, as a script calling asyncio.run does
            assert asyncio_call(llm.stream("hi")).text == "Hi."
        http = http_client_of(llm)
        assert http.is_closed  # closed on its own loop as that loop ended
        del http
        gc.collect()
    unclosed = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    # a socket to this test's server, or an aiohttp session/connector (they name no peer)
    assert [m for m in unclosed if f", {port})" in m or "socket" not in m] == []
