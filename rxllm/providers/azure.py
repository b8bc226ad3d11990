"""Azure OpenAI through the SDK's own `openai.AzureOpenAI` / `AsyncAzureOpenAI`.

The model is the deployment's name; the SDK sends it to
`{azure_endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...` with the
key in Azure's `api-key` header (or an Entra ID token as a bearer). The protocol is Chat
Completions (`ChatCodec`), so everything else is the OpenAI path unchanged. The key comes
from `api_key=` or `AZURE_OPENAI_API_KEY`, never from `OPENAI_API_KEY`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import openai

from rxllm import errors
from rxllm.llm import LLM
from rxllm.providers.cancellation import sync_http_client
from rxllm.providers.openai import OpenAIProvider
from rxllm.providers.openai_chat import ChatCodec
from rxllm.providers.sdk_provider import client_options

__all__ = ["AzureProvider", "azure_llm"]


class AzureProvider(OpenAIProvider):
    """A deployment on Azure OpenAI (see the module docstring)."""

    name = "azure"
    env_var = "AZURE_OPENAI_API_KEY"
    key_hint = ""

    def __init__(
        self,
        deployment: str,
        *,
        azure_endpoint: str | None,
        api_version: str | None,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        base_url: str | None = None,
        client: Any = None,
        async_client: Any = None,
        max_retries: int | None = None,
        transport: str | None = None,
    ) -> None:
        super().__init__(
            deployment,
            ChatCodec,
            api_key=api_key,
            base_url=base_url,
            client=client,
            async_client=async_client,
            max_retries=max_retries,
            transport=transport,
            label=f'rxllm.model("azure:{deployment}")',
        )
        self._endpoint = azure_endpoint
        self._api_version = api_version
        self._ad_token = azure_ad_token
        self._ad_token_provider = azure_ad_token_provider

    def key(self) -> str | None:
        """The key (`api_key`, else `AZURE_OPENAI_API_KEY`); None with an Entra ID token
        (given, a token provider, or `AZURE_OPENAI_AD_TOKEN`) or clients of your own;
        `AuthenticationError` naming the variables when there is no credential."""
        if self._ad_token or self._ad_token_provider:
            return None  # the SDK sends the token
        key = self.api_key or (
            None if os.environ.get("AZURE_OPENAI_AD_TOKEN") else os.environ.get(self.env_var)
        )
        if key or os.environ.get("AZURE_OPENAI_AD_TOKEN"):
            return key
        if any(client is not None for client in self._given):
            return None
        raise errors.AuthenticationError(
            "no azure credential: set the AZURE_OPENAI_API_KEY environment variable (or "
            f"AZURE_OPENAI_AD_TOKEN), or pass api_key=... or azure_ad_token_provider=... to "
            f"{self.label}",
            provider=self.name,
        )

    def extra_secrets(self) -> tuple[str | None, ...]:
        """Entra ID tokens given or in the environment."""
        return (self._ad_token, os.environ.get("AZURE_OPENAI_AD_TOKEN"))

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new `openai.AzureOpenAI` / `openai.AsyncAzureOpenAI` from this provider's settings."""
        settings: dict[str, Any] = {
            "api_version": self._api_version,
            # OpenAI's own account headers (OPENAI_ORG_ID, OPENAI_PROJECT_ID) stay at OpenAI
            "default_headers": {
                "OpenAI-Organization": openai.Omit(),
                "OpenAI-Project": openai.Omit(),
            },
        }
        if options.get("base_url"):
            settings["base_url"] = options["base_url"]
        else:
            settings["azure_endpoint"] = self._endpoint
        if options.get("api_key"):
            settings["api_key"] = options["api_key"]
        elif self._ad_token:
            settings["azure_ad_token"] = self._ad_token
        elif self._ad_token_provider is not None:
            settings["azure_ad_token_provider"] = self._ad_token_provider
        if "max_retries" in options:
            settings["max_retries"] = options["max_retries"]
        if asynchronous:
            http = self.async_http_client(
                openai.DefaultAioHttpClient, openai.DefaultAsyncHttpxClient
            )
            return openai.AsyncAzureOpenAI(**settings, http_client=http)
        return openai.AzureOpenAI(
            **settings, http_client=sync_http_client(openai.DefaultHttpxClient)
        )


def azure_llm(
    deployment: str,
    *,
    azure_endpoint: str | None = None,
    api_version: str | None = None,
    api_key: str | None = None,
    azure_ad_token: str | None = None,
    azure_ad_token_provider: Callable[[], str] | None = None,
    base_url: str | None = None,
    client: openai.AzureOpenAI | None = None,
    async_client: openai.AsyncAzureOpenAI | None = None,
    **defaults: Any,
) -> LLM:
    """An `LLM` on an Azure OpenAI deployment (`rxllm.model("azure:<deployment>")` calls this).

    `azure_endpoint` (else `AZURE_OPENAI_ENDPOINT`), e.g.
    `"https://my-resource.openai.azure.com"`, or a whole `base_url` instead;
    `api_version` (else `OPENAI_API_VERSION`), e.g. `"2024-10-21"`. One credential:
    `api_key` (else `AZURE_OPENAI_API_KEY`), an Entra ID `azure_ad_token` (else
    `AZURE_OPENAI_AD_TOKEN`) or `azure_ad_token_provider` (a sync callable: both the sync
    and the async client call it). Or your own `client` and `async_client`.

    >>> import rxllm
    >>> llm = rxllm.model("azure:my-gpt-4o", azure_endpoint="https://res.openai.azure.com",
    ...                   api_version="2024-10-21", api_key="...")
    >>> llm.provider, str(llm._provider.sync_client().base_url)
    ('azure', 'https://res.openai.azure.com/openai/')
    """
    label = f'rxllm.model("azure:{deployment}")'
    credentials = [
        name
        for name, value in (
            ("api_key", api_key),
            ("azure_ad_token", azure_ad_token),
            ("azure_ad_token_provider", azure_ad_token_provider),
        )
        if value is not None
    ]
    if len(credentials) > 1:
        raise ValueError(f"{label} takes one credential, not {' and '.join(credentials)}")
    if client is None and async_client is None:
        if base_url is None:
            azure_endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
            if not azure_endpoint:
                raise ValueError(
                    f"{label} needs your resource's endpoint: pass azure_endpoint=... (e.g. "
                    "'https://my-resource.openai.azure.com') or set AZURE_OPENAI_ENDPOINT"
                )
        elif azure_endpoint is not None:
            raise ValueError(f"{label} takes azure_endpoint or base_url, not both")
        api_version = api_version or os.environ.get("OPENAI_API_VERSION")
        if not api_version:
            raise ValueError(
                f"{label} needs an API version: pass api_version=... (e.g. '2024-10-21') or "
                "set OPENAI_API_VERSION"
            )
    elif azure_endpoint is not None or api_version is not None or credentials:
        raise ValueError(
            f"{label} got a client and azure_endpoint/api_version/credentials: those configure "
            "the clients rxllm makes; set them on your client"
        )
    provider = AzureProvider(
        deployment,
        azure_endpoint=azure_endpoint,
        api_version=api_version,
        api_key=api_key,
        azure_ad_token=azure_ad_token,
        azure_ad_token_provider=azure_ad_token_provider,
        base_url=base_url,
        client=client,
        async_client=async_client,
        **client_options(defaults),
    )
    return LLM(provider, **defaults)
