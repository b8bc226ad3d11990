"""An HTTP provider's call: the SDK sends the request, rxllm reads the streamed body.

The SDK makes the request — auth, headers, retries before the stream, HTTP status errors —
in its streaming-response mode (`with_streaming_response.create(stream=True)`), which hands
over the raw `httpx2` response. rxllm decodes its server-sent events (`rxllm.sse`), parses
their JSON with `jiter` and maps them with the call's codec (`HTTPCodec.events()`): the
SDK's per-event pydantic models, most of the bare SDK's cost, are built only if somebody
reads `Chunk.raw`. The socket is registered for cancellation (`cancellation`), and a body
that is no event stream, or ends before the provider's terminator, is an error.

Why ~440 lines in one module: the sync and the asyncio read loops of one HTTP call share
their checks (a body that is no event stream, draining, the SDK's own exceptions) and are
tested as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

import httpx2
import jiter

from rxllm import errors
from rxllm.bridge import CallControl, Emit
from rxllm.codec import EventMapper, StreamCodec
from rxllm.providers.cancellation import Cancelled, RequestPhase, socket_closer
from rxllm.providers.http_errors import (
    map_sdk_error,
    scrub_exception,
    sdk_stream_failure,
    shortened,
)
from rxllm.sse import SSEDecoder

if TYPE_CHECKING:
    from rxllm.providers.sdk_provider import SDKProvider
    from rxllm.request import Request

__all__ = [
    "BodyDecoder",
    "HTTPCall",
    "HTTPCodec",
    "HTTPCodecClass",
    "SDKCodec",
    "StreamResponse",
    "parse_json",
]


class BodyDecoder(Protocol):
    """Reads a streamed body's framing: `rxllm.sse.SSEDecoder` for server-sent events, or a
    codec's own (Bedrock's AWS event stream)."""

    def feed(self, piece: bytes) -> Iterable[tuple[str | None, bytes]]:
        """The `(event name, data)` of every event `piece` completes."""
        ...

    def flush(self) -> Iterable[tuple[str | None, bytes]]:
        """The events still pending at the end of the body."""
        ...


class HTTPCodec(StreamCodec, Protocol):
    """A wire protocol spoken through an official SDK: the codec of one call, plus how
    that SDK sends it."""

    def decoder(self) -> BodyDecoder:
        """A fresh decoder of the body's framing (`SSEDecoder()` for server-sent events)."""
        ...

    def arguments(self, request: Request) -> dict[str, Any]:
        """The SDK keyword arguments for `request` (without `stream`)."""
        ...

    def open_stream(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """The SDK's streaming-response context manager for one request on `client`."""
        ...

    @property
    def sdk_stream(self) -> tuple[Any, Any]:
        """The SDK's own stream class and the event type it casts to (`openai.Stream`,
        `ChatCompletionChunk`): run over the same bytes, it says what the SDK raises for a
        broken body (`http_errors.sdk_stream_failure`)."""
        ...

    def error_cause(
        self, error: errors.StreamError, client: Any, http: httpx2.Response
    ) -> BaseException | None:
        """The SDK exception to chain as the cause of an error event: what the installed
        SDK's own stream raises for the same bytes (`error.event`), or, for an event the
        SDK yields as data, the exception it would build for it."""
        ...


class SDKCodec:
    """What every HTTP codec shares: the model it sends, the provider's name it puts on
    chunks and errors, the credentials it may send, and a body of server-sent events
    (Bedrock's codec overrides `decoder`). A codec module subclasses it (see
    `openai_chat.ChatCodec`)."""

    def __init__(
        self,
        request: Request,
        *,
        model: str,
        name: str,
        secrets: Callable[[], tuple[str, ...]] = tuple,
    ) -> None:
        self._model = model
        self._name = name  # the provider's name on every chunk and error: "openai", "groq"
        self._secrets = secrets

    def secrets(self) -> tuple[str, ...]:
        """The credentials this call may send."""
        return self._secrets()

    sdk_stream: tuple[Any, Any]
    """The SDK's own stream class and event type (`HTTPCodec.sdk_stream`): a subclass's."""

    def decoder(self) -> BodyDecoder:
        """A fresh decoder of the body: server-sent events."""
        return SSEDecoder()

    def error_cause(
        self, error: errors.StreamError, client: Any, http: httpx2.Response
    ) -> BaseException | None:
        """What the installed SDK's own stream raises for this error event (its
        `APIStatusError` / `APIError`); a codec whose SDK yields some error events as data
        overrides it (`ResponsesCodec`)."""
        if error.event is None:
            return None
        return sdk_stream_failure(*self.sdk_stream, client, http, error.event)


class HTTPCodecClass(Protocol):
    """An `HTTPCodec` class: checks a request, and makes the codec of one call of it."""

    def __call__(
        self,
        request: Request,
        *,
        model: str,
        name: str,
        secrets: Callable[[], tuple[str, ...]],
    ) -> HTTPCodec:
        """The codec of one call of `request` to `model`, for the provider `name` (on its
        chunks and errors), whose credentials `secrets()` returns."""
        ...

    def check(self, request: Request) -> None:
        """Raise `ValueError` for what the protocol cannot take (before any request)."""
        ...


class StreamResponse(Protocol):
    """What the SDKs' `with_streaming_response` context managers give: a raw HTTP response."""

    @property
    def http_response(self) -> httpx2.Response: ...


class HTTPCall:
    """A `Call` over an SDK's streaming-response mode."""

    def __init__(self, config: SDKProvider, request: Request, codec: HTTPCodec) -> None:
        self.provider = config.name
        self.stall_timeout = request.stall_timeout
        self.codec = codec
        self._config = config
        self._retries = request.max_retries
        self._kwargs = codec.arguments(request)
        self._client: Any = None  # the SDK client of this call, once it is sent
        self._reading = False  # the response's headers came: a broken body is mid-stream

    @property
    def server_url(self) -> str | None:
        """The base URL of this call (its span's `server.address`): its client's once it is
        sent, else the provider's when known."""
        client = self._client
        if client is not None:
            return str(client.base_url)
        return self._config.endpoint()

    def open_sync(self) -> AbstractContextManager[StreamResponse]:
        """Send the request with the sync client; the context closes the response."""
        client = self._client = self._config.sync_client()
        if self._retries is not None:
            client = client.with_options(max_retries=self._retries)
        return cast(
            AbstractContextManager[StreamResponse], self.codec.open_stream(client, self._kwargs)
        )

    def open_async(self) -> AbstractAsyncContextManager[StreamResponse]:
        """Send the request with the async client on the running loop."""
        client = self._client = self._config.async_client()
        if self._retries is not None:
            client = client.with_options(max_retries=self._retries)
        return cast(
            AbstractAsyncContextManager[StreamResponse],
            self.codec.open_stream(client, self._kwargs),
        )

    # --- the shared part ---------------------------------------------------------------------

    def pump_sync(self, control: CallControl, emit: Emit) -> None:
        """Stream the call with the sync client, emitting chunks until done or stopped."""
        try:
            self._pump_sync(control, emit)
        except errors.LLMError as exc:  # an error event: the provider may echo a credential
            scrub_exception(exc, self.codec.secrets())
            raise

    async def pump_async(self, control: CallControl, emit: Emit) -> None:
        """Stream the call with the async client on the running loop."""
        try:
            await self._pump_async(control, emit)
        except errors.LLMError as exc:
            scrub_exception(exc, self.codec.secrets())
            raise

    def _pump_sync(self, control: CallControl, emit: Emit) -> None:
        if control.cancelled:
            return
        try:
            with RequestPhase(control) as phase, self.open_sync() as api_response:
                phase.end()
                try:
                    self._read_sync(api_response, control, emit)
                except errors.StreamError as exc:
                    self._chain(exc, api_response.http_response)
                    raise
                except httpx2.TransportError as exc:
                    self._raise_as_sdk(exc, api_response.http_response)
        except Cancelled:
            return  # cancelled before the SDK (re)sent the request: nothing was sent

    def _read_sync(self, api_response: StreamResponse, control: CallControl, emit: Emit) -> None:
        self._reading = True
        http = api_response.http_response
        closer = socket_closer(http)
        unregister = control.on_cancel(closer)
        try:
            mapper = self.codec.events()
            decoder = self.codec.decoder()
            parse = self._parse
            body = _sync_body(http)
            head = b"" if _labelled_a_document(http) else None
            for piece in body:
                if head is not None:
                    head = self._sniff(http, head + piece)
                if not _deliver(decoder.feed(piece), mapper, parse, emit) or control.cancelled:
                    return
                if mapper.done:
                    _drain_sync(body, closer)
                    break
            else:
                if not _deliver(decoder.flush(), mapper, parse, emit):
                    return
            if head:
                raise self._not_streamed(http, head)
            mapper.end()
        finally:
            unregister()

    async def _pump_async(self, control: CallControl, emit: Emit) -> None:
        async with self.open_async() as api_response:
            try:
                await self._read_async(api_response, emit)
            except errors.StreamError as exc:
                self._chain(exc, api_response.http_response)
                raise
            except httpx2.TransportError as exc:
                self._raise_as_sdk(exc, api_response.http_response)

    def _raise_as_sdk(self, error: httpx2.TransportError, http: httpx2.Response) -> NoReturn:
        """Raise what the installed SDK's own stream raises when reading its body fails
        this way (its own wrapper, or the transport's exception itself)."""
        stream_class, cast_to = self.codec.sdk_stream
        raised = sdk_stream_failure(stream_class, cast_to, self._client, http, error)
        if raised is None or raised is error:
            raise error
        raise raised from error

    def _chain(self, error: errors.StreamError, http: httpx2.Response) -> None:
        """Chain, as the error event's cause, what the installed SDK's own stream raises for
        the same event; its message (the request id, the error's type) is the better one."""
        if error.__cause__ is not None or (error.event is None and error.body is None):
            return
        cause = self.codec.error_cause(error, self._client, http)
        if cause is None:
            return
        secrets = self.codec.secrets()
        scrub_exception(cause, secrets)
        error.__cause__ = cause
        message = getattr(cause, "message", None)
        if isinstance(message, str) and message and not message.startswith(("{", "[")):
            detail = errors.scrub(message, *secrets)
            if detail not in str(error.args[0]):  # e.g. the request id the SDK names
                error.args = (f"{error.args[0]} ({detail})", *error.args[1:])

    async def _read_async(self, api_response: StreamResponse, emit: Emit) -> None:
        self._reading = True
        http = api_response.http_response
        mapper = self.codec.events()
        decoder = self.codec.decoder()
        parse = self._parse
        body = _async_body(http)
        head = b"" if _labelled_a_document(http) else None
        async for piece in body:
            if head is not None:
                head = self._sniff(http, head + piece)
            if not _deliver(decoder.feed(piece), mapper, parse, emit):
                return
            if mapper.done:
                await _drain_async(body)
                break
        else:
            if not _deliver(decoder.flush(), mapper, parse, emit):
                return
        if head:
            raise self._not_streamed(http, head)
        mapper.end()

    def _sniff(self, http: httpx2.Response, head: bytes) -> bytes | None:
        """A 200 labelled HTML or JSON: None once its first bytes read as server-sent events
        (an event stream mislabelled as JSON streams as usual), `head` while too few arrived
        to tell; a wrong `base_url` (a web page) or a server that ignored `stream: true`
        (the whole answer) raises."""
        verdict = _starts_like_sse(head)
        if verdict is None:
            return head
        if verdict:
            return None
        raise self._not_streamed(http, head)

    def _not_streamed(self, http: httpx2.Response, head: bytes) -> errors.LLMError:
        kind = http.headers.get("content-type", "")
        text = errors.scrub(head.decode("utf-8", "replace"), *self.codec.secrets())
        hint = (
            "the server ignored stream=true and answered in one piece; rxllm needs a server "
            "that streams"
            if "json" in kind.lower()
            else f"check base_url ({http.request.url.copy_with(query=None)} is not the API)"
        )
        return errors.LLMError(
            f"{self.provider}: the server answered 200 with {kind!r}, not an event stream: "
            f"{hint}. The body starts: {shortened(text)!r}",
            provider=self.provider,
            retryable=False,
        )

    def _parse(self, data: bytes) -> Any:
        if data.startswith(b"[DONE]"):  # as the SDK: "[DONE] " ends the stream too
            return b"[DONE]"
        try:
            return parse_json(data)
        except ValueError as exc:
            raise errors.StreamError(
                f"{self.provider}: the stream sent an event that is not valid JSON ({exc}): "
                f"{data[:80]!r}",
                provider=self.provider,
                retryable=True,
            ) from exc

    def map_error(self, error: BaseException, *, received: int) -> errors.LLMError:
        """Translate an SDK or transport exception (see `map_sdk_error`)."""
        return map_sdk_error(
            error,
            self.provider,
            received=received,
            mid_stream=self._reading,
            secrets=self.codec.secrets(),
        )


def parse_json(data: bytes) -> Any:
    """An event's JSON, parsed by jiter; what jiter refuses and the SDKs' `json.loads`
    takes (a lone surrogate escape, sent by servers that split an emoji's UTF-16 pair
    across events) is parsed as the SDKs parse it."""
    try:
        return jiter.from_json(data, cache_mode="keys")
    except ValueError:
        return json.loads(data)  # raises ValueError (JSONDecodeError) when it is not JSON


def _deliver(
    events: Iterable[tuple[str | None, bytes]],
    mapper: EventMapper,
    parse: Callable[[bytes], Any],
    emit: Emit,
) -> bool:
    """Map the SSE events of one piece of the body to chunks and emit them (one call per
    piece, not per event); False once `emit` says stop."""
    for name, data in events:
        if mapper.done:
            break  # past the terminator ([DONE], message_stop): ignored, however it arrived
        try:
            chunk = mapper.map(name, parse(data), data)
        except errors.StreamError as error:  # an error event: kept as sent, for its cause
            error.event = _sse_event(name, data)
            raise
        except errors.LLMError:
            raise
        except Exception as exc:  # an event of a shape the mapper cannot read
            raise _unreadable(name, data, exc) from exc
        if chunk is not None and not emit(chunk):
            return False
    return True


def _unreadable(name: str | None, data: bytes, error: Exception) -> errors.StreamError:
    """The error for an event whose JSON is not of the shape its protocol says (a field of
    another type, a missing object): a malformed event, as one that is not JSON."""
    return errors.StreamError(
        f"the stream sent an event of a shape rxllm cannot read ({type(error).__name__}: "
        f"{shortened(str(error))}): {name + ' ' if name else ''}{data[:80]!r}",
        retryable=True,
    )


def _sse_event(name: str | None, data: bytes) -> bytes:
    """One server-sent event, written out again."""
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"


_DRAIN_SECONDS = 0.1


def _drain_sync(body: Iterator[bytes], closer: Any) -> None:
    """Read the rest of a finished body (the end of the chunked encoding, usually already
    received) so the connection goes back to the pool instead of paying a new TCP and TLS
    handshake on the next call. A server that does not end the body within 0.1 s gets its
    connection shut down, as if we had not drained."""
    timer = threading.Timer(_DRAIN_SECONDS, closer)
    timer.daemon = True
    timer.start()
    try:
        for _ in body:
            pass
    except httpx2.HTTPError:
        pass  # the answer is complete; a broken tail only costs the connection
    finally:
        timer.cancel()


async def _drain_async(body: AsyncIterator[bytes]) -> None:
    """`_drain_sync` for the async path (as the SDK's own AsyncStream does after [DONE])."""
    with contextlib.suppress(httpx2.HTTPError, TimeoutError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in body:
                pass


_SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:")


def _starts_like_sse(head: bytes) -> bool | None:
    """Whether a body's first bytes are server-sent events; None: too few to tell yet."""
    text = head.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not text:
        return None
    if text.startswith(b":") or text.startswith(_SSE_FIELDS):
        return True
    if any(field.startswith(text) for field in _SSE_FIELDS):
        return None  # e.g. "da": more bytes decide
    return False


def _labelled_a_document(http: httpx2.Response) -> bool:
    """A 200 whose content type says it is a whole document, not server-sent events."""
    kind = http.headers.get("content-type", "").lower()
    return kind.startswith(("application/json", "text/html"))


def _identity(http: httpx2.Response) -> bool:
    return http.headers.get("content-encoding", "identity").strip().lower() == "identity"


def _sync_body(http: httpx2.Response) -> Iterator[bytes]:
    # Undecoded bytes skip httpx's decoder layers; SSE is rarely compressed, and when it is,
    # the decoding iterator is used.
    return http.iter_raw() if _identity(http) else http.iter_bytes()


def _async_body(http: httpx2.Response) -> AsyncIterator[bytes]:
    return http.aiter_raw() if _identity(http) else http.aiter_bytes()
