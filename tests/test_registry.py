"""`rxllm.model("provider:model")` and `rxllm.register_provider`: every built-in prefix
builds the right SDK client (base URL, provider name), keys never cross services, and
what is missing is an error that names what to set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

import rxllm
from rxllm import messages
from rxllm.models import ToolCall, ToolResult
from rxllm.providers.compatible import SERVICES

# Every built-in prefix: (spec, keyword arguments, provider name, base URL of its client)
HOSTED = {
    "groq": "https://api.groq.com/openai/v1/",
    "openrouter": "https://openrouter.ai/api/v1/",
    "deepseek": "https://api.deepseek.com/",
    "mistral": "https://api.mistral.ai/v1/",
    "together": "https://api.together.xyz/v1/",
    "fireworks": "https://api.fireworks.ai/inference/v1/",
    "xai": "https://api.x.ai/v1/",
    "cerebras": "https://api.cerebras.ai/v1/",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
}
KEY_VARS = {
    "groq": "GROQ_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "together": "TOGETHER_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "xai": "XAI_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "gemini": "GEMINI_API_KEY",
}
BUILT_IN = {
    "openai",
    "openai-responses",
    "anthropic",
    "local",
    *HOSTED,
    "ollama",
    "vllm",
    "llamacpp",
    "azure",
    "bedrock",
    "vertex",
}
OPENAI_KEY = "sk-openai-must-never-leave-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No key of any service in the environment, but OpenAI's own settings, which must
    never reach another service."""
    for name in [
        *KEY_VARS.values(),
        "OLLAMA_API_KEY",
        "OLLAMA_HOST",
        "VLLM_API_KEY",
        "LLAMA_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_AD_TOKEN",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
        "OPENAI_BASE_URL",
        "CLOUD_ML_REGION",
        "ANTHROPIC_VERTEX_PROJECT_ID",
        "ANTHROPIC_BEDROCK_BASE_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-openai-only")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-openai-only")
    yield


def client_of(llm: rxllm.LLM) -> Any:
    return llm._provider.sync_client()  # type: ignore[attr-defined]


# --- the built-in prefixes -------------------------------------------------------------------


def test_the_built_in_prefixes_are_the_ones_api_md_lists() -> None:
    assert set(rxllm.registry.providers()) >= BUILT_IN
    assert set(SERVICES) == {*HOSTED, "ollama", "vllm", "llamacpp"}


@pytest.mark.parametrize("service", sorted(HOSTED))
def test_each_hosted_service_has_its_base_url_name_and_key(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARS[service], f"{service}-key-1234")
    llm = rxllm.model(f"{service}:some/model:v1")
    assert (llm.provider, llm.model) == (service, "some/model:v1")
    client = client_of(llm)
    assert str(client.base_url).rstrip("/") == HOSTED[service].rstrip("/")
    assert client.api_key == f"{service}-key-1234"
    assert isinstance(client, __import__("openai").OpenAI)


@pytest.mark.parametrize("service", sorted(HOSTED))
def test_a_missing_key_names_the_services_variable_not_openais(service: str) -> None:
    llm = rxllm.model(f"{service}:m")  # building needs no key: the call does
    with pytest.raises(rxllm.AuthenticationError) as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    message = str(caught.value)
    assert KEY_VARS[service] in message
    assert "OPENAI_API_KEY" not in message
    assert f'rxllm.model("{service}:m")' in message
    assert caught.value.provider == service


def test_base_url_overrides_the_default_and_api_key_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env")
    llm = rxllm.model("groq:m", base_url="http://127.0.0.1:9/proxy/v1", api_key="gsk-given")
    client = client_of(llm)
    assert str(client.base_url) == "http://127.0.0.1:9/proxy/v1/"
    assert client.api_key == "gsk-given"


def test_ollama_needs_no_key_and_reads_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    llm = rxllm.model("ollama:qwen2.5:0.5b")
    assert llm.model == "qwen2.5:0.5b"  # the prefix is only what precedes the first ':'
    assert str(client_of(llm).base_url) == "http://localhost:11434/v1/"
    monkeypatch.setenv("OLLAMA_HOST", "10.1.2.3:11500")
    assert str(client_of(rxllm.model("ollama:q")).base_url) == "http://10.1.2.3:11500/v1/"
    monkeypatch.setenv("OLLAMA_HOST", "https://ollama.example/")
    assert str(client_of(rxllm.model("ollama:q")).base_url) == "https://ollama.example/v1/"


@pytest.mark.parametrize("service", ["vllm", "llamacpp"])
def test_self_hosted_servers_need_a_base_url(service: str) -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        rxllm.model(f"{service}:m")
    assert f'rxllm.model("{service}:m")' in str(caught.value)
    llm = rxllm.model(f"{service}:m", base_url="http://127.0.0.1:8000/v1")
    assert llm.provider == service
    assert str(client_of(llm).base_url) == "http://127.0.0.1:8000/v1/"


def test_openai_and_anthropic_prefixes_are_the_constructors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-1234")
    llm = rxllm.model("openai:gpt-4o-mini", temperature=0)
    assert (llm.provider, llm.model, llm.defaults) == ("openai", "gpt-4o-mini", {"temperature": 0})
    assert client_of(llm).api_key == OPENAI_KEY  # OpenAI's key is OpenAI's
    claude = rxllm.model("anthropic:claude-sonnet-4-5")
    assert (claude.provider, client_of(claude).api_key) == ("anthropic", "sk-ant-1234")


def test_openai_responses_asks_for_the_responses_api() -> None:
    # The Responses API codec lives in its own branch: this build says so, by name.
    try:
        llm = rxllm.model("openai-responses:gpt-5-mini")
    except ValueError as exc:
        assert "responses" in str(exc).lower()
    else:  # merged: the same provider, another protocol
        assert (llm.provider, llm.model) == ("openai", "gpt-5-mini")
    with pytest.raises(TypeError, match='api="responses" already'):
        rxllm.model("openai-responses:gpt-5-mini", api="chat")


def test_local_alone_is_the_default_model_and_local_path_a_file(tmp_path: Any) -> None:
    pytest.importorskip("llama_cpp")
    llm = rxllm.model("local")
    assert llm.provider == "local"
    assert llm.model == rxllm.local().model
    with pytest.raises(FileNotFoundError):
        rxllm.model(f"local:{tmp_path / 'missing.gguf'}")
    with pytest.raises(TypeError, match="after the colon"):
        rxllm.model("local:", model_path="x.gguf")


def test_azure_builds_the_sdks_azure_client() -> None:
    import openai

    llm = rxllm.model(
        "azure:my-gpt-4o",
        azure_endpoint="https://res.openai.azure.com",
        api_version="2024-10-21",
        api_key="azure-key-1234",
    )
    client = client_of(llm)
    assert isinstance(client, openai.AzureOpenAI)
    assert (llm.provider, llm.model) == ("azure", "my-gpt-4o")
    assert str(client.base_url) == "https://res.openai.azure.com/openai/"
    assert client.api_key == "azure-key-1234"


def test_azure_says_what_it_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="AZURE_OPENAI_ENDPOINT"):
        rxllm.model("azure:d", api_version="2024-10-21")
    with pytest.raises(ValueError, match="OPENAI_API_VERSION"):
        rxllm.model("azure:d", azure_endpoint="https://r.openai.azure.com")
    with pytest.raises(ValueError, match="one credential"):
        rxllm.model(
            "azure:d",
            azure_endpoint="https://r.openai.azure.com",
            api_version="v",
            api_key="k",
            azure_ad_token="t",
        )
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://env.openai.azure.com")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    llm = rxllm.model("azure:d")  # no credential: the call says which variable to set
    with pytest.raises(rxllm.AuthenticationError, match="AZURE_OPENAI_API_KEY") as caught:
        rxllm.collect(llm.stream("hi"), timeout=10)
    assert re.search(r"(?<!AZURE_)OPENAI_API_KEY", str(caught.value)) is None
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-env-key")
    client = client_of(rxllm.model("azure:d"))
    assert str(client.base_url) == "https://env.openai.azure.com/openai/"
    assert client.api_key == "azure-env-key"


def test_bedrock_and_vertex_build_the_anthropic_clouds_clients() -> None:
    import anthropic

    bedrock = rxllm.model(
        "bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0", aws_region="eu-west-3"
    )
    assert (bedrock.provider, bedrock.model) == (
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    )
    client = client_of(bedrock)
    assert isinstance(client, anthropic.AnthropicBedrock)
    assert str(client.base_url).rstrip("/") == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    vertex = rxllm.model(
        "vertex:claude-sonnet-4-5@20250929",
        region="us-east5",
        project_id="my-project",
        access_token="ya29.token",
    )
    client = client_of(vertex)
    assert isinstance(client, anthropic.AnthropicVertex)
    assert vertex.provider == "vertex"
    assert str(client.base_url) == "https://us-east5-aiplatform.googleapis.com/v1/"


def test_bedrock_and_vertex_need_a_region() -> None:
    import boto3

    if boto3.Session().region_name:  # a region in ~/.aws/config answers for the default
        pytest.skip("this machine's AWS configuration has a default region")
    with pytest.raises(ValueError, match="AWS_REGION"):
        rxllm.model("bedrock:m")
    with pytest.raises(ValueError, match="CLOUD_ML_REGION"):
        rxllm.model("vertex:m", access_token="t")


@pytest.mark.parametrize(
    ("spec", "module", "extra"),
    [("bedrock:m", "boto3", "bedrock"), ("vertex:m", "google.auth", "vertex")],
)
def test_a_missing_extra_is_an_import_error_naming_it(
    spec: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    where = {"aws_region": "us-east-1"} if extra == "bedrock" else {"region": "us-east5"}
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    with pytest.raises(ImportError, match=rf"rxllm\[{extra}\]") as caught:
        rxllm.model(spec, **where)
    assert module in str(caught.value)


# --- model strings and errors -----------------------------------------------------------------


def test_an_unknown_prefix_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as caught:
        rxllm.model("grok:llama")
    message = str(caught.value)
    assert "'grok'" in message
    for name in ("groq", "openai", "anthropic", "bedrock", "llamacpp", "local"):
        assert name in message


def test_a_model_string_without_a_prefix_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match='"openai:gpt-4o"'):
        rxllm.model("gpt-4o")
    with pytest.raises(ValueError, match="needs a model name after the colon"):
        rxllm.model("groq:")
    with pytest.raises(TypeError, match="model string"):
        rxllm.model(None)  # type: ignore[arg-type]


def test_the_prefix_is_everything_before_the_first_colon() -> None:
    llm = rxllm.model("vllm:org/model:tag:extra", base_url="http://127.0.0.1:1/v1")
    assert llm.model == "org/model:tag:extra"


def test_request_defaults_pass_through_and_are_checked() -> None:
    llm = rxllm.model("ollama:q", temperature=0.2, max_tokens=50)
    assert llm.defaults == {"temperature": 0.2, "max_tokens": 50}
    with pytest.raises(ValueError, match="max_tokens"):
        rxllm.model("ollama:q", max_tokens=-1)


# --- register_provider --------------------------------------------------------------------


def test_register_provider_adds_a_prefix_that_gets_the_model_and_keywords() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def office(model: str, **kw: Any) -> rxllm.LLM:
        seen.append((model, kw))
        return rxllm.scripted(f"{model} says hi")

    rxllm.register_provider("office-test", office)
    try:
        llm = rxllm.model("office-test:qwen:7b", temperature=0)
        assert seen == [("qwen:7b", {"temperature": 0})]
        assert rxllm.collect(llm.stream("hi")).text == "qwen:7b says hi"
        assert "office-test" in rxllm.registry.providers()
    finally:
        rxllm.registry._FACTORIES.pop("office-test", None)


def test_register_provider_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="without ':'"):
        rxllm.register_provider("a:b", lambda model, **kw: rxllm.scripted("x"))
    with pytest.raises(ValueError):
        rxllm.register_provider("", lambda model, **kw: rxllm.scripted("x"))
    with pytest.raises(TypeError, match="callable"):
        rxllm.register_provider("nothing", "not a function")  # type: ignore[arg-type]
    rxllm.register_provider("wrong-test", lambda model, **kw: "not an LLM")
    try:
        with pytest.raises(TypeError, match=r"not an rxllm\.LLM"):
            rxllm.model("wrong-test:x")
    finally:
        rxllm.registry._FACTORIES.pop("wrong-test", None)


# --- the message formats learn the names ---------------------------------------------------


@pytest.mark.parametrize("provider", [*SERVICES, "azure"])
def test_openai_compatible_names_take_openais_format(provider: str) -> None:
    results = [ToolResult(call=ToolCall(id="c1", name="f", arguments="{}"), output=4)]
    assert messages.message_format(provider) == "openai"
    assert ToolResult.messages(results, provider) == [
        {"role": "tool", "tool_call_id": "c1", "content": "4"}
    ]


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_the_anthropic_clouds_take_anthropics_format(provider: str) -> None:
    results = [ToolResult(call=ToolCall(id="c1", name="f", arguments="{}"), output=4)]
    assert messages.message_format(provider) == "anthropic"
    (message,) = ToolResult.messages(results, provider)
    assert message["role"] == "user"
    assert message["content"][0]["type"] == "tool_result"
