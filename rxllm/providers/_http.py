"""What the OpenAI and Anthropic providers share: reading an SDK's streamed HTTP response.

The SDK makes the request (auth, headers, retries before the stream, HTTP status errors);
its streaming-response mode then hands us the raw `httpx2` response, which we decode with
`rxllm.sse` and `jiter` — the SDK's chunk models are built only if somebody reads `.raw`.
Each provider supplies an `EventMapper` (pure: SSE event -> `Chunk`), so the mapping is
testable without any network. Here also: the connection's socket is registered for
cancellation, and every SDK/transport exception is translated into rxllm's tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

import httpx2
import jiter

from rxllm import errors
from rxllm.calls import CallControl, Emit, shutdown_socket
from rxllm.models import Chunk
from rxllm.sse import SSEDecoder

if TYPE_CHECKING:
    from rxllm.llm import Request

__all__ = [
    "EventMapper",
    "HTTPCall",
    "SDKProvider",
    "map_sdk_error",
    "parse_json",
    "retry_after_seconds",
]


class EventMapper(Protocol):
    """Turns one provider's SSE events into `Chunk`s; one instance per call (it may keep state)."""

    def map(self, event: str | None, data: Any, payload: bytes | None = None) -> Chunk | None:
        """The chunk for this event, or None for events that carry nothing (pings).

        `payload` is the event's JSON text, kept to build the SDK's event object on demand.
        """
        ...

    def end(self) -> None:
        """The body ended: raise `StreamInterrupted` if the provider never said it was done."""
        ...

    @property
    def done(self) -> bool:
        """True after the provider's terminating event (`[DONE]`, `message_stop`)."""
        ...


class StreamResponse(Protocol):
    """What the SDKs' `with_streaming_response` context managers give: a raw HTTP response."""

    @property
    def http_response(self) -> httpx2.Response: ...


class SDKProvider:
    """Configuration and SDK clients of one model, shared by the OpenAI and Anthropic providers.

    Subclasses name their SDK (`sync_sdk`, `async_sdk`), the environment variable of the
    key, how to open a streamed request on a client, and their event mapper.
    """

    name = "http"
    env_var = ""
    key_hint = ""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        async_client: Any = None,
        max_retries: int | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"rxllm.{self.name}() needs a model name as its first argument")
        if (client is not None or async_client is not None) and (api_key or base_url):
            raise ValueError(
                f"rxllm.{self.name}() got a client and api_key/base_url: those configure the "
                "clients rxllm makes, and a client you pass has its own; set them on the client"
            )
        self.model = model
        self.api_key = api_key
        self.base_url = base_url
        self._client = client  # the sync client in use: given, or made on first use
        self._async_client = async_client
        self._given = (client, async_client)  # what the user passed, never what rxllm made
        self._max_retries = max_retries
        self._lock = threading.Lock()
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # --- to be provided by each provider ---------------------------------------------------

    def new_client(self, options: dict[str, Any], *, asynchronous: bool) -> Any:
        """A new SDK client (`asynchronous` selects the async one)."""
        raise NotImplementedError

    def open_stream(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """The SDK's streaming-response context manager for one request on `client`."""
        raise NotImplementedError

    def arguments(self, request: Request) -> dict[str, Any]:
        """The SDK keyword arguments for `request` (without `stream`)."""
        raise NotImplementedError

    def mapper(self) -> EventMapper:
        """A fresh event mapper for one call."""
        raise NotImplementedError

    def raw_context(self, request: Request, kwargs: dict[str, Any]) -> Any:
        """What the raw builder must know about the request to build what the SDK's stream
        helper builds (e.g. a response format to parse); None when nothing."""
        return None

    def sdk_stream_error(self, error: errors.StreamError, http: httpx2.Response) -> BaseException:
        """The exception the SDK's own stream raises for this error event (chained as the
        `StreamError`'s cause, as for every other error)."""
        raise NotImplementedError

    def sdk_body_error(
        self, error: httpx2.TransportError, http: httpx2.Response
    ) -> BaseException | None:
        """What the SDK's own stream raises when reading the body fails with `error` (None:
        the transport's exception itself, as the Anthropic SDK lets it through)."""
        return None

    # --- shared ------------------------------------------------------------------------------

    def key(self) -> str | None:
        """The API key for the clients rxllm makes (None: the credentials are a given
        client's, or a token the SDK reads itself); `AuthenticationError` naming the
        variable when there is no credential at all."""
        key = self.api_key or os.environ.get(self.env_var)
        if key:
            return key
        given = [client for client in self._given if client is not None]
        if any(self.has_credentials(client) for client in given):
            return None  # a given client brings its own: a key, a token, a key provider
        if any(self.extra_secrets()):  # e.g. ANTHROPIC_AUTH_TOKEN, read by the SDK
            return None
        raise errors.AuthenticationError(
            f"no {self.name} API key: set the {self.env_var} environment variable or pass "
            f"rxllm.{self.name}(..., api_key=...){self.key_hint}",
            provider=self.name,
        )

    def secrets(self) -> tuple[str, ...]:
        """Every credential this provider may send (given, from the environment, or held by
        a client): none of them may appear in an error message."""
        found = [self.api_key, os.environ.get(self.env_var), *self.extra_secrets()]
        for client in (self._client, self._async_client, *self._async_clients.values()):
            found.extend(getattr(client, name, None) for name in ("api_key", "auth_token"))
        return tuple({s for s in found if isinstance(s, str) and s})

    def extra_secrets(self) -> tuple[str | None, ...]:
        """Other credentials the SDK reads on its own (e.g. an auth-token variable)."""
        return ()

    def has_credentials(self, client: Any) -> bool:
        """Whether a given client can authenticate (clients of other auth schemes, such as
        Bedrock's or Vertex's, are trusted to)."""
        if not self.copyable(client):
            return True
        headers = getattr(client, "_custom_headers", None) or {}
        return bool(
            getattr(client, "api_key", None)
            or getattr(client, "auth_token", None)
            or getattr(client, "_api_key_provider", None)
            or {str(name).lower() for name in headers} & {"authorization", "x-api-key", "api-key"}
        )

    def copyable(self, client: Any) -> bool:
        """Whether rxllm can make a client of the other kind (sync/async) like `client`:
        the SDK's own two classes, not Azure, Bedrock or Vertex ones."""
        return False

    def twin_options(self, client: Any, *, asynchronous: bool) -> dict[str, Any]:
        """What a client of the other kind (`asynchronous` or not) needs to talk as `client`
        does (beyond its key, base URL, timeout, retries, headers and query)."""
        return {}

    def _options(self, *, asynchronous: bool) -> dict[str, Any]:
        # A client given for one kind of call is the model for the other kind: same
        # endpoint, credentials, headers and query, never the SDK's
        # default host with this client's key.
        given_sync, given_async = self._given
        twin = given_sync if asynchronous else given_async
        options: dict[str, Any]
        if twin is not None:
            given, wanted = (
                ("client=", "async_client=") if asynchronous else ("async_client=", "client=")
            )
            http = getattr(twin, "_client", None)
            if not self.copyable(twin) or type(http).__name__ not in _SDK_HTTP_CLIENTS:
                raise ValueError(
                    f"rxllm.{self.name}() was given only {given}, a client ({type(twin).__name__}"
                    f"{', with its own http_client' if self.copyable(twin) else ''}) that rxllm "
                    f"cannot copy for the other kind of call: pass {wanted} too"
                )
            options = {  # the given client's settings, exactly
                "api_key": twin.api_key,
                "base_url": str(twin.base_url),
                "timeout": twin.timeout,
                "max_retries": twin.max_retries,
                "default_headers": getattr(twin, "_custom_headers", None) or None,
                "default_query": getattr(twin, "_custom_query", None) or None,
                **self.twin_options(twin, asynchronous=asynchronous),
            }
        else:
            options = {"api_key": self.key(), "base_url": self.base_url}
        if self._max_retries is not None:
            options["max_retries"] = self._max_retries
        return options

    def sync_client(self) -> Any:
        """The sync SDK client (made once, on first use)."""
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                self._client = self.new_client(
                    self._options(asynchronous=False), asynchronous=False
                )
            return self._client

    def async_client(self) -> Any:
        """The async SDK client for the running loop (one per loop: connections are per loop)."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            with self._lock:  # loops in several threads share this table
                client = self._async_clients.get(loop)
                if client is None:
                    self._forget_closed_loops()
                    options = self._options(asynchronous=True)
                    client = self.new_client(options, asynchronous=True)
                    self._async_clients[loop] = client
        return client

    def _forget_closed_loops(self) -> None:
        """Drop the clients of loops that are closed (each `asyncio.run` is a new loop): a
        client's pooled connections keep its loop alive, so the weak keys alone never let
        go. Their sockets can no longer be closed through their loop; the garbage collector
        closes them (the async clients rxllm makes have no finalizer that would try an
        `aclose()` on another loop)."""
        for old in [loop for loop in list(self._async_clients) if loop.is_closed()]:
            self._async_clients.pop(old, None)

    def check_params(self, request: Request, allowed: frozenset[str], api: str) -> None:
        """Reject parameters the SDK's `create` does not take, before any request."""
        unknown = sorted(set(request.params) - allowed)
        if unknown:
            raise ValueError(
                f"{api} take no parameter {', '.join(map(repr, unknown))}; "
                "send provider extensions with extra_body={...}"
            )

    def make_call(self, request: Request) -> HTTPCall:
        """One call of this model (at subscription: may raise `AuthenticationError`)."""
        self.key()
        return HTTPCall(self, request)


class _Cancelled(BaseException):
    """Raised by our sync clients' request hook when the call was cancelled before the SDK
    (re)sent its request, e.g. while it slept between retries. A BaseException, so the SDK,
    which retries any `Exception`, lets it through."""


_SDK_HTTP_CLIENTS = frozenset({"SyncHttpxClientWrapper", "AsyncHttpxClientWrapper"})
"""The http clients the SDKs make for themselves (a client without its own http_client)."""

_phase = threading.local()
"""The sync call whose request this thread is sending (`control`, `unregister`), if any."""


class _RequestPhase:
    """While the SDK sends a sync request (connecting, retrying, waiting for the headers):
    a cancellation stops further attempts and shuts a freshly opened connection down."""

    __slots__ = ("control", "unregister")

    def __init__(self, control: CallControl) -> None:
        self.control = control
        self.unregister: list[Any] = []

    def __enter__(self) -> _RequestPhase:
        _phase.current = self
        return self

    def __exit__(self, *_: object) -> None:
        self.end()

    def end(self) -> None:
        """The headers arrived (or the request failed): the body's own closer takes over;
        a pooled socket must never be shut down by this call afterwards."""
        if getattr(_phase, "current", None) is self:
            _phase.current = None
        for unregister in self.unregister:
            unregister()
        self.unregister.clear()


def _request_hook(request: httpx2.Request) -> None:
    """httpx2 `request` event hook of the sync clients rxllm makes (runs before each send)."""
    phase: _RequestPhase | None = getattr(_phase, "current", None)
    if phase is None:
        return
    if phase.control.cancelled:
        raise _Cancelled
    inner = request.extensions.get("trace")

    def trace(name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                phase.unregister.append(phase.control.on_cancel(lambda: shutdown_socket(sock)))
        if inner is not None:
            inner(name, info)

    request.extensions["trace"] = trace


def sync_http_client(factory: Any) -> Any:
    """The SDK's default sync httpx2 client, plus the hook that makes a sync call
    cancellable before its response headers arrive (see `_RequestPhase`)."""
    return factory(event_hooks={"request": [_request_hook]})


class HTTPCall:
    """A `Call` over an SDK's streaming-response mode."""

    def __init__(self, config: SDKProvider, request: Request) -> None:
        self.provider = config.name
        self.stall_timeout = request.stall_timeout
        self._config = config
        self._retries = request.max_retries
        self._kwargs = config.arguments(request)
        self.raw_context = config.raw_context(request, self._kwargs)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """The credentials no message may show (the bridge scrubs with them too)."""
        return self._config.secrets()

    def open_sync(self) -> AbstractContextManager[StreamResponse]:
        """Send the request with the sync client; the context closes the response."""
        client = self._config.sync_client()
        if self._retries is not None:
            client = client.with_options(max_retries=self._retries)
        return cast(
            AbstractContextManager[StreamResponse], self._config.open_stream(client, self._kwargs)
        )

    def open_async(self) -> AbstractAsyncContextManager[StreamResponse]:
        """Send the request with the async client on the running loop."""
        client = self._config.async_client()
        if self._retries is not None:
            client = client.with_options(max_retries=self._retries)
        return cast(
            AbstractAsyncContextManager[StreamResponse],
            self._config.open_stream(client, self._kwargs),
        )

    def mapper(self) -> EventMapper:
        """A fresh event mapper for this call."""
        return self._config.mapper()

    # --- the shared part ---------------------------------------------------------------------

    def pump_sync(self, control: CallControl, emit: Emit) -> None:
        """Stream the call with the sync client, emitting chunks until done or stopped."""
        try:
            self._pump_sync(control, emit)
        except errors.LLMError as exc:  # an error event: the provider may echo a credential
            _scrub_exception(exc, self._config.secrets())
            raise

    async def pump_async(self, control: CallControl, emit: Emit) -> None:
        """Stream the call with the async client on the running loop."""
        try:
            await self._pump_async(control, emit)
        except errors.LLMError as exc:
            _scrub_exception(exc, self._config.secrets())
            raise

    def _pump_sync(self, control: CallControl, emit: Emit) -> None:
        if control.cancelled:
            return
        try:
            with _RequestPhase(control) as phase, self.open_sync() as api_response:
                phase.end()
                try:
                    self._read_sync(api_response, control, emit)
                except errors.StreamError as exc:
                    self._chain(exc, api_response.http_response)
                    raise
                except httpx2.TransportError as exc:
                    self._raise_as_sdk(exc, api_response.http_response)
        except _Cancelled:
            return  # cancelled before the SDK (re)sent the request: nothing was sent

    def _read_sync(self, api_response: StreamResponse, control: CallControl, emit: Emit) -> None:
        http = api_response.http_response
        closer = _socket_closer(http)
        unregister = control.on_cancel(closer)
        try:
            mapper = self.mapper()
            decoder = SSEDecoder()
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
        """Raise what the SDK's own stream raises when reading its body fails this way."""
        wrapped = self._config.sdk_body_error(error, http)
        if wrapped is None:
            raise error
        raise wrapped from error

    def _chain(self, error: errors.StreamError, http: httpx2.Response) -> None:
        if error.__cause__ is None and error.body is not None:
            cause = self._config.sdk_stream_error(error, http)
            _scrub_exception(cause, self._config.secrets())
            error.__cause__ = cause

    async def _read_async(self, api_response: StreamResponse, emit: Emit) -> None:
        http = api_response.http_response
        mapper = self.mapper()
        decoder = SSEDecoder()
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
        text = errors.scrub(head.decode("utf-8", "replace"), *self._config.secrets())
        hint = (
            "the server ignored stream=true and answered in one piece; rxllm needs a server "
            "that streams"
            if "json" in kind.lower()
            else f"check base_url ({http.request.url.copy_with(query=None)} is not the API)"
        )
        return errors.LLMError(
            f"{self.provider}: the server answered 200 with {kind!r}, not an event stream: "
            f"{hint}. The body starts: {_shortened(text)!r}",
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
            error, self.provider, received=received, secrets=self._config.secrets()
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
        chunk = mapper.map(name, parse(data), data)
        if chunk is not None and not emit(chunk):
            return False
    return True


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


def _socket_closer(http: httpx2.Response) -> Any:
    """A callback that shuts down the response's socket, so a blocked read returns now."""
    stream = http.extensions.get("network_stream")
    sock = None
    if stream is not None:
        try:
            sock = stream.get_extra_info("socket")
        except Exception:
            sock = None
    return lambda: shutdown_socket(sock)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` / `retry-after` (seconds or an HTTP date).

    None when neither header is there or neither is a finite, non-negative wait (a header
    such as `retry-after: soon` is ignored, as the SDKs ignore it).
    """
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_STATUS_CLASSES: dict[int, type[errors.APIStatusError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    413: errors.BadRequestError,
    422: errors.BadRequestError,
    429: errors.RateLimitError,
}


def map_sdk_error(
    error: BaseException,
    provider: str,
    *,
    received: int,
    secrets: tuple[str | None, ...] = (),
) -> errors.LLMError:
    """Translate an exception from the SDKs or `httpx2` into rxllm's error tree.

    Both SDKs name their exceptions alike (`APIStatusError` with `status_code`, `response`,
    `message`; `APIConnectionError`; `APITimeoutError`), and while we read the body
    ourselves transport failures arrive as raw `httpx2` exceptions.
    """
    status = getattr(error, "status_code", None)
    message = (
        _status_message(error, secrets) if isinstance(status, int) and status >= 300 else ""
    ) or errors.scrub(str(getattr(error, "message", None) or error), *secrets)
    mapped: errors.LLMError
    if isinstance(status, int) and status >= 300:
        cls = _STATUS_CLASSES.get(status)
        if status == 429:
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None)
            mapped = errors.RateLimitError(
                f"{provider}: rate limited (HTTP 429): {message}",
                retry_after=retry_after_seconds(headers),
                provider=provider,
                status_code=status,
            )
        elif cls is not None:
            hint = _STATUS_HINTS.get(status, "")
            mapped = cls(
                f"{provider}: HTTP {status}: {message}{hint}", provider=provider, status_code=status
            )
        elif status >= 500:
            mapped = errors.ServerError(
                f"{provider}: server error (HTTP {status}): {message}",
                provider=provider,
                status_code=status,
            )
        else:
            mapped = errors.APIStatusError(
                f"{provider}: HTTP {status}: {message}",
                provider=provider,
                status_code=status,
                retryable=status in (408, 409),
            )
    elif type(error).__name__ == "APIStatusError":
        # Anthropic reports a mid-stream error event as APIStatusError with status 200.
        body = getattr(error, "body", None)
        inner = body.get("error") if isinstance(body, dict) else None  # pyright: ignore[reportUnknownMemberType]
        mapped = errors.stream_error_event(provider, inner or {"message": message})
    elif isinstance(error, httpx2.TimeoutException) or "Timeout" in type(error).__name__:
        mapped = errors.StreamTimeout(
            f"{provider}: timed out{' mid-stream' if received else ''}: {message}",
            provider=provider,
        )
    elif isinstance(error, httpx2.TransportError) or type(error).__name__ == "APIConnectionError":
        if received:
            mapped = errors.StreamInterrupted(
                f"{provider}: the connection broke mid-stream after {received} chunks: {message}",
                provider=provider,
            )
        else:
            mapped = errors.APIConnectionError(
                f"{provider}: could not connect or the connection broke: {message}",
                provider=provider,
            )
    else:
        mapped = errors.LLMError(
            f"{provider}: {type(error).__name__}: {message}", provider=provider
        )
    _scrub_exception(error, secrets)
    mapped.__cause__ = error
    return mapped


def _scrub_exception(error: BaseException, secrets: tuple[str | None, ...]) -> None:
    """Scrub keys out of the SDK exception we chain, so a printed traceback shows none."""
    error.args = tuple(
        errors.scrub(arg, *secrets) if isinstance(arg, str) else arg for arg in error.args
    )
    message = getattr(error, "message", None)
    if isinstance(message, str):
        with contextlib.suppress(AttributeError):
            error.message = errors.scrub(message, *secrets)  # type: ignore[attr-defined]
    body = getattr(error, "body", None)
    if body is not None:  # the provider's error object, which may echo a credential
        with contextlib.suppress(AttributeError):
            error.body = _scrub_data(body, secrets)  # type: ignore[attr-defined]


def _scrub_data(value: Any, secrets: tuple[str | None, ...]) -> Any:
    """`value` (decoded JSON) with every string scrubbed of keys."""
    if isinstance(value, str):
        return errors.scrub(value, *secrets)
    if isinstance(value, dict):
        return {k: _scrub_data(v, secrets) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_scrub_data(v, secrets) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value


_STATUS_HINTS = {
    401: " (check the API key)",
    403: " (this key may not use this model or feature)",
    404: " (check the model name and base_url)",
    413: " (the request is too large: shorten the prompt or the messages)",
}

_MESSAGE_LIMIT = 300


def _status_message(error: BaseException, secrets: tuple[str | None, ...]) -> str:
    """What the provider said, without the SDK's "Error code: 400 - {...}" wrapping: the
    error object's own message when its body has one, else the body's start (a 502 from a
    proxy can be a whole web page)."""
    body = getattr(error, "body", None)
    if isinstance(body, str) and body.strip():  # OpenAI's SDK hands over the "error" value
        return _shortened(errors.scrub(body, *secrets))
    if isinstance(body, dict):
        inner = body.get("error", body)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        text = inner.get("message") if isinstance(inner, dict) else inner  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(text, str) and text:
            return _shortened(errors.scrub(text, *secrets))  # scrubbed whole, then cut
    response = getattr(error, "response", None)
    try:
        text = response.text if response is not None else ""
    except Exception:  # a streamed response whose body was not read
        text = ""
    if isinstance(text, str) and text.strip():
        return _shortened(errors.scrub(" ".join(text.split()), *secrets))
    return ""


def _shortened(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "…"
