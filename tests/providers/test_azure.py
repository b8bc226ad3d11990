"""Azure OpenAI through the SDK's `AzureOpenAI` / `AsyncAzureOpenAI` over the loopback
server: the deployment path, Azure's `api-key` header (or an Entra ID bearer token), and
never OpenAI's own key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

OPENAI_KEY = "sk-openai-must-never-leave-0123456789"
AZURE_KEY = "azure-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-openai-only")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    yield


def azure(server: Server, **kw: object) -> rxllm.LLM:
    kw.setdefault("max_retries", 0)
    return rxllm.model("azure:my-gpt-4o", azure_endpoint=server.url, **kw)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_deployment_streams_with_azures_key_header(
    server: Server, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    server.push(Script("Hello from Azure.", usage=rxllm.Usage(input_tokens=3, output_tokens=4)))
    llm = azure(server)
    source = llm.stream("hi")
    if mode == "sync":
        response = rxllm.collect(source, timeout=10)
    else:
        response = asyncio.run(rxllm.acollect(source, timeout=10))
    assert (response.text, response.provider, response.finish_reason) == (
        "Hello from Azure.",
        "azure",
        "stop",
    )
    assert response.usage is not None and response.usage.total_tokens == 7
    record = server.last
    assert record.path == "/openai/deployments/my-gpt-4o/chat/completions"
    assert record.headers["api-key"] == AZURE_KEY
    assert "authorization" not in record.headers
    assert "openai-organization" not in record.headers
    assert all(OPENAI_KEY not in value for value in record.headers.values())
    assert isinstance(llm._provider.sync_client(), openai.AzureOpenAI)  # type: ignore[attr-defined]


def test_an_entra_id_token_provider_is_a_bearer_token(server: Server) -> None:
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return "entra-token-0123456789"

    server.push(Script("ok"))
    rxllm.collect(azure(server, azure_ad_token_provider=token).stream("hi"), timeout=10)
    assert server.last.headers["authorization"] == "Bearer entra-token-0123456789"
    assert "api-key" not in server.last.headers
    assert calls  # called per request, by the SDK

    async def main() -> rxllm.Response:  # the async client takes the same sync callable
        return await rxllm.acollect(
            azure(server, azure_ad_token_provider=token).stream("hi"), timeout=10
        )

    assert asyncio.run(main()).text == "ok"


def test_take_until_closes_the_deployments_stream(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
    response = rxllm.collect(
        azure(server)
        .stream("count")
        .pipe(ops.accumulate(), ops.take_until(lambda s: "w2 " in s.text)),
        timeout=10,
    )
    assert response.text == "w0 w1 w2 "
    assert server.last.wait_closed(2)
    assert server.last.chunks_after_close == 0


def test_no_credential_names_azures_variable_and_sends_nothing(server: Server) -> None:
    with pytest.raises(rxllm.AuthenticationError, match="AZURE_OPENAI_API_KEY"):
        rxllm.collect(azure(server).stream("hi"), timeout=10)
    assert server.requests == []


def test_an_azure_client_given_alone_is_not_copied(server: Server) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=server.url, api_key=AZURE_KEY, api_version="2024-10-21", max_retries=0
    )
    llm = rxllm.model("azure:my-gpt-4o", client=client)
    server.push(Script("given client"))
    assert rxllm.collect(llm.stream("hi"), timeout=10).text == "given client"
    with pytest.raises(rxllm.LLMError, match="pass async_client= too"):
        asyncio.run(rxllm.acollect(llm.stream("hi"), timeout=10))
    with pytest.raises(ValueError, match="set them on your client"):
        rxllm.model("azure:d", client=client, api_version="2024-10-21")
