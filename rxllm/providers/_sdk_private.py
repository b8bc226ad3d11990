"""Quarantine: every name rxllm takes from the SDKs' private modules (`_`-prefixed) or from
their hand-written `lib/` helpers, and every private attribute of an SDK client it reads.

The SDKs release every week or two. Whatever they may move without notice is reached
through this module only, so an SDK upgrade that breaks one of these touches this file
alone, and the comment on each says what depends on it. The imports are deferred (one SDK
must not import the other: anthropic alone takes over a second to import).
`tests/providers/test_sdk_private.py` calls each of these against the installed SDKs, so a
release that moves one fails there, by name, the day it is installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "SDK_HTTP_CLIENTS",
    "anthropic_accumulate_event",
    "anthropic_construct_event",
    "anthropic_output_schema",
    "anthropic_sse_stream",
    "api_key_provider",
    "bedrock_message_event",
    "bedrock_stream_decoder",
    "custom_headers",
    "custom_query",
    "http_client",
    "openai_chat_stream_state",
    "openai_construct",
    "openai_response_format",
    "openai_responses_snapshot",
    "openai_responses_stream_state",
]


def openai_chat_stream_state(**options: Any) -> Any:
    """`openai.lib.streaming.chat.ChatCompletionStreamState`: the accumulator of the SDK's
    `chat.completions.stream()` helper. `Response.raw` of Chat Completions replays the
    chunks through it, so `raw` is exactly what that helper ends with (`message.parsed`,
    tool calls' `parsed_arguments`). If it moves, reading `Response.raw` fails."""
    from openai.lib.streaming.chat import ChatCompletionStreamState

    return ChatCompletionStreamState(**options)


def openai_response_format(model: type) -> Any:
    """`openai.lib._parsing._completions.type_to_response_format_param`: a pydantic class as
    the `response_format` the SDK's `.parse()` sends (its strict JSON schema). If it moves,
    `stream(response_format=Model)` fails on OpenAI."""
    from openai.lib._parsing._completions import type_to_response_format_param

    return type_to_response_format_param(model)


def openai_construct(type_: Any, data: Mapping[str, Any]) -> Any:
    """`openai._models.construct_type`: an event's typed object built without validation, as
    the SDK's own stream builds it (`Chunk.raw` of the Responses API). If it moves, reading
    a Responses chunk's `.raw` fails."""
    from openai._models import construct_type

    return construct_type(type_=type_, value=data)


def openai_responses_stream_state(**options: Any) -> Any:
    """`openai.lib.streaming.responses.ResponseStreamState`: the accumulator of the SDK's
    `responses.stream()` helper; `Response.raw` of the Responses API replays the events
    through it. If it moves, reading `Response.raw` fails."""
    from openai.lib.streaming.responses import ResponseStreamState

    return ResponseStreamState(**options)


def openai_responses_snapshot(state: Any) -> Any:
    """The response so far inside a `ResponseStreamState` (its private
    `__current_snapshot`): `Response.raw` of a Responses stream cut short. If it is
    renamed, that `raw` is None (the test of it fails)."""
    return getattr(state, "_ResponseStreamState__current_snapshot", None)


def anthropic_accumulate_event(**arguments: Any) -> Any:
    """`anthropic.lib.streaming._messages.accumulate_event`: one step of the accumulator of
    the SDK's `messages.stream()` helper. `Response.raw` of Messages replays the events
    through it. If it moves, reading `Response.raw` fails."""
    from anthropic.lib.streaming._messages import accumulate_event

    return accumulate_event(**arguments)


def anthropic_construct_event(data: Mapping[str, Any]) -> Any:
    """`anthropic._models.construct_type_unchecked`: an event's typed object built without
    validation, as the SDK's own stream builds it (`Chunk.raw`). If it moves, reading an
    Anthropic chunk's `.raw` fails."""
    from anthropic._models import construct_type_unchecked
    from anthropic.types import RawMessageStreamEvent

    return construct_type_unchecked(value=data, type_=RawMessageStreamEvent)  # type: ignore[arg-type]


def anthropic_output_schema(model: type) -> Any:
    """`anthropic.lib._parse._transform.transform_schema`: a pydantic class's JSON schema in
    the form the SDK's `messages.parse()` sends. If it moves, `stream(response_format=Model)`
    fails on Anthropic."""
    from anthropic.lib._parse._transform import transform_schema

    return transform_schema(model)


def bedrock_stream_decoder() -> Any:
    """`anthropic.lib.bedrock._stream_decoder.AWSEventStreamDecoder`: the SDK's reader of
    Bedrock's AWS event stream. `bedrock:` calls decode their body with it. If it moves,
    every Bedrock call fails."""
    from anthropic.lib.bedrock._stream_decoder import AWSEventStreamDecoder

    return AWSEventStreamDecoder()


def bedrock_message_event(decoder: Any, message: Any) -> tuple[str | None, bytes] | None:
    """One botocore `EventStreamMessage` as the SDK's Bedrock decoder reads it (its private
    `_parse_message_from_event`): the Messages event of a `chunk` message, an `error` event
    for an exception message, None for anything else; as `(event name, JSON bytes)`. If it
    moves, every Bedrock call fails."""
    event = decoder._parse_message_from_event(message)
    if event is None:
        return None
    return event.event, event.data.encode()


def anthropic_sse_stream(*, cast_to: Any, response: Any, client: Any) -> Any:
    """`anthropic.Stream` reading server-sent events (`anthropic._streaming.SSEDecoder`) even
    for a Bedrock client, whose own stream would expect AWS event-stream frames: rxllm runs
    it over a Bedrock error event written out as SSE, to chain what the SDK raises for it.
    Its private `_decoder` is replaced before the stream is read. If either moves, a Bedrock
    error event loses its SDK cause (the `StreamError` itself is unchanged)."""
    import anthropic
    from anthropic._streaming import SSEDecoder

    stream = anthropic.Stream(cast_to=cast_to, response=response, client=client)
    stream._decoder = SSEDecoder()
    return stream


# --- private attributes of the SDK clients ----------------------------------------------
# Read to copy a client given for one kind of call (sync or async) into the other kind,
# with the same headers, query and credentials. If one is renamed, the copy loses it
# (the getattr defaults below keep it from failing), and the tests of copied clients
# in tests/providers/test_loopback.py fail.


def custom_headers(client: Any) -> Mapping[str, str]:
    """The headers a client was made with (`default_headers=`): `client._custom_headers`."""
    return getattr(client, "_custom_headers", None) or {}


def custom_query(client: Any) -> Mapping[str, object]:
    """The query a client was made with (`default_query=`): `client._custom_query`."""
    return getattr(client, "_custom_query", None) or {}


def api_key_provider(client: Any) -> Any:
    """An OpenAI client's key provider (a callable given as `api_key=`), or None:
    `client._api_key_provider`."""
    return getattr(client, "_api_key_provider", None)


def http_client(client: Any) -> Any:
    """The httpx2 client an SDK client sends with: `client._client`."""
    return getattr(client, "_client", None)


SDK_HTTP_CLIENTS = frozenset({"SyncHttpxClientWrapper", "AsyncHttpxClientWrapper"})
"""The class names of the http clients the SDKs make for themselves (a client given no
`http_client` of its own): only such a client can be copied faithfully."""
