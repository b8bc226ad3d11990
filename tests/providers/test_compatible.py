"""The OpenAI-compatible services by name, through the real `openai` SDK over the loopback
server: each chunk names its service, each service gets its own key and nothing of
OpenAI's (key, organization, project, custom headers), a keyless server gets no key of
anyone's, and the streaming, tool-loop and cancellation paths are OpenAI's own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta
from rxllm.providers.compatible import SERVICES
from rxllm.testing import Script, Server

OPENAI_KEY = "sk-openai-must-never-leave-0123456789"


@pytest.fixture(autouse=True)
def openai_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """OpenAI's own settings are all set, so any leak to another service would show."""
    for service in SERVICES.values():
        monkeypatch.delenv(service.env_var, raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-openai-only")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-openai-only")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", f"Authorization: Bearer {OPENAI_KEY}\nX-Mine: 1")
    yield


def _no_openai_setting_in(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        assert OPENAI_KEY not in value, name
    assert "openai-organization" not in headers
    assert "openai-project" not in headers


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_streams_under_its_name_with_its_own_key(
    service: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"{service}-secret-key-0123456789"
    monkeypatch.setenv(SERVICES[service].env_var, key)
    server.push(Script("Hello from a compatible server.", model=f"{service}-model"))
    llm = rxllm.model(f"{service}:some-model", base_url=f"{server.url}/v1", max_retries=0)
    chunks = list(rxllm.iterate(llm.stream("hi")))
    assert chunks and {chunk.provider for chunk in chunks} == {service}
    assert "".join(chunk.content for chunk in chunks) == "Hello from a compatible server."
    record = server.last
    assert record.path == "/v1/chat/completions"
    assert record.body["model"] == "some-model"
    assert record.headers["authorization"] == f"Bearer {key}"
    _no_openai_setting_in(record.headers)


@pytest.mark.parametrize("service", ["ollama", "vllm", "llamacpp"])
def test_a_keyless_server_gets_a_stand_in_never_openais_key(service: str, server: Server) -> None:
    server.push(Script("ok"))
    llm = rxllm.model(f"{service}:m", base_url=server.url, max_retries=0)
    response = rxllm.collect(llm.stream("hi"), timeout=10)
    assert (response.text, response.provider) == ("ok", service)
    assert server.last.headers["authorization"] == "Bearer no-key"
    _no_openai_setting_in(server.last.headers)


def test_a_keyless_server_sends_the_key_given_or_set(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.push(Script("ok"))
    rxllm.collect(rxllm.model("vllm:m", base_url=server.url, api_key="vllm-given").stream("x"))
    assert server.last.headers["authorization"] == "Bearer vllm-given"
    monkeypatch.setenv("VLLM_API_KEY", "vllm-from-env")
    rxllm.collect(rxllm.model("vllm:m", base_url=server.url).stream("x"))
    assert server.last.headers["authorization"] == "Bearer vllm-from-env"


def test_an_http_error_names_the_service_and_hides_its_key(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "gsk-secret-key-0123456789"
    monkeypatch.setenv("GROQ_API_KEY", key)
    server.push(Script(status=401, error_body={"error": {"message": f"Invalid API Key {key}"}}))
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(rxllm.model("groq:m", base_url=server.url, max_retries=0).stream("x"))
    assert caught.value.provider == "groq"
    assert str(caught.value).startswith("groq:")
    assert key not in str(caught.value)


def test_asyncio_and_the_tool_loop_work_under_the_services_name(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-key-0123456789")

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    call = ToolCallDelta(index=0, id="call_1", name="add", arguments='{"a": 2, "b": 3}')
    server.push(Script([Chunk(tool_calls=(call,))]))
    server.push(Script("The sum is 5."))
    llm = rxllm.model("openrouter:openai/gpt-4o-mini", base_url=server.url, max_retries=0)

    async def main() -> rxllm.Response:
        return await rxllm.acollect(llm.stream("2+3?", tools=[add]).pipe(ops.tool_loop()))

    answer = asyncio.run(main())
    assert answer.text == "The sum is 5."
    assert answer.provider == "openrouter"
    (step,) = answer.steps
    assert step.tool_results[0].output == 5
    # the second request carries the answer and the result in OpenAI's format
    second = server.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool"]
    assert second[2] == {"role": "tool", "tool_call_id": "call_1", "content": "5"}


def test_take_until_closes_the_services_http_stream(server: Server) -> None:
    server.push(Script([f"w{i} " for i in range(300)], delay=0.01))
    llm = rxllm.model("ollama:qwen2.5:0.5b", base_url=server.url)
    stream = llm.stream("count").pipe(
        ops.accumulate(), ops.take_until(lambda s: "w3 " in s.text), ops.to_response()
    )
    response = stream.run()
    assert response.text == "w0 w1 w2 w3 "
    record = server.last
    assert record.wait_closed(2)
    assert record.chunks_after_close == 0
    assert not record.finished
