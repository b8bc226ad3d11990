"""Anthropic's SDK as a provider: its clients, keys and the `rxllm.anthropic(...)` factory.

The wire protocol is a codec of its own (`anthropic_messages.MessagesCodec`); this module is
what is Anthropic-SDK-specific: which clients can be copied for the other kind of call, the
auth token the SDK reads by itself, the key variable.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import anthropic

from rxllm.llm import LLM
from rxllm.providers.anthropic_messages import MessagesCodec
from rxllm.providers.cancellation import sync_http_client
from rxllm.providers.sdk_provider import SDKProvider, client_options

__all__ = ["AnthropicProvider", "anthropic_llm", "without_sdk_spans"]

PROVIDER = "anthropic"


class AnthropicProvider(SDKProvider):
    """Configuration and SDK clients for one Anthropic model."""

    name = PROVIDER
    env_var = "ANTHROPIC_API_KEY"

    def extra_secrets(self) -> tuple[str | None, ...]:
        """The SDK also sends `ANTHROPIC_AUTH_TOKEN` as a bearer token when it is set."""
        return (os.environ.get("ANTHROPIC_AUTH_TOKEN"),)

    def copyable(self, client: Any) -> bool:
        """`Anthropic` / `AsyncAnthropic` themselves (not Bedrock or Vertex clients)."""
        return type(client) in (anthropic.Anthropic, anthropic.AsyncAnthropic)

    def twin_options(self, client: Any, *, asynchronous: bool) -> dict[str, Any]:
        """The bearer token a given client sends."""
        return {"auth_token": client.auth_token}

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new `anthropic.Anthropic` / `anthropic.AsyncAnthropic`, without the SDK's own
        spans (`without_sdk_spans`)."""
        if asynchronous:
            # a plain http client: the SDK's own wrapper schedules an aclose() on whatever
            # loop runs when it is collected, which fails once its own loop is closed
            http = self.async_http_client(
                anthropic.DefaultAioHttpClient, anthropic.DefaultAsyncHttpxClient
            )
            return anthropic.AsyncAnthropic(
                **options, http_client=http, **without_sdk_spans(anthropic.AsyncAnthropic)
            )
        return anthropic.Anthropic(
            **options,
            http_client=sync_http_client(anthropic.DefaultHttpxClient),
            **without_sdk_spans(anthropic.Anthropic),
        )


def without_sdk_spans(client_class: type) -> dict[str, Any]:
    """The constructor option that switches off an Anthropic client's own OpenTelemetry
    spans: `{"open_telemetry": False}` where the SDK has it (anthropic >= 2.17, which
    otherwise makes a `chat` span with `gen_ai.usage.*` per request, beside rxllm's own for
    the same call: token dashboards would count every call twice), else nothing. For every
    client rxllm makes of the anthropic SDK (Bedrock's and Vertex's take it too); a client
    you pass keeps its own setting (give it `open_telemetry=False`).

    >>> import anthropic
    >>> without_sdk_spans(anthropic.Anthropic) in ({"open_telemetry": False}, {})
    True
    """
    try:
        parameters = inspect.signature(client_class).parameters
    except (TypeError, ValueError):
        return {}
    return {"open_telemetry": False} if "open_telemetry" in parameters else {}


def anthropic_llm(
    model: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: anthropic.Anthropic | None = None,
    async_client: anthropic.AsyncAnthropic | None = None,
    **defaults: Any,
) -> LLM:
    """An `LLM` on Anthropic Messages streaming.

    `**defaults` are request parameters merged into every call (`max_tokens` defaults to
    4096), plus `stall_timeout` and `max_retries`. `temperature`, `top_p` and `top_k` are
    sent even though anthropic 2.x's `messages.create` no longer lists them.
    `transport` (`"httpx"` or `"aiohttp"`) is the HTTP stack of the async clients rxllm
    makes: by default the SDK's `DefaultAioHttpClient` when the SDK's aiohttp extra is
    installed (`pip install 'rxllm[aiohttp]'`: more concurrent streams per process), else
    its httpx2 client; sync calls always use httpx2.

    `api_key` (default: the `ANTHROPIC_API_KEY` environment variable; an
    `ANTHROPIC_AUTH_TOKEN` works too) and `base_url` configure the clients rxllm makes
    (with a client of your own, set them on it instead).
    `client=` / `async_client=` are SDK clients to use instead; given only one, calls of
    the other kind (sync vs asyncio) use a copy of it (same key or token, base URL,
    headers, query, timeout, retries); a Bedrock or Vertex client, or one with its own
    `http_client`, cannot be copied, so pass both.

    >>> import rxllm
    >>> rxllm.anthropic("claude-sonnet-4-5", api_key="sk-ant-...").provider
    'anthropic'
    """
    provider = AnthropicProvider(
        model,
        MessagesCodec,
        api_key=api_key,
        base_url=base_url,
        client=client,
        async_client=async_client,
        **client_options(defaults),
    )
    return LLM(provider, **defaults)
