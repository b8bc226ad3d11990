"""An `LLM` pickles (Ray sends it to its workers): configuration travels, clients are made
again where it is unpickled, and a key travels only when it was given, never when it came
from the environment. Each unpickled `LLM` is run against the loopback server."""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
from typing import Any

import anthropic as anthropic_sdk
import openai as openai_sdk
import pytest

import rxllm
from rxllm.testing import Script, Server

PROVIDERS = ["openai", "anthropic"]
KEY = "sk-given-0123456789"
ENV_KEY = "sk-environment-0123456789"
WORKER_KEY = "sk-worker-0123456789"
VARIABLE = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def roundtrip(value: Any) -> tuple[Any, bytes]:
    data = pickle.dumps(value)
    return pickle.loads(data), data


def run(llm: rxllm.LLM, mode: str) -> rxllm.Response:
    if mode == "sync":
        return rxllm.collect(llm.stream("hi"), timeout=10)
    return asyncio.run(rxllm.acollect(llm.stream("hi"), timeout=10))


def sent_key(server: Server) -> str:
    headers = server.last.headers
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def base(provider: str, server: Server) -> str:
    return server.url + "/v1" if provider == "openai" else server.url


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- what travels ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_given_key_travels_and_the_copy_streams(
    server: Server, provider: str, mode: str, keys: pytest.MonkeyPatch
) -> None:
    llm = getattr(rxllm, provider)(
        "test-model", api_key=KEY, base_url=server.url, max_retries=0, temperature=0.5
    )
    copy, data = roundtrip(llm)
    assert KEY.encode() in data  # as in a closure of yours that held it
    assert (copy.provider, copy.model, copy.defaults) == (
        provider,
        "test-model",
        {"temperature": 0.5},
    )
    server.push(Script("Over here."))
    assert run(copy, mode).text == "Over here."
    assert sent_key(server) == KEY
    assert server.last.body["temperature"] == 0.5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_key_from_the_environment_stays_behind(
    server: Server, provider: str, keys: pytest.MonkeyPatch
) -> None:
    keys.setenv(VARIABLE[provider], ENV_KEY)
    llm = getattr(rxllm, provider)("test-model", base_url=server.url, max_retries=0)
    server.push(Script("Mine."))
    assert run(llm, "sync").text == "Mine."  # clients made and used before pickling
    copy, data = roundtrip(llm)
    assert ENV_KEY.encode() not in data
    keys.setenv(VARIABLE[provider], WORKER_KEY)  # the receiving process's own environment
    for mode in ("sync", "async"):
        assert run(copy, mode).text == "Mine."
        assert sent_key(server) == WORKER_KEY


@pytest.mark.parametrize("provider", PROVIDERS)
def test_without_a_key_where_it_arrives_the_call_names_the_variable(
    server: Server, provider: str, keys: pytest.MonkeyPatch
) -> None:
    keys.setenv(VARIABLE[provider], ENV_KEY)
    copy, _ = roundtrip(getattr(rxllm, provider)("test-model", base_url=server.url))
    keys.delenv(VARIABLE[provider])
    with pytest.raises(rxllm.AuthenticationError, match=VARIABLE[provider]):
        run(copy, "async")
    assert server.requests == []


@pytest.mark.parametrize("given", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_given_client_travels_as_its_settings(
    server: Server, provider: str, given: str, keys: pytest.MonkeyPatch
) -> None:
    sdk: Any = openai_sdk if provider == "openai" else anthropic_sdk
    name = (
        ("OpenAI" if provider == "openai" else "Anthropic")
        if given == "sync"
        else ("AsyncOpenAI" if provider == "openai" else "AsyncAnthropic")
    )
    client = getattr(sdk, name)(
        base_url=base(provider, server),
        api_key=KEY,
        max_retries=0,
        default_headers={"x-team": "blue"},
        default_query={"tenant": "7"},
    )
    llm = getattr(rxllm, provider)(
        "test-model", **{"client" if given == "sync" else "async_client": client}
    )
    copy, data = roundtrip(llm)
    assert KEY.encode() in data  # given to the client by you, as api_key= would be
    for mode in ("sync", "async"):
        server.push(Script(f"{mode} here"))
        assert run(copy, mode).text == f"{mode} here"
        assert server.last.headers["x-team"] == "blue"
        assert sent_key(server) == KEY
    assert server.last.path.endswith(("/chat/completions", "/messages"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_given_client_s_key_from_the_environment_stays_behind(
    server: Server, provider: str, keys: pytest.MonkeyPatch
) -> None:
    keys.setenv(VARIABLE[provider], ENV_KEY)
    sdk: Any = openai_sdk.OpenAI if provider == "openai" else anthropic_sdk.Anthropic
    llm = getattr(rxllm, provider)("test-model", client=sdk(base_url=base(provider, server)))
    copy, data = roundtrip(llm)
    assert ENV_KEY.encode() not in data
    keys.setenv(VARIABLE[provider], WORKER_KEY)
    server.push(Script("ok"))
    assert run(copy, "async").text == "ok"
    assert sent_key(server) == WORKER_KEY


def _key() -> str:
    return KEY


@pytest.mark.parametrize("credential", ["openai_key_provider", "anthropic_auth_token"])
def test_other_credentials_travel_with_their_client(
    server: Server, credential: str, keys: pytest.MonkeyPatch
) -> None:
    if credential == "openai_key_provider":
        client: Any = openai_sdk.OpenAI(base_url=server.url + "/v1", api_key=_key, max_retries=0)
        llm = rxllm.openai("test-model", client=client)
    else:
        client = anthropic_sdk.Anthropic(base_url=server.url, auth_token=KEY, max_retries=0)
        llm = rxllm.anthropic("test-model", client=client)
    copy, _ = roundtrip(llm)
    server.push(Script("Signed in."))
    for mode in ("sync", "async"):
        assert run(copy, mode).text == "Signed in."
        assert server.last.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_copy_pickles_again(server: Server, provider: str, keys: pytest.MonkeyPatch) -> None:
    sdk: Any = openai_sdk.OpenAI if provider == "openai" else anthropic_sdk.Anthropic
    llm = getattr(rxllm, provider)(
        "test-model", client=sdk(base_url=base(provider, server), api_key=KEY)
    )
    copy, _ = roundtrip(roundtrip(llm)[0])
    server.push(Script("Twice."))
    assert run(copy, "async").text == "Twice."
    assert sent_key(server) == KEY


# --- what cannot travel --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["azure", "own_http_client", "bedrock"])
def test_a_client_rxllm_cannot_copy_cannot_be_pickled(server: Server, kind: str) -> None:
    if kind == "azure":
        llm = rxllm.openai(
            "test-model",
            client=openai_sdk.AzureOpenAI(
                api_key=KEY, azure_endpoint=server.url, api_version="2024-10-21"
            ),
        )
    elif kind == "own_http_client":
        llm = rxllm.openai(
            "test-model",
            client=openai_sdk.OpenAI(
                base_url=server.url, api_key=KEY, http_client=openai_sdk.DefaultHttpxClient()
            ),
        )
    else:
        bedrock = anthropic_sdk.AnthropicBedrock(
            aws_region="us-east-1", aws_access_key="x", aws_secret_key="y", base_url=server.url
        )
        llm = rxllm.anthropic("test-model", client=bedrock)
    with pytest.raises(TypeError, match="make the LLM in the process that uses it") as caught:
        pickle.dumps(llm)
    assert KEY not in str(caught.value)


# --- the in-process providers ----------------------------------------------------------------


def test_a_scripted_llm_pickles_with_its_script() -> None:
    llm = rxllm.scripted(["Hello ", "again."], delay=0.001)
    copy, _ = roundtrip(llm)
    assert rxllm.collect(copy.stream("hi"), timeout=10).text == "Hello again."


def test_a_local_llm_pickles_as_its_model_file_and_finds_the_default_again() -> None:
    pytest.importorskip("llama_cpp")
    llm = rxllm.local(temperature=0, max_tokens=4)
    copy, data = roundtrip(llm)
    assert b"gguf" not in data.lower()  # the default model: found again where it arrives
    assert (copy.model, copy.defaults) == (llm.model, llm.defaults)
    assert copy._provider.shared is llm._provider.shared  # one loaded model per process
    answer = rxllm.collect(copy.stream("Say hi."), timeout=120)
    assert answer.text == rxllm.collect(llm.stream("Say hi."), timeout=120).text


def test_a_local_llm_on_another_file_pickles_its_path(tmp_path: Any) -> None:
    pytest.importorskip("llama_cpp")
    from rxllm.providers.local import default_model_path

    other = tmp_path / "other.gguf"
    try:
        os.link(default_model_path(), other)  # the same file under another name
    except OSError:
        shutil.copyfile(default_model_path(), other)
    copy, data = roundtrip(rxllm.local(other))
    assert b"other.gguf" in data
    assert copy._provider.shared.path == other.resolve()
