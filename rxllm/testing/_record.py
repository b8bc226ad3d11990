"""Recordings: what the loopback server received, and how far it got answering.

A `RecordedRequest` is live: the connection's thread updates it while it streams, and tests
read it (or block on it) from their own thread. The counts are what cancellation tests
assert on: how many chunks went out, and when the server noticed the client leave.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RecordedRequest"]

_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})


class Headers(dict[str, str]):
    """A request's headers (lower-case names): a plain dict whose `repr` masks the
    credentials, so that a failing assert on them never prints a key.

    >>> Headers({"authorization": "Bearer sk-1", "x-trace": "7"})
    {'authorization': '***', 'x-trace': '7'}
    """

    def __repr__(self) -> str:
        return repr({k: "***" if k in _CREDENTIAL_HEADERS else v for k, v in self.items()})


@dataclass(eq=False)
class RecordedRequest:
    """One request the `Server` received, updated live while it is answered.

    Times are `time.monotonic()` seconds.

    >>> import openai
    >>> from rxllm.testing import Script, Server
    >>> with Server(Script("Hello there.", delay=0.05)) as server:
    ...     client = openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)
    ...     stream = client.chat.completions.create(
    ...         model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    ...     first = next(iter(stream))
    ...     stream.close()
    ...     recorded = server.last
    ...     recorded.wait_closed(), recorded.chunks_written, recorded.chunks_after_close
    (True, 1, 0)
    >>> recorded.body["messages"]
    [{'role': 'user', 'content': 'hi'}]
    """

    protocol: Literal["openai", "anthropic", "openai-responses", "bedrock"]
    """Which API the request spoke, from its path ("openai-responses": `/responses`; Vertex
    AI's `:streamRawPredict` is "anthropic"; Bedrock's `/invoke-with-response-stream` is
    "bedrock")."""
    path: str
    """The request path (without the query string), e.g. "/v1/messages"."""
    headers: dict[str, str]
    """The request headers, with lower-case names."""
    body: dict[str, Any]
    """The request's JSON body."""
    started_at: float = field(default_factory=time.monotonic)
    """When the request was received."""
    status: int = 200
    """The HTTP status answered."""
    chunks_written: int = 0
    """Scripted chunks written so far."""
    events_written: int = 0
    """SSE events written so far (keep-alives not included)."""
    pings_written: int = 0
    """Keep-alives written so far."""
    first_byte_at: float | None = None
    """When the first bytes of the body were written (for a stream: its first event)."""
    client_closed_at: float | None = None
    """When the server noticed that the client had closed the connection."""
    chunks_after_close: int = 0
    """Chunks written although the client had already gone (0 for a prompt client)."""
    finished: bool = False
    """The answer was carried out to its end: the script's last event, drop or give-up, or
    an HTTP error reply (also the 400 sent when no script was pushed)."""
    completed_normally: bool = False
    """The response was a whole stream with the protocol's own end ([DONE], message_stop)."""
    _changed: threading.Condition = field(
        default_factory=threading.Condition, init=False, repr=False
    )
    _done: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.headers = Headers(self.headers)

    def __repr__(self) -> str:
        # A test's failing assert prints this: the credentials a client sent are masked.
        return (
            f"RecordedRequest(protocol={self.protocol!r}, path={self.path!r}, "
            f"status={self.status}, chunks_written={self.chunks_written}, "
            f"client_closed={self.client_closed_at is not None}, headers={self.headers!r}, "
            f"body={self.body!r})"
        )

    async def wait_closed_async(self, timeout: float = 5.0) -> bool:
        """`wait_closed` for asyncio tests: waits without blocking the event loop (a blocked
        loop could not close the connection it is waiting for).

        >>> import asyncio, rxllm
        >>> from rxllm import ops
        >>> from rxllm.testing import Script, Server
        >>> async def main():
        ...     with Server(Script(["a"] * 50, delay=0.01)) as server:
        ...         llm = rxllm.openai("m", base_url=server.url, api_key="test")
        ...         stream = llm.stream("hi").pipe(ops.take_until(lambda c: c.content == "a"))
        ...         await rxllm.acollect(stream)
        ...         return await server.last.wait_closed_async(), server.last.chunks_written < 50
        >>> asyncio.run(main())
        (True, True)
        """
        return await asyncio.to_thread(self.wait_closed, timeout)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Block until the client has left or the server is done; return whether it left.

        >>> import httpx2
        >>> from rxllm.testing import Script, Server
        >>> with Server(Script("Hi.")) as server:  # a client that reads the whole stream
        ...     body = httpx2.post(f"{server.url}/v1/messages", json={"stream": True}).text
        ...     server.last.wait_closed()
        False
        """
        with self._changed:
            self._changed.wait_for(
                lambda: self.client_closed_at is not None or self.finished or self._done,
                timeout,
            )
            return self.client_closed_at is not None

    def wait_done(self, timeout: float = 5.0) -> bool:
        """Block until the server is done with this request; return whether it is.

        Done means the script was written to its end, the client left, or the server closed.

        >>> import httpx2
        >>> from rxllm.testing import Script, Server
        >>> with Server(Script("Hi.")) as server:
        ...     body = httpx2.post(f"{server.url}/chat/completions", json={"stream": True}).text
        ...     server.last.wait_done(), server.last.completed_normally
        (True, True)
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._done, timeout)

    # The connection's thread reports progress through these.

    def _wrote(self, chunks: int, events: int, *, client_gone: bool) -> None:
        with self._changed:
            if self.first_byte_at is None and events > 0:
                self.first_byte_at = time.monotonic()
            self.chunks_written += chunks
            self.events_written += events
            if client_gone:
                self.chunks_after_close += chunks
            self._changed.notify_all()

    def _answered(self, status: int) -> None:
        with self._changed:
            self.status = status
            self.first_byte_at = time.monotonic()
            self.finished = True
            self._changed.notify_all()

    def _pinged(self) -> None:
        with self._changed:
            self.pings_written += 1

    def _client_closed(self) -> None:
        with self._changed:
            if self.client_closed_at is None:
                self.client_closed_at = time.monotonic()
            self._changed.notify_all()

    def _finish(self, *, normally: bool) -> None:
        with self._changed:
            self.finished = True
            self.completed_normally = normally
            self._changed.notify_all()

    def _unfinish(self) -> None:
        with self._changed:
            self.finished = False
            self.completed_normally = False

    def _end(self) -> None:
        with self._changed:
            self._done = True
            self._changed.notify_all()
