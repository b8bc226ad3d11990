"""Errors that arrive through `on_error` (and are raised by `collect` / `iterate`).

Every error carries what was received before it (`partial`), the `provider`, and whether
trying again could help (`retryable`). The SDK's own exception is kept as `__cause__`.

    LLMError
     +-- APIStatusError                 (the provider answered with an HTTP error)
     |    +-- AuthenticationError       401, or no API key configured
     |    +-- PermissionDeniedError     403
     |    +-- NotFoundError             404
     |    +-- BadRequestError           400, 422
     |    +-- RateLimitError            429                        retryable, retry_after
     |    +-- ServerError               5xx, overloaded            retryable
     +-- APIConnectionError             could not connect / send   retryable
     +-- StreamInterrupted              the connection broke mid-stream   retryable
     +-- StreamError                    the provider sent an error event mid-stream
     |    +-- ServerStreamError         ... of kind overloaded/server (also a ServerError)
     |    +-- RateLimitStreamError      ... of kind rate limit (also a RateLimitError)
     +-- StreamTimeout                  no event within the stall timeout  retryable
     +-- OutputValidationError          structured output did not validate
     +-- UsageLimitExceeded             a tool loop's or batch's UsageLimits reached or crossed

No message or repr ever contains an API key: messages are built from the provider's error
text, which is scrubbed of anything that looks like a key.

Catch by kind, the same for every provider; what arrived before the failure is `partial`
(here the loopback server answers like a busy OpenAI, then like one that breaks mid-answer):

>>> import rxllm
>>> from rxllm.testing import Script, Server
>>> with Server() as server:
...     llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="sk-test", max_retries=0)
...     server.push(Script("Hi", status=429, headers={"retry-after": "2"}))
...     server.push(Script("Hello there, friend.", drop_after=2))
...     for attempt in range(2):
...         try:
...             rxllm.collect(llm.stream("Hi"))
...         except rxllm.RateLimitError as error:
...             print(type(error).__name__, error.status_code, error.retry_after)
...         except rxllm.LLMError as error:
...             print(type(error).__name__, error.retryable, repr(error.partial.text))
RateLimitError 429 2.0
StreamInterrupted True 'Hello there, '

Why ~440 lines in one module: the error tree, each class documented, and the classing of
providers' error kinds that decides which class an error is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

    from rxllm.models import Response, Usage

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "LLMError",
    "NotFoundError",
    "OutputValidationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitStreamError",
    "ServerError",
    "ServerStreamError",
    "StreamError",
    "StreamInterrupted",
    "StreamTimeout",
    "UsageLimitExceeded",
    "scrub",
    "stream_error_event",
]

# sk-..., sk-ant-..., and long opaque tokens after "key"/"bearer" words.
_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,})|((?i:bearer)\s+[A-Za-z0-9_\-.]{8,})|"
    r"((?i:api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9_\-.]{8,}"
)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove API keys from `text`: the given secrets and anything shaped like a key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")

    def hide(match: re.Match[str]) -> str:
        prefix = match.group(3)
        return f"{prefix}***" if prefix else "***"

    return _KEY_PATTERNS.sub(hide, text)


class LLMError(Exception):
    """Base of every error a call can deliver.

    >>> import rxllm
    >>> llm = rxllm.scripted(["Hel", "lo"], error=rxllm.ServerError("overloaded"))
    >>> try:
    ...     rxllm.collect(llm.stream("hi"))
    ... except rxllm.LLMError as error:
    ...     print(error.retryable, repr(error.partial.text))
    True 'Hello'
    """

    retryable_by_default = False

    def __init__(
        self,
        message: str,
        *,
        partial: Response | None = None,
        provider: str | None = None,
        retryable: bool | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message: str = message
        self.partial: Response | None = partial
        """The response as far as it was received before the error (None if nothing)."""
        self.provider: str | None = provider
        """The provider that failed: "openai", "anthropic", "local", "scripted"."""
        self.retryable: bool = self.retryable_by_default if retryable is None else retryable
        """True when the same call may succeed if tried again."""
        self.status_code: int | None = status_code
        """The HTTP status, when the provider answered with one."""
        self.attempts: tuple[LLMError, ...] = ()
        """Every attempt's error, in order, this one last, when several calls were tried
        (`rxllm.fallback`); `()` otherwise."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r})"

    def with_partial(self, partial: Response | None) -> LLMError:
        """Attach what was received so far (kept if one is already attached)."""
        if self.partial is None:
            self.partial = partial
        return self


class APIStatusError(LLMError):
    """The provider answered the request with an HTTP error status.

    >>> import rxllm
    >>> from rxllm.testing import Script, Server
    >>> with Server(Script("", status=404)) as server:
    ...     llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="sk-test")
    ...     try:
    ...         rxllm.collect(llm.stream("Hi"))
    ...     except rxllm.APIStatusError as error:
    ...         print(type(error).__name__, error.status_code, error.retryable)
    NotFoundError 404 False
    """


class AuthenticationError(APIStatusError):
    """401, or no API key configured: the message names the environment variable to set.

    >>> import rxllm
    >>> rxllm.AuthenticationError("openai: HTTP 401: invalid key").retryable
    False
    """


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but may not use this model or feature.

    >>> import rxllm
    >>> isinstance(rxllm.PermissionDeniedError("HTTP 403"), rxllm.APIStatusError)
    True
    """


class NotFoundError(APIStatusError):
    """404: usually an unknown model name or a wrong `base_url`.

    >>> import rxllm
    >>> rxllm.NotFoundError("HTTP 404: the model does not exist").retryable
    False
    """


class BadRequestError(APIStatusError):
    """400/422: the provider rejected the request's content (`rxllm.fallback` does not move
    on from it: the next provider would reject it too).

    >>> import rxllm
    >>> rxllm.BadRequestError("HTTP 400: max_tokens is too large", status_code=400).retryable
    False
    """


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; `retry_after` says how long to wait, if known
    (`ops.retry` waits it).

    >>> import rxllm
    >>> error = rxllm.RateLimitError("HTTP 429", retry_after=2.0)
    >>> error.retryable, error.retry_after
    (True, 2.0)
    """

    retryable_by_default = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (from `retry-after` headers), or None."""


class ServerError(APIStatusError):
    """5xx or overloaded, before or during the stream (an overload reported mid-stream is a
    `ServerStreamError`, also caught here).

    >>> import rxllm
    >>> llm = rxllm.scripted(["Hel", "lo"], error=rxllm.ServerError("overloaded"))
    >>> try:
    ...     rxllm.collect(llm.stream("hi"))
    ... except rxllm.ServerError as error:
    ...     print(error.retryable, repr(error.partial.text))
    True 'Hello'
    """

    retryable_by_default = True


class APIConnectionError(LLMError):
    """The request could not be sent or the connection could not be made.

    >>> import rxllm
    >>> llm = rxllm.openai("gpt-4o-mini", base_url="http://127.0.0.1:9", api_key="sk-test",
    ...                    max_retries=0)  # nothing listens on port 9
    >>> try:
    ...     rxllm.collect(llm.stream("Hi"))
    ... except rxllm.APIConnectionError as error:
    ...     print(type(error).__name__, error.retryable)
    APIConnectionError True
    """

    retryable_by_default = True


class StreamInterrupted(LLMError):
    """The connection broke in the middle of the stream (also a body that ended without the
    provider's terminator); `partial` holds what arrived.

    >>> import rxllm
    >>> from rxllm.testing import Script, Server
    >>> with Server(Script("Hello there, friend.", drop_after=2)) as server:
    ...     llm = rxllm.anthropic("claude-haiku-4-5", base_url=server.url, api_key="sk-test")
    ...     try:
    ...         rxllm.collect(llm.stream("Hi"))
    ...     except rxllm.StreamInterrupted as error:
    ...         print(error.retryable, repr(error.partial.text))
    True 'Hello there, '
    """

    retryable_by_default = True


class StreamError(LLMError):
    """The provider sent an error event in the middle of the stream (or one that is not
    valid JSON); `body` is the provider's error object as sent, when there was one.

    >>> import rxllm
    >>> from rxllm.testing import Script, Server
    >>> with Server(Script("Hello there", error_event="server_error")) as server:
    ...     llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="sk-test")
    ...     try:
    ...         rxllm.collect(llm.stream("Hi"))
    ...     except rxllm.StreamError as error:
    ...         print(type(error).__name__, repr(error.partial.text), error.body["type"])
    ServerStreamError 'Hello there' server_error
    """

    body: object = None
    """The provider's error object (decoded JSON), when there was one."""
    event: bytes | None = None
    """The error event as the provider sent it (server-sent event bytes), when there was
    one: the SDK's own stream is run over it for the exception chained as `__cause__`."""


class StreamTimeout(LLMError):
    """No provider event arrived within the stall timeout (keep-alive pings do not count).

    >>> import rxllm
    >>> llm = rxllm.scripted(["Thinking", " hard"], delay=2.0, stall_timeout=0.1)
    >>> try:
    ...     rxllm.collect(llm.stream("hi"))
    ... except rxllm.StreamTimeout as error:
    ...     print(error.retryable)
    True
    """

    retryable_by_default = True


class OutputValidationError(LLMError):
    """Structured output (e.g. `ops.partial(Model)`) did not validate at the end.

    >>> import pydantic, rxllm
    >>> from rxllm import ops
    >>> class City(pydantic.BaseModel):
    ...     name: str
    ...     population: int
    >>> llm = rxllm.scripted('{"name": "Oslo", "population": "many"}')
    >>> try:
    ...     list(rxllm.iterate(llm.stream("Oslo?", response_format=City).pipe(ops.partial(City))))
    ... except rxllm.OutputValidationError as error:
    ...     print(error.retryable, error.partial.text)
    False {"name": "Oslo", "population": "many"}
    """


class UsageLimitExceeded(LLMError):
    """A limit of `rxllm.UsageLimits` was reached (no further request started) or crossed
    (the running stream was stopped, its HTTP call closed). `limit` names it ("requests",
    "output_tokens", "cost", ...); `usage` (and, with a cost limit, `cost` in USD) is what was
    counted so far over all the calls of the tool loop or batch; `partial` is the answer so
    far.

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted("ok")
    >>> results = rxllm.batch(["a", "b"], lambda p: llm.stream(p).pipe(ops.to_response()),
    ...                       concurrency=1, limits=rxllm.UsageLimits(requests=1), progress=False)
    >>> [(item, type(result).__name__) for item, result in rxllm.iterate(results)]
    [('a', 'Response'), ('b', 'UsageLimitExceeded')]
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str = "",
        usage: Usage | None = None,
        cost: Decimal | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.limit = limit
        """The name of the limit: "requests", "input_tokens", "output_tokens",
        "total_tokens" or "cost"."""
        self.usage = usage
        """The usage counted so far over all the calls of the tool loop or batch."""
        self.cost = cost
        """The cost counted so far in USD, when a cost limit was set (else None)."""


class ServerStreamError(StreamError, ServerError):
    """An overloaded/server error reported by an error event mid-stream: both kinds, retryable.

    >>> import rxllm
    >>> issubclass(rxllm.ServerStreamError, rxllm.ServerError)
    True
    """

    retryable_by_default = True


class RateLimitStreamError(StreamError, RateLimitError):
    """A rate-limit error reported by an error event mid-stream: both kinds, retryable.

    >>> import rxllm
    >>> issubclass(rxllm.RateLimitStreamError, rxllm.RateLimitError)
    True
    """

    retryable_by_default = True


# An error object's `type` and `code`, lower-cased with everything but letters and digits
# dropped, so that "overloaded_error", "InternalServerError" and "rate_limit_exceeded" all
# match: Anthropic's error types, OpenAI's types and codes, OpenAI-compatible servers', and
# Bedrock's exception types (throttlingException, internalServerException, ...).
_RATE_LIMIT_KINDS = frozenset(
    {
        "ratelimiterror",
        "ratelimitexceeded",
        "ratelimit",
        "toomanyrequests",
        "429",
        "throttlingexception",
    }
)
_SERVER_KINDS = frozenset(
    {
        "overloadederror",
        "overloaded",
        "servererror",
        "apierror",
        "internalservererror",
        "internalerror",
        "serviceunavailable",
        "serviceunavailableerror",
        "timeouterror",
        "timeout",
        "internalserverexception",
        "serviceunavailableexception",
        "modeltimeoutexception",
        "modelstreamerrorexception",
    }
)


def _stream_error_class(kinds: list[str]) -> type[StreamError]:
    normalized = ["".join(c for c in kind.lower() if c.isalnum()) for kind in kinds]
    if any(kind in _RATE_LIMIT_KINDS for kind in normalized):
        return RateLimitStreamError
    if any(kind in _SERVER_KINDS or (kind.isdigit() and kind[0] == "5") for kind in normalized):
        return ServerStreamError
    return StreamError


def stream_error_event(provider: str, error: object) -> StreamError:
    """The error for an `error` event the provider sent mid-stream (its JSON `error` object).

    Its `type` and its `code` both decide the class: a rate limit (Anthropic's
    `rate_limit_error`, OpenAI's code `rate_limit_exceeded`, code 429) is a
    `RateLimitStreamError`; an overload, server error or timeout (also a code of 5xx) is a
    `ServerStreamError`; both are retryable. Anything else is a plain `StreamError`.
    """
    kinds: list[str] = []
    message = error if isinstance(error, str) and error else None  # {"error": "CUDA OOM"}
    if isinstance(error, dict):
        for field in ("type", "code"):
            value = error.get(field)  # pyright: ignore[reportUnknownMemberType]
            if value not in (None, "") and str(value) not in kinds:  # pyright: ignore[reportUnknownArgumentType]
                kinds.append(str(value))  # pyright: ignore[reportUnknownArgumentType]
        message = error.get("message")  # pyright: ignore[reportUnknownMemberType]
    kind = " / ".join(kinds) or "error"
    text = str(message) if message else "the provider reported an error mid-stream"
    cls = _stream_error_class(kinds)
    mapped = cls(f"{provider} stream error ({kind}): {scrub(text)}", provider=provider)
    mapped.body = error
    return mapped
