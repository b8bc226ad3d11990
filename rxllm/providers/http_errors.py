"""rxllm's errors from the SDKs' exceptions and from `httpx2`'s, for every HTTP provider.

Both SDKs name their exceptions alike (`APIStatusError` with `status_code`, `response`,
`message`; `APIConnectionError`; `APITimeoutError`), and while rxllm reads a body itself a
transport failure arrives as a raw `httpx2` exception. Where rxllm needs the exception the
SDK's own stream would raise (chained as the cause of an error event, or of a broken
body), `sdk_stream_failure` runs the installed SDK's own `Stream` over the same bytes, so
the cause and its message follow the installed SDK release, not a copy of an old one.
Every message is scrubbed of the credentials the call may send.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx2

from rxllm import errors

__all__ = [
    "map_sdk_error",
    "retry_after_seconds",
    "scrub_exception",
    "sdk_stream_failure",
    "shortened",
]


def sdk_stream_failure(
    stream_class: Any, cast_to: Any, client: Any, http: httpx2.Response, body: bytes | Exception
) -> BaseException | None:
    """What the installed SDK's own stream (`openai.Stream`, `anthropic.Stream`) raises when
    its body is `body` (an error event, say) or when reading its body fails with `body`
    (an exception); None if it raises nothing. `http` gives the request and the headers
    (the request id the SDK's message may name)."""
    headers = {k: v for k, v in http.headers.items() if k.lower() not in _BODY_HEADERS}
    if isinstance(body, Exception):
        stream: Any = _Failing(body)
        response = httpx2.Response(200, headers=headers, stream=stream, request=http.request)
    else:
        response = httpx2.Response(200, headers=headers, content=body, request=http.request)
    try:
        for _ in stream_class(cast_to=cast_to, response=response, client=client):
            pass
    except Exception as exc:
        return exc
    return None


_BODY_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})


class _Failing(httpx2.SyncByteStream):
    """A body whose reading fails with `error` (for `sdk_stream_failure`)."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        raise self._error


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
    mid_stream: bool = False,
    secrets: tuple[str | None, ...] = (),
) -> errors.LLMError:
    """Translate an exception from the SDKs or `httpx2` into rxllm's error tree.

    Both SDKs name their exceptions alike (`APIStatusError` with `status_code`, `response`,
    `message`; `APIConnectionError`; `APITimeoutError`), and while we read the body
    ourselves transport failures arrive as raw `httpx2` exceptions. A connection that
    breaks once the stream began (`received` chunks, or `mid_stream`: the response's
    headers came, even if no event did) is `StreamInterrupted`, before it
    `APIConnectionError`.
    """
    status = getattr(error, "status_code", None)
    message = (
        _status_message(error, secrets) if isinstance(status, int) and status >= 300 else ""
    ) or errors.scrub(str(getattr(error, "message", None) or error), *secrets)
    misnamed = _connection_failure_called_a_timeout(error)
    if misnamed is not None:
        message = errors.scrub(str(misnamed) or type(misnamed).__name__, *secrets)
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
    elif isinstance(status, int) and hasattr(error, "body"):
        # An SDK status error with a 2xx status: Anthropic's SDK reports a mid-stream error
        # event so (as APIStatusError, or a subclass of it in later releases).
        body = getattr(error, "body", None)
        inner = body.get("error") if isinstance(body, dict) else None  # pyright: ignore[reportUnknownMemberType]
        mapped = errors.stream_error_event(provider, inner or {"message": message})
    elif (
        isinstance(error, httpx2.TimeoutException) or "Timeout" in type(error).__name__
    ) and misnamed is None:
        mapped = errors.StreamTimeout(
            f"{provider}: timed out{' mid-stream' if received else ''}: {message}",
            provider=provider,
        )
    elif isinstance(error, httpx2.TransportError) or type(error).__name__ in _CONNECTION_ERRORS:
        if received or mid_stream:
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
    scrub_exception(error, secrets)
    mapped.__cause__ = error
    return mapped


_CONNECTION_ERRORS = frozenset({"APIConnectionError", "APITimeoutError"})


def _connection_failure_called_a_timeout(error: BaseException) -> BaseException | None:
    """The aiohttp failure under a "timeout" that was none: the openai SDK's aiohttp
    transport maps every `aiohttp.ClientConnectionError` (a refused connection, a server
    that hung up) to `httpx2.ConnectTimeout`, with the aiohttp exception chained under it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        if kind.__module__.split(".")[0] == "aiohttp":
            timeout = any("Timeout" in cls.__name__ for cls in kind.__mro__)
            return None if timeout else current
        current = current.__cause__ or current.__context__
    return None


def scrub_exception(error: BaseException, secrets: tuple[str | None, ...]) -> None:
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
    event = getattr(error, "event", None)
    if isinstance(event, bytes):  # a StreamError's event as sent, which may echo one too
        text = errors.scrub(event.decode("utf-8", "surrogateescape"), *secrets)
        with contextlib.suppress(AttributeError):
            error.event = text.encode("utf-8", "surrogateescape")  # type: ignore[attr-defined]


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
        return shortened(errors.scrub(body, *secrets))
    if isinstance(body, dict):
        inner = body.get("error", body)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        text = inner.get("message") if isinstance(inner, dict) else inner  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(text, str) and text:
            return shortened(errors.scrub(text, *secrets))  # scrubbed whole, then cut
    response = getattr(error, "response", None)
    try:
        text = response.text if response is not None else ""
    except Exception:  # a streamed response whose body was not read
        text = ""
    if isinstance(text, str) and text.strip():
        return shortened(errors.scrub(" ".join(text.split()), *secrets))
    return ""


def shortened(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "…"
