"""Claude on the clouds: Amazon Bedrock and Google Vertex AI, through the anthropic SDK's own
clients (`AnthropicBedrock`, `AnthropicVertex`; extras `rxllm[bedrock]`, `rxllm[vertex]`).

Both speak Anthropic's Messages protocol (`MessagesCodec`), with the cloud's own
authentication (AWS SigV4 or a Bedrock API key; a Google access token or Application
Default Credentials), which the SDK's clients do. Vertex streams server-sent events like
Anthropic's API. Bedrock frames the same events in AWS's binary event stream
(`application/vnd.amazon.eventstream`): `BedrockCodec` decodes those frames with botocore's
`EventStreamBuffer` and the SDK's own message parser, and the rest of the call is the
Messages path unchanged.

rxllm makes each client twice from the same settings (one sync, one async per event
loop); a Bedrock or Vertex client of your own cannot be copied for the other kind of call,
so give both (`client=` and `async_client=`) or neither. A credential that cannot be found
when the call starts is an `AuthenticationError` that says where the SDK looked.

Why ~430 lines in one module: the two clouds of Anthropic's SDK share their call (missing
credentials mapped to `AuthenticationError`), the check of their extras and the rule that
their clients are never copied; each is a provider class and a factory beside the other.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.types import RawMessageStreamEvent

from rxllm import errors
from rxllm.llm import LLM
from rxllm.providers import _sdk_private
from rxllm.providers.anthropic import AnthropicProvider, without_sdk_spans
from rxllm.providers.anthropic_messages import MessagesCodec
from rxllm.providers.cancellation import sync_http_client
from rxllm.providers.http_call import HTTPCall
from rxllm.providers.sdk_provider import client_options
from rxllm.sse import ServerEvent

if TYPE_CHECKING:
    from rxllm.request import Request

__all__ = [
    "BedrockCodec",
    "BedrockProvider",
    "EventStreamDecoder",
    "VertexProvider",
    "bedrock_llm",
    "vertex_llm",
]


def _require(module: str, extra: str, label: str) -> None:
    """Import `module` or say which extra brings it."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{label} needs the {extra} extra: pip install 'rxllm[{extra}]' "
            f"(the anthropic SDK's anthropic[{extra}]); {module} is missing"
        ) from exc


# --- Bedrock ---------------------------------------------------------------------------------


class EventStreamDecoder:
    """Bedrock's response body, AWS event-stream messages, as the `(event, data)` pairs the
    Messages mapper reads: botocore decodes the binary frames (lengths and CRCs), the SDK's
    Bedrock decoder turns each `chunk` message into its Messages event and each exception
    message into an `error` event."""

    __slots__ = ("_buffer", "_sdk")

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()
        self._sdk = _sdk_private.bedrock_stream_decoder()

    def feed(self, piece: bytes) -> list[ServerEvent]:
        """The events completed by this piece of the body."""
        self._buffer.add_data(piece)
        events: list[ServerEvent] = []
        for message in self._buffer:
            event = _sdk_private.bedrock_message_event(self._sdk, message)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerEvent]:
        """End of body: a partial frame is no event (the mapper reports the missing end)."""
        return []


class BedrockCodec(MessagesCodec):
    """Messages over Bedrock's event stream (see the module docstring)."""

    sdk_stream = (_sdk_private.anthropic_sse_stream, RawMessageStreamEvent)
    """Run over an error event re-written as SSE, as Anthropic's stream reads it (the
    Bedrock client's own stream would expect event-stream frames)."""

    def decoder(self) -> EventStreamDecoder:
        """A fresh decoder of the response body (`HTTPCall` uses it instead of SSE)."""
        return EventStreamDecoder()


class _CloudCall(HTTPCall):
    """A cloud call: credentials the SDK could not find are an `AuthenticationError`."""

    def __init__(
        self,
        config: AnthropicProvider,
        request: Request,
        codec: MessagesCodec,
        hint: Callable[[BaseException], str | None],
    ) -> None:
        super().__init__(config, request, codec)
        self._hint = hint

    def map_error(self, error: BaseException, *, received: int) -> errors.LLMError:
        """As `HTTPCall.map_error`; a missing credential says where to put one."""
        hint = self._hint(error)
        if hint is None:
            return super().map_error(error, received=received)
        message = errors.scrub(f"{self.provider}: {error}: {hint}", *self.codec.secrets())
        mapped = errors.AuthenticationError(message, provider=self.provider)
        mapped.__cause__ = error
        return mapped


def _names(error: BaseException) -> str:
    return " ".join(f"{cls.__module__}.{cls.__name__}" for cls in type(error).__mro__)


class _CloudProvider(AnthropicProvider):
    """What Bedrock and Vertex share: clients made from the provider's own settings (a
    given client is never copied), and calls whose missing credentials say where to put
    them (`credentials_hint`)."""

    def copyable(self, client: Any) -> bool:
        """A cloud client is never copied (give both, or let rxllm make them)."""
        return False

    def credentials_hint(self, error: BaseException) -> str | None:
        """Where to put the credentials `error` says are missing; None for other errors."""
        return None

    def cloud_client(self, cls: Any, settings: dict[str, Any], *, asynchronous: bool) -> Any:
        """A client of one of the anthropic SDK's cloud classes, as rxllm makes every
        client: without the SDK's own spans, on the async transport chosen (`transport`),
        or the sync client whose request hook makes a cancel reach it."""
        http = (
            self.async_http_client(
                anthropic.DefaultAioHttpClient, anthropic.DefaultAsyncHttpxClient
            )
            if asynchronous
            else sync_http_client(anthropic.DefaultHttpxClient)
        )
        return cls(**settings, **without_sdk_spans(cls), http_client=http)

    def make_call(self, request: Request) -> HTTPCall:
        """One call; credentials that cannot be found fail it with a hint."""
        codec = self.codec(request)
        assert isinstance(codec, MessagesCodec)
        return _CloudCall(self, request, codec, self.credentials_hint)


class BedrockProvider(_CloudProvider):
    """A Claude model on Amazon Bedrock (`anthropic.AnthropicBedrock`)."""

    name = "bedrock"
    env_var = "AWS_BEARER_TOKEN_BEDROCK"

    def __init__(
        self,
        model: str,
        *,
        aws: dict[str, str | None],
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        async_client: Any = None,
        max_retries: int | None = None,
        transport: str | None = None,
    ) -> None:
        super().__init__(
            model,
            BedrockCodec,
            api_key=api_key,
            base_url=base_url,
            client=client,
            async_client=async_client,
            max_retries=max_retries,
            transport=transport,
            label=f'rxllm.model("bedrock:{model}")',
        )
        self._aws = aws  # aws_region, aws_access_key, aws_secret_key, ...

    def key(self) -> str | None:
        """A Bedrock API key given (else the SDK reads `AWS_BEARER_TOKEN_BEDROCK`, or signs
        with AWS credentials from botocore's usual chain, when the call is sent)."""
        return self.api_key

    def extra_secrets(self) -> tuple[str | None, ...]:
        """AWS secrets given or in the environment, and a Bedrock API key."""
        return (
            self._aws.get("aws_secret_key"),
            self._aws.get("aws_session_token"),
            os.environ.get("AWS_SECRET_ACCESS_KEY"),
            os.environ.get("AWS_SESSION_TOKEN"),
            os.environ.get("AWS_BEARER_TOKEN_BEDROCK"),
        )

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new `AnthropicBedrock` / `AsyncAnthropicBedrock` from this provider's settings."""
        settings: dict[str, Any] = {k: v for k, v in self._aws.items() if v is not None}
        if options.get("api_key"):
            settings["api_key"] = options["api_key"]
        if options.get("base_url"):
            settings["base_url"] = options["base_url"]
        if "max_retries" in options:
            settings["max_retries"] = options["max_retries"]
        cls = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
        return self.cloud_client(cls, settings, asynchronous=asynchronous)

    def credentials_hint(self, error: BaseException) -> str | None:
        """Where AWS credentials go, when the SDK or botocore could not find them."""
        return _aws_hint(error)


def _aws_hint(error: BaseException) -> str | None:
    names = _names(error)
    text = str(error)
    if ("botocore" in names and ("Credential" in names or "ProfileNotFound" in names)) or (
        isinstance(error, RuntimeError) and "credentials" in text.lower()  # the SDK's own
    ):
        return (
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), a Bedrock API "
            "key in AWS_BEARER_TOKEN_BEDROCK, or pass aws_access_key=/aws_secret_key=, "
            "aws_profile= or api_key= to rxllm.model('bedrock:...')"
        )
    return None


def bedrock_llm(
    model: str,
    *,
    aws_region: str | None = None,
    aws_access_key: str | None = None,
    aws_secret_key: str | None = None,
    aws_session_token: str | None = None,
    aws_profile: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    client: anthropic.AnthropicBedrock | None = None,
    async_client: anthropic.AsyncAnthropicBedrock | None = None,
    **defaults: Any,
) -> LLM:
    """An `LLM` on Claude through Amazon Bedrock (`rxllm.model("bedrock:...")` calls this).

    `model` is a Bedrock model id or inference profile (e.g.
    `"us.anthropic.claude-sonnet-4-5-20250929-v1:0"`). Credentials are the SDK's: AWS keys
    (given, or botocore's chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`,
    roles) or a Bedrock API key (`api_key=` or `AWS_BEARER_TOKEN_BEDROCK`). The region is
    `aws_region`, else `AWS_REGION` / `AWS_DEFAULT_REGION` / the profile's; `base_url`
    overrides the regional endpoint. Needs `pip install 'rxllm[bedrock]'`.

    >>> import rxllm
    >>> llm = rxllm.model("bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ...                   aws_region="us-east-1")
    >>> llm.provider, llm.model
    ('bedrock', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0')
    """
    label = f'rxllm.model("bedrock:{model}")'
    _require("botocore", "bedrock", label)
    _require("boto3", "bedrock", label)
    given = client is not None or async_client is not None
    if not given and aws_region is None:
        aws_region = _aws_region(aws_profile, label)
    provider = BedrockProvider(
        model,
        aws={
            "aws_region": aws_region,
            "aws_access_key": aws_access_key,
            "aws_secret_key": aws_secret_key,
            "aws_session_token": aws_session_token,
            "aws_profile": aws_profile,
        },
        api_key=api_key,
        base_url=base_url,
        client=client,
        async_client=async_client,
        **client_options(defaults),
    )
    return LLM(provider, **defaults)


def _aws_region(profile: str | None, label: str) -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        import boto3
        import botocore.exceptions

        try:
            region = boto3.Session(profile_name=profile).region_name
        except botocore.exceptions.BotoCoreError as exc:  # e.g. ProfileNotFound
            raise ValueError(f"{label}: {exc}") from exc
    if not region:
        raise ValueError(
            f"{label} needs an AWS region: pass aws_region=... (e.g. 'us-east-1') or set AWS_REGION"
        )
    return region


# --- Vertex AI -------------------------------------------------------------------------------


class VertexProvider(_CloudProvider):
    """A Claude model on Google Vertex AI (`anthropic.AnthropicVertex`)."""

    name = "vertex"
    env_var = ""

    def __init__(
        self,
        model: str,
        *,
        region: str | None,
        project_id: str | None,
        access_token: str | None,
        credentials: Any,
        base_url: str | None = None,
        client: Any = None,
        async_client: Any = None,
        max_retries: int | None = None,
        transport: str | None = None,
    ) -> None:
        super().__init__(
            model,
            MessagesCodec,
            base_url=base_url,
            client=client,
            async_client=async_client,
            max_retries=max_retries,
            transport=transport,
            label=f'rxllm.model("vertex:{model}")',
        )
        self._region = region
        self._project_id = project_id
        self._access_token = access_token
        self._credentials = credentials

    def key(self) -> str | None:
        """No key: the SDK sends `access_token`, or a token of Google's Application Default
        Credentials, when the call is sent."""
        return None

    def extra_secrets(self) -> tuple[str | None, ...]:
        """The access token given, and the one the credentials hold."""
        return (self._access_token, getattr(self._credentials, "token", None))

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new `AnthropicVertex` / `AsyncAnthropicVertex` from this provider's settings."""
        settings: dict[str, Any] = {"region": self._region}
        for name, value in (
            ("project_id", self._project_id),
            ("access_token", self._access_token),
            ("credentials", self._credentials),
            ("base_url", options.get("base_url")),
        ):
            if value is not None:
                settings[name] = value
        if "max_retries" in options:
            settings["max_retries"] = options["max_retries"]
        cls = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
        return self.cloud_client(cls, settings, asynchronous=asynchronous)

    def credentials_hint(self, error: BaseException) -> str | None:
        """Where Google credentials go, when the SDK or google-auth could not find them."""
        return _google_hint(error)


def _google_hint(error: BaseException) -> str | None:
    names = _names(error)
    text = str(error)
    if (
        "google.auth.exceptions" in names
        or "MissingDependencyError" in names
        or (isinstance(error, RuntimeError) and "api token" in text.lower())
    ):
        return (
            "pass access_token=... (e.g. from `gcloud auth print-access-token`) or "
            "credentials=... to rxllm.model('vertex:...'), or set up Application Default "
            "Credentials (`gcloud auth application-default login`, or "
            "GOOGLE_APPLICATION_CREDENTIALS) with pip install 'rxllm[vertex]'"
        )
    return None


def vertex_llm(
    model: str,
    *,
    region: str | None = None,
    project_id: str | None = None,
    access_token: str | None = None,
    credentials: Any = None,
    base_url: str | None = None,
    client: anthropic.AnthropicVertex | None = None,
    async_client: anthropic.AsyncAnthropicVertex | None = None,
    **defaults: Any,
) -> LLM:
    """An `LLM` on Claude through Google Vertex AI (`rxllm.model("vertex:...")` calls this).

    `model` is a Vertex model id (e.g. `"claude-sonnet-4-5@20250929"`). `region` (else
    `CLOUD_ML_REGION`) and `project_id` (else `ANTHROPIC_VERTEX_PROJECT_ID`, or the
    credentials' project) say where; `access_token` or Google `credentials` authenticate,
    else Application Default Credentials (which need `pip install 'rxllm[vertex]'`).

    >>> import rxllm
    >>> llm = rxllm.model("vertex:claude-sonnet-4-5@20250929", region="us-east5",
    ...                   project_id="my-project", access_token="ya29....")
    >>> llm.provider
    'vertex'
    """
    label = f'rxllm.model("vertex:{model}")'
    given = client is not None or async_client is not None
    if not given:
        region = region or os.environ.get("CLOUD_ML_REGION")
        if not region:
            raise ValueError(
                f"{label} needs a Google Cloud region: pass region=... (e.g. 'us-east5' or "
                "'global') or set CLOUD_ML_REGION"
            )
        if access_token is None and credentials is None:
            _require("google.auth", "vertex", label)
    provider = VertexProvider(
        model,
        region=region,
        project_id=project_id,
        access_token=access_token,
        credentials=credentials,
        base_url=base_url,
        client=client,
        async_client=async_client,
        **client_options(defaults),
    )
    return LLM(provider, **defaults)
