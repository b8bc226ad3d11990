"""Cancelling an HTTP call from any thread, at once, also while no byte is arriving.

`dispose()` runs on whatever thread the subscriber is on, while the call's thread may be
blocked reading the socket (a model thinking, a stalled server). Closing the response from
another thread would wait for the next chunk; shutting the *socket* down makes the blocked
read return now, and the server sees the close within a millisecond. So an HTTP call
registers its connection's socket with `CallControl.on_cancel` (`socket_closer`) while it
reads the body, and unregisters it before the connection goes back to the pool.

Before the response headers the SDK owns the request (connecting, retrying, sleeping
between retries). The sync clients rxllm makes carry a `request` event hook: inside a
`RequestPhase` a cancelled call's next attempt is refused before it is sent (`Cancelled`,
which the SDK does not retry), and a connection opened for the request is shut down as
soon as the call is cancelled. (The async path simply cancels its task.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import httpx2

from rxllm.bridge import CallControl

__all__ = ["Cancelled", "RequestPhase", "shutdown_socket", "socket_closer", "sync_http_client"]


def shutdown_socket(sock: socket.socket | None) -> None:
    """Shut a connection down so that a read blocked on it in another thread returns now."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Cancelled(BaseException):
    """Raised by our sync clients' request hook when the call was cancelled before the SDK
    (re)sent its request, e.g. while it slept between retries. A BaseException, so the SDK,
    which retries any `Exception`, lets it through."""


_phase = threading.local()
"""The sync call whose request this thread is sending (`control`, `unregister`), if any."""


class RequestPhase:
    """While the SDK sends a sync request (connecting, retrying, waiting for the headers):
    a cancellation stops further attempts and shuts a freshly opened connection down."""

    __slots__ = ("control", "unregister")

    def __init__(self, control: CallControl) -> None:
        self.control = control
        self.unregister: list[Any] = []

    def __enter__(self) -> RequestPhase:
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
    phase: RequestPhase | None = getattr(_phase, "current", None)
    if phase is None:
        return
    if phase.control.cancelled:
        raise Cancelled
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
    cancellable before its response headers arrive (see `RequestPhase`)."""
    return factory(event_hooks={"request": [_request_hook]})


def socket_closer(http: httpx2.Response) -> Any:
    """A callback that shuts down the response's socket, so a blocked read returns now."""
    stream = http.extensions.get("network_stream")
    sock = None
    if stream is not None:
        try:
            sock = stream.get_extra_info("socket")
        except Exception:
            sock = None
    return lambda: shutdown_socket(sock)
