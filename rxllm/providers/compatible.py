"""OpenAI-compatible services by name: Groq, OpenRouter, DeepSeek, Mistral, ..., and the
servers people run themselves (Ollama, vLLM, llama.cpp).

Each is OpenAI's SDK speaking Chat Completions to another host: an `OpenAIProvider` with the
service's name (on every chunk, error and `llm.provider`), its default base URL and the
environment variable of its key. Nothing of OpenAI's own configuration reaches another
service: the key comes only from the service's variable (or `api_key=`), never from
`OPENAI_API_KEY`, and the headers the SDK would add from `OPENAI_ORG_ID`,
`OPENAI_PROJECT_ID` or an `Authorization` in `OPENAI_CUSTOM_HEADERS` are left out. The
servers that need no key (Ollama, vLLM, llama.cpp) are sent the stand-in `no-key` unless a
key is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import openai

from rxllm.llm import LLM
from rxllm.providers.openai import OpenAIProvider
from rxllm.providers.openai_chat import ChatCodec
from rxllm.providers.sdk_provider import client_options
from rxllm.request import Request

__all__ = ["SERVICES", "CompatibleProvider", "NoStreamOptionsCodec", "Service", "compatible_llm"]


@dataclass(frozen=True)
class Service:
    """An OpenAI-compatible service: where it is and where its key comes from.

    >>> SERVICES["groq"].base_url
    'https://api.groq.com/openai/v1'
    """

    name: str
    """The prefix of its model strings and the provider name of its chunks ("groq")."""
    base_url: str | None
    """Its documented OpenAI-compatible endpoint; None when it must be given (vLLM)."""
    env_var: str
    """The environment variable that holds its key."""
    key_required: bool = True
    """False for servers that run without a key (a key given or set is still sent)."""
    example: str = "<model>"
    """A model name for messages and docs."""
    stream_options: bool = True
    """Whether it takes `stream_options` (rxllm asks for usage with it). Mistral refuses
    the field (HTTP 422, "extra_forbidden") and sends the usage in its last chunk anyway."""


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", True, "llama-3.3-70b"),
        Service(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
            True,
            "openai/gpt-4o",
        ),
        Service("deepseek", "https://api.deepseek.com", "DEEPSEEK_API_KEY", True, "deepseek-chat"),
        Service(
            "mistral",
            "https://api.mistral.ai/v1",
            "MISTRAL_API_KEY",
            True,
            "mistral-small-latest",
            stream_options=False,
        ),
        Service(
            "together",
            "https://api.together.xyz/v1",
            "TOGETHER_API_KEY",
            True,
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ),
        Service(
            "fireworks",
            "https://api.fireworks.ai/inference/v1",
            "FIREWORKS_API_KEY",
            True,
            "accounts/fireworks/models/llama-v3p3-70b-instruct",
        ),
        Service("xai", "https://api.x.ai/v1", "XAI_API_KEY", True, "grok-3-mini"),
        Service("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", True, "llama3.1-8b"),
        Service(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "GEMINI_API_KEY",
            True,
            "gemini-2.5-flash",
        ),
        Service("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY", False, "qwen2.5:0.5b"),
        Service("vllm", None, "VLLM_API_KEY", False, "Qwen/Qwen2.5-0.5B-Instruct"),
        Service("llamacpp", None, "LLAMA_API_KEY", False, "smollm2"),
    )
}
"""The OpenAI-compatible services `rxllm.model()` knows by name (`docs/providers.md`)."""

_UNUSED_KEY = "no-key"
"""The key sent to a server that needs none (the SDK makes no client without a key; such
servers ignore it). Not a secret: error messages may show it."""


def _ollama_url() -> str:
    """Ollama's endpoint: `OLLAMA_HOST` (as Ollama's own clients read it) or localhost."""
    host = os.environ.get("OLLAMA_HOST", "").strip().rstrip("/")
    if not host:
        return "http://localhost:11434/v1"
    if "://" not in host:
        host = f"http://{host}"
    return f"{host}/v1"


class NoStreamOptionsCodec(ChatCodec):
    """Chat Completions without the `stream_options` rxllm adds (a caller's own are sent),
    for a service that refuses the field and reports usage unasked."""

    def arguments(self, request: Request) -> dict[str, Any]:
        """`ChatCodec.arguments`, less the `stream_options` the caller did not give."""
        kwargs = super().arguments(request)
        if "stream_options" not in request.params:
            kwargs.pop("stream_options", None)
        return kwargs


class CompatibleProvider(OpenAIProvider):
    """An OpenAI-compatible service's model (see the module docstring)."""

    key_hint = ""

    def __init__(
        self,
        service: Service,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        async_client: Any = None,
        max_retries: int | None = None,
        transport: str | None = None,
    ) -> None:
        self.service = service
        super().__init__(
            model,
            ChatCodec if service.stream_options else NoStreamOptionsCodec,
            api_key=api_key,
            base_url=base_url,
            client=client,
            async_client=async_client,
            max_retries=max_retries,
            transport=transport,
            name=service.name,
            env_var=service.env_var,
            label=f'rxllm.model("{service.name}:{model}")',
        )

    def key(self) -> str | None:
        """The service's key: `api_key`, else its own variable (never `OPENAI_API_KEY`);
        None for a server that needs none; `AuthenticationError` naming the variable."""
        if self.service.key_required:
            return super().key()
        return self.api_key or os.environ.get(self.env_var) or None

    def _options(self, *, asynchronous: bool) -> dict[str, Any]:
        options = super()._options(asynchronous=asynchronous)
        if self._given != (None, None):
            return options  # a copy of the client given: its own settings, exactly
        # A keyless server gets a stand-in (the SDK makes no client without a key), sent as
        # such servers expect: they ignore it.
        key = options.get("api_key") or _UNUSED_KEY
        options["api_key"] = key
        # Given explicitly, these headers win over what the SDK reads from OpenAI's
        # variables: no organization, project or custom Authorization of OpenAI's.
        headers: dict[str, Any] = {
            "OpenAI-Organization": openai.Omit(),
            "OpenAI-Project": openai.Omit(),
        }
        if isinstance(key, str):
            headers["Authorization"] = f"Bearer {key}"
        options["default_headers"] = headers
        return options

    def secrets(self) -> tuple[str, ...]:
        """The credentials this provider may send (not the stand-in for no key)."""
        return tuple(secret for secret in super().secrets() if secret != _UNUSED_KEY)


def compatible_llm(
    service: str | Service,
    model: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: openai.OpenAI | None = None,
    async_client: openai.AsyncOpenAI | None = None,
    **defaults: Any,
) -> LLM:
    """An `LLM` on an OpenAI-compatible service (`rxllm.model("groq:...")` calls this).

    `base_url` overrides the service's default (required for `vllm` and `llamacpp`, whose
    servers are wherever you run them); `api_key` overrides its key variable; `client` /
    `async_client` are your own `openai` clients (then the service's URL and key are
    theirs). `**defaults` as for `rxllm.openai`.

    >>> llm = compatible_llm("groq", "llama-3.3-70b", api_key="gsk-...")
    >>> llm.provider, str(llm._provider.sync_client().base_url)
    ('groq', 'https://api.groq.com/openai/v1/')
    """
    spec = SERVICES[service] if isinstance(service, str) else service
    if not isinstance(model, str) or not model:
        raise ValueError(
            f'rxllm.model("{spec.name}:...") needs a model name after the colon, e.g. '
            f'"{spec.name}:{spec.example}"'
        )
    if client is None and async_client is None and base_url is None:
        base_url = _ollama_url() if spec.name == "ollama" else spec.base_url
        if base_url is None:
            raise ValueError(
                f'rxllm.model("{spec.name}:{model}") needs base_url=..., the URL of your '
                f"{spec.name} server's OpenAI-compatible API, e.g. "
                f'base_url="http://localhost:8000/v1"'
            )
    provider = CompatibleProvider(
        spec,
        model,
        api_key=api_key,
        base_url=base_url,
        client=client,
        async_client=async_client,
        **client_options(defaults),
    )
    return LLM(provider, **defaults)
