"""Models by name: `rxllm.model("groq:llama-3.3-70b")`, and `register_provider` for your own.

A model string is `"<prefix>:<model>"`: the prefix is everything before the first `:`, the
model everything after it (`"ollama:qwen2.5:0.5b"` is Ollama's `qwen2.5:0.5b`). Each prefix
maps to a factory `factory(model, **kw) -> LLM`; the built-in ones are OpenAI (Chat
Completions and the Responses API), Anthropic, the local model, the OpenAI-compatible
services (`rxllm.providers.compatible.SERVICES`: each with its base URL and key variable),
Azure OpenAI, and Claude on Bedrock and Vertex AI. `docs/providers.md` has the table.

The built-in factories import their SDK only when called, so naming a model costs nothing
until it is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rxllm import messages
from rxllm.llm import LLM

__all__ = ["ProviderFactory", "model", "providers", "register_provider"]

ProviderFactory = Callable[..., LLM]
"""`factory(model, **kw) -> LLM`: makes an `LLM` of one prefix's model."""

_COMPATIBLE = (
    "groq",
    "openrouter",
    "deepseek",
    "mistral",
    "together",
    "fireworks",
    "xai",
    "cerebras",
    "gemini",
    "ollama",
    "vllm",
    "llamacpp",
)
"""The OpenAI-compatible services (their table is `rxllm.providers.compatible.SERVICES`,
which imports the openai SDK: the names are repeated here so importing rxllm does not)."""


def _openai(model: str, **kw: Any) -> LLM:
    from rxllm.providers.openai import openai_llm

    return openai_llm(model, **kw)


def _openai_responses(model: str, **kw: Any) -> LLM:
    from rxllm.providers.openai import openai_llm

    if "api" in kw:
        raise TypeError('"openai-responses:..." is api="responses" already: drop api=...')
    return openai_llm(model, api="responses", **kw)


def _anthropic(model: str, **kw: Any) -> LLM:
    from rxllm.providers.anthropic import anthropic_llm

    return anthropic_llm(model, **kw)


def _local(model: str, **kw: Any) -> LLM:
    from rxllm.providers.local import local

    if "model_path" in kw:
        raise TypeError(
            'rxllm.model("local:<path>") takes the GGUF path after the colon, not model_path='
        )
    return local(model or None, **kw)


def _compatible(service: str) -> ProviderFactory:
    def factory(model: str, **kw: Any) -> LLM:
        from rxllm.providers.compatible import compatible_llm

        return compatible_llm(service, model, **kw)

    factory.__name__ = f"{service}_llm"
    factory.__doc__ = f'`rxllm.model("{service}:<model>")`: {service}, OpenAI-compatible.'
    return factory


def _azure(model: str, **kw: Any) -> LLM:
    from rxllm.providers.azure import azure_llm

    return azure_llm(model, **kw)


def _bedrock(model: str, **kw: Any) -> LLM:
    from rxllm.providers.anthropic_clouds import bedrock_llm

    return bedrock_llm(model, **kw)


def _vertex(model: str, **kw: Any) -> LLM:
    from rxllm.providers.anthropic_clouds import vertex_llm

    return vertex_llm(model, **kw)


_lock = threading.Lock()
_FACTORIES: dict[str, ProviderFactory] = {
    "openai": _openai,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic,
    "local": _local,
    **{service: _compatible(service) for service in _COMPATIBLE},
    "azure": _azure,
    "bedrock": _bedrock,
    "vertex": _vertex,
}
_MODEL_OPTIONAL = frozenset({"local"})
"""Prefixes that make sense alone (`"local"`: the default SmolLM2 model)."""

# `ToolResult.messages(results, llm.provider)` and `Response.message(provider)` take a
# provider's name: the services speak OpenAI's format, Bedrock and Vertex Anthropic's.
messages.OPENAI_FORMAT.update({*_COMPATIBLE, "azure"})
messages.ANTHROPIC_FORMAT.update({"bedrock", "vertex"})


def providers() -> list[str]:
    """The prefixes `model()` knows, built-in and registered, sorted.

    >>> "groq" in providers() and "local" in providers()
    True
    """
    with _lock:
        return sorted(_FACTORIES)


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Add a prefix: `rxllm.model("name:some-model", **kw)` calls `factory("some-model", **kw)`,
    which returns an `LLM`. Registering a name again replaces its factory (a built-in one
    too).

    >>> import rxllm
    >>> def office(model, **kw):
    ...     return rxllm.openai(model, base_url="http://llm.office.lan/v1", api_key="-", **kw)
    >>> rxllm.register_provider("office", office)
    >>> rxllm.model("office:qwen2.5-7b", temperature=0).model
    'qwen2.5-7b'
    """
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(
            f"a provider name is a non-empty word without ':' or spaces around it, not {name!r}"
        )
    if not callable(factory):
        raise TypeError(
            f"register_provider({name!r}, factory): factory must be callable as "
            f"factory(model, **kw) -> LLM, not {type(factory).__name__}"
        )
    with _lock:
        _FACTORIES[name] = factory


def model(spec: str, **kw: Any) -> LLM:
    """An `LLM` from a model string: `"<provider>:<model>"` (see the module docstring).

    `kw` are the provider's keyword arguments (`api_key`, `base_url`, ..., and request
    defaults such as `temperature`); `base_url` overrides a service's default. An unknown
    provider is a `ValueError` that lists the known ones.

    >>> import rxllm
    >>> llm = rxllm.model("groq:llama-3.3-70b", api_key="gsk_...")
    >>> llm.provider, llm.model
    ('groq', 'llama-3.3-70b')
    >>> rxllm.model("ollama:qwen2.5:0.5b").model
    'qwen2.5:0.5b'
    """
    if not isinstance(spec, str):
        raise TypeError(
            'rxllm.model() takes a model string like "openai:gpt-4o-mini", '
            f"not {type(spec).__name__}"
        )
    prefix, colon, name = spec.partition(":")
    prefix = prefix.strip()
    with _lock:
        factory = _FACTORIES.get(prefix)
        known = sorted(_FACTORIES)
    if factory is None:
        listed = ", ".join(known)
        hint = f' (write "<provider>:<model>", e.g. "openai:{spec}")' if not colon else ""
        raise ValueError(f"unknown provider {prefix!r} in {spec!r}{hint}: known are {listed}")
    if not name and prefix not in _MODEL_OPTIONAL:
        raise ValueError(
            f'rxllm.model({spec!r}) needs a model name after the colon, e.g. "{prefix}:<model>"'
        )
    result = factory(name, **kw)
    if not isinstance(result, LLM):
        raise TypeError(
            f"the factory registered for {prefix!r} returned {type(result).__name__}, not an "
            "rxllm.LLM"
        )
    return result
