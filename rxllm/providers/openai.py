"""OpenAI's SDK as a provider: its clients, keys and the `rxllm.openai(...)` factory.

The wire protocol is a codec of its own (`openai_chat.ChatCodec` for Chat Completions);
this module is what is OpenAI-SDK-specific whatever the protocol: which clients can be
copied for the other kind of call, a key given as a callable, the key variable.
"""

from __future__ import annotations

import inspect
from typing import Any

import openai

from rxllm._loops import run_awaitable
from rxllm.llm import LLM
from rxllm.providers import _sdk_private
from rxllm.providers.cancellation import sync_http_client
from rxllm.providers.http_call import HTTPCodecClass
from rxllm.providers.openai_chat import ChatCodec
from rxllm.providers.openai_responses import ResponsesCodec
from rxllm.providers.sdk_provider import SDKProvider, client_options

__all__ = ["OpenAIProvider", "openai_llm"]

PROVIDER = "openai"
_APIS: dict[str, HTTPCodecClass] = {"chat": ChatCodec, "responses": ResponsesCodec}
"""The wire protocols OpenAI's SDK speaks, by `api=`."""


class OpenAIProvider(SDKProvider):
    """Configuration and SDK clients for one OpenAI model."""

    name = PROVIDER
    env_var = "OPENAI_API_KEY"
    key_hint = (
        " (a local OpenAI-compatible server needs no key: "
        "rxllm.model('vllm:<model>', base_url=...), or 'llamacpp:' / 'ollama:')"
    )

    def copyable(self, client: Any) -> bool:
        """`OpenAI` / `AsyncOpenAI` themselves (an Azure client has its own paths and
        header)."""
        return type(client) in (openai.OpenAI, openai.AsyncOpenAI)

    def twin_options(self, client: Any, *, asynchronous: bool) -> dict[str, Any]:
        """The organization, project and key provider a given client sends with."""
        options = {"organization": client.organization, "project": client.project}
        provider = _sdk_private.api_key_provider(client)
        if provider is not None:  # a callable key, called per request
            options["api_key"] = _key_provider(provider, asynchronous=asynchronous)
        return options

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new `openai.OpenAI` / `openai.AsyncOpenAI`."""
        if asynchronous:
            # a plain http client: the SDK's own wrapper schedules an aclose() on whatever
            # loop runs when it is collected, which fails once its own loop is closed
            http = self.async_http_client(
                openai.DefaultAioHttpClient, openai.DefaultAsyncHttpxClient
            )
            return openai.AsyncOpenAI(**options, http_client=http)
        return openai.OpenAI(**options, http_client=sync_http_client(openai.DefaultHttpxClient))


def _key_provider(provider: Any, *, asynchronous: bool) -> Any:
    """A sync client's key provider for an async client, or the other way round (picklable
    when the provider is: a pickled `LLM` sends it, as a closure holding it would)."""
    return _AsyncKey(provider) if asynchronous else _SyncKey(provider)


class _AsyncKey:
    """A key provider (sync or async) as the async client's."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    async def __call__(self) -> str:
        key = self.provider()
        return str(await key if inspect.isawaitable(key) else key)


class _SyncKey:
    """A key provider (sync or async) as the sync client's."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def __call__(self) -> str:
        key = self.provider()
        return str(run_awaitable(key) if inspect.isawaitable(key) else key)


def openai_llm(
    model: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: openai.OpenAI | None = None,
    async_client: openai.AsyncOpenAI | None = None,
    api: str = "chat",
    **defaults: Any,
) -> LLM:
    """An `LLM` on OpenAI Chat Completions streaming (or any OpenAI-compatible `base_url`),
    or, with `api="responses"`, on OpenAI's Responses API.

    `**defaults` are request parameters merged into every call, plus `stall_timeout` and
    `max_retries` (given to the SDK client for failures before the stream starts). With
    `n` > 1 choices the chunks and the `Response` follow the first choice; `Response.raw`
    has them all. Compatible servers' variants are read too: `reasoning_content` /
    `reasoning` as thinking, content sent as typed parts (Mistral), tool calls sent without
    an index (Gemini), Azure's filter events (left out of `Response.raw`, as the SDK does).
    `transport` (`"httpx"` or `"aiohttp"`) is the HTTP stack of the async clients rxllm
    makes: by default the SDK's `DefaultAioHttpClient` when the SDK's aiohttp extra is
    installed (`pip install 'rxllm[aiohttp]'`: more concurrent streams per process), else
    its httpx2 client; sync calls always use httpx2.

    `api` is the protocol: `"chat"` (Chat Completions, the default; every OpenAI-compatible
    server speaks it) or `"responses"` (OpenAI's Responses API).

    `api_key` (default: the `OPENAI_API_KEY` environment variable) and `base_url` configure
    the clients rxllm makes (with a client of your own, set them on it instead).
    `client=` / `async_client=` are SDK clients to use instead; given only one, calls of
    the other kind (sync vs asyncio) use a copy of it (same key, base URL, headers,
    query, timeout, retries); an Azure client or one with its own `http_client` cannot be
    copied, so pass both.

    >>> import rxllm
    >>> llm = rxllm.openai("gpt-4o-mini", api_key="sk-...", temperature=0)
    >>> llm.model
    'gpt-4o-mini'
    >>> rxllm.openai("gpt-5-mini", api="responses", api_key="sk-...").provider
    'openai'
    """
    codec = _APIS.get(api)
    if codec is None:
        raise ValueError(
            f"rxllm.openai(api=...) is 'chat' (Chat Completions) or 'responses' (the "
            f"Responses API), not {api!r}"
        )
    provider = OpenAIProvider(
        model,
        codec,
        api_key=api_key,
        base_url=base_url,
        client=client,
        async_client=async_client,
        **client_options(defaults),
    )
    return LLM(provider, **defaults)
