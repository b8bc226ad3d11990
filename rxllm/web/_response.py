"""`sse()`, and the response both web streams are: one that ends the call when the client leaves.

A browser that goes away (a closed tab, an aborted `fetch`, a Stop button) closes its
connection, and the ASGI server says so on the receive channel with `http.disconnect`.
Waiting for a write to fail is not enough: a model that thinks for a minute before its first
token writes nothing meanwhile, and some servers (uvicorn) drop writes to a closed connection
without an error. So `EventStream` listens for the disconnect itself, next to the writing,
and cancels the writing at once; the writing holds the call's subscription and disposing it
closes the provider's HTTP response.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, cast

import pydantic
import pydantic_core
import reactivex
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

import rxllm
from rxllm._checks import require_observable
from rxllm.errors import LLMError, scrub
from rxllm.models import Chunk

__all__ = ["EventStream", "error_payload", "items_of", "log_failure", "sse"]

logger = logging.getLogger("rxllm")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""Headers of every event stream: no caching, and no buffering in a proxy (nginx)."""

_SECRET_NAMES = ("KEY", "TOKEN", "SECRET", "PASSWORD")


class EventStream(StreamingResponse):
    """A `text/event-stream` response whose body stops when the client disconnects.

    `events` is an async generator of encoded events that holds the call's subscription
    and releases it when closed (as `rxllm.aiterate` does). It is closed when it ends, when a
    write fails, and when the client disconnects: `http.disconnect` is awaited on the
    receive channel while the events are written, also while none arrives. `sse` and
    `ui_message_stream` are made of it; it serves any events of your own the same way:

    >>> from starlette.applications import Starlette
    >>> from starlette.testclient import TestClient
    >>> async def ticks():
    ...     for i in range(3):
    ...         yield f"data: {i}\\n\\n".encode()
    >>> async def endpoint(request):
    ...     return EventStream(ticks())
    >>> app = Starlette()
    >>> app.add_route("/ticks", endpoint)
    >>> TestClient(app).get("/ticks").text
    'data: 0\\n\\ndata: 1\\n\\ndata: 2\\n\\n'
    """

    def __init__(
        self, events: AsyncGenerator[bytes, None], *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(
            events, headers={**SSE_HEADERS, **(headers or {})}, media_type="text/event-stream"
        )
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Write the events until they end or the client goes away, whichever is first."""
        if scope["type"] != "http":
            raise TypeError(f"an event stream answers an HTTP request, not {scope['type']!r}")
        writing = asyncio.ensure_future(self._write(send))
        watching = asyncio.ensure_future(_client_gone(receive))
        try:
            await asyncio.wait((writing, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # the client left (or this request is being cancelled): stop writing, which
            # closes the events and with them the call
            watching.cancel()
            writing.cancel()
            await asyncio.wait((writing, watching))
        if not watching.cancelled() and watching.exception() is not None:
            # a receive channel that broke is taken as the client gone (the writing stopped)
            logger.debug("the request's receive channel failed", exc_info=watching.exception())
        if writing.cancelled():
            logger.debug("the client left: its call was cancelled")
            return
        error = writing.exception()
        if isinstance(error, OSError):  # ASGI 2.4 servers: a write to a closed connection
            return
        if error is not None:
            raise error
        if self.background is not None:
            await self.background()

    async def _write(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async with aclosing(self._events) as events:
            async for piece in events:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _client_gone(receive: Receive) -> None:
    """Returns when the client has disconnected (a request body not read yet is skipped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def error_payload(error: BaseException) -> dict[str, str]:
    """What the page is told of a failure: the error's class and its message, without keys.

    Messages of rxllm's errors never hold a key; any other exception's message is scrubbed
    of anything shaped like one and of the values of the environment's `*KEY`, `*TOKEN`,
    `*SECRET` and `*PASSWORD` variables.

    >>> error_payload(rxllm.StreamError("overloaded"))
    {'type': 'StreamError', 'message': 'overloaded'}
    >>> error_payload(RuntimeError("bad key sk-abcdefghijklmnop"))
    {'type': 'RuntimeError', 'message': 'bad key ***'}
    """
    secrets = [
        value
        for name, value in os.environ.items()
        if name.upper().endswith(_SECRET_NAMES) and len(value) >= 8
    ]
    message = scrub(str(error), *secrets) or type(error).__name__
    return {"type": type(error).__name__, "message": message}


def log_failure(kind: str, error: Exception) -> None:
    """Log a stream that failed: a provider error as a warning, anything else (a bug in a
    tool or an operator) with its traceback."""
    payload = error_payload(error)
    if isinstance(error, LLMError):
        logger.warning("%s stream failed: %s: %s", kind, payload["type"], payload["message"])
    else:
        logger.error(
            "%s stream failed: %s: %s", kind, payload["type"], payload["message"], exc_info=error
        )


def sse(source: reactivex.Observable[Any]) -> EventStream:
    """Stream an Observable of chunks to a browser as Server-Sent Events.

    One `data:` event per item: a `Chunk` as its own fields in JSON (snake_case as `Chunk`
    names them; audio as standard base64, for `atob()`; `tool_results` with each result's
    `content`), any other pydantic model (e.g. what `ops.partial(Model)` emits) as its
    fields, anything else (e.g. the strings of `ops.text()`) as its JSON value. A failure
    ends the stream with `event: error` and data `{"type": <the error's class, e.g.
    "StreamError">, "message": ...}`, never a key; the end is `event: done` (data `{}`), so
    that an `EventSource` closes instead of reconnecting (which would make a new call).
    Disconnecting cancels the call, also while the model is silent.

    >>> import rxllm
    >>> from rxllm import web
    >>> llm = rxllm.scripted("Hello there.")
    >>> async def endpoint(request):
    ...     return web.sse(llm.stream(request.query_params["q"]))

    In the browser: `new EventSource("/stream?q=hi")`, with `onmessage = e =>
    show(JSON.parse(e.data).content)` and `addEventListener("done", () => source.close())`.
    """
    require_observable("web.sse", source)
    return EventStream(_sse_events(source))


async def _sse_events(source: reactivex.Observable[Any]) -> AsyncGenerator[bytes, None]:
    try:
        async with aclosing(items_of(source)) as items:
            async for item in items:
                yield b"data: " + _json(item) + b"\n\n"
    except Exception as error:
        log_failure("sse", error)
        yield b"event: error\ndata: " + pydantic_core.to_json(error_payload(error)) + b"\n\n"
        return
    yield b"event: done\ndata: {}\n\n"


def items_of(source: reactivex.Observable[Any]) -> AsyncGenerator[Any, None]:
    """`rxllm.aiterate(source)`, which is an async generator: closing it disposes the call."""
    return cast(AsyncGenerator[Any, None], rxllm.aiterate(source))


def _json(item: Any) -> bytes:
    if isinstance(item, Chunk) and item.audio:
        # pydantic writes bytes as URL-safe base64; a browser's atob() reads the standard one
        fields = item.model_dump(mode="json")
        fields["audio"] = base64.b64encode(item.audio).decode()
        return pydantic_core.to_json(fields)
    if isinstance(item, pydantic.BaseModel):
        return item.model_dump_json().encode()
    return pydantic_core.to_json(item)
