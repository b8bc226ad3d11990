"""The loopback server: OpenAI and Anthropic streaming endpoints that answer from scripts.

One thread accepts connections on 127.0.0.1 and one thread serves each connection, so a
benchmark can hold a thousand streams open at once. Every response is HTTP/1.1 with
`Connection: close` and a chunked body: the end of the body is explicit, so a dropped
connection is an incomplete body that both SDKs report as an error.

The point of the server is to see the client leave. A thread never sleeps: it waits on
its socket (and on the server's wake-up socket), so a client closing during a delay or a
hang is noticed within milliseconds, and it checks the socket again before every write, so
nothing is written after a prompt client has gone.

Why ~710 lines in one module: one HTTP server whose every misbehaviour (delays, status
errors, drops, hangs) shares the connection handling that records what was written before a
client went away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.client
import json
import math
import select
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from rxllm.testing._encode import (
    Plan,
    Protocol,
    error_response,
    ping,
    plan,
    reason_phrase,
    status_response,
)
from rxllm.testing._eventstream import CONTENT_TYPE as _EVENTSTREAM
from rxllm.testing._eventstream import bedrock_plan
from rxllm.testing._record import RecordedRequest
from rxllm.testing._script import Script

__all__ = ["Server"]

_HOST = "127.0.0.1"
_BATCH = 64 * 1024
_HANG_LIMIT = 60.0
_CLOSE_GRACE = 2.0
_MAX_BODY = 64 * 1024 * 1024

_State = Literal["open", "closed", "stop"]
_Route = Literal["openai", "anthropic", "openai-responses", "bedrock"]
"""A request's API: its events' protocol, and Bedrock's framing of Anthropic's events."""


class _Readiness:
    """Which of some descriptors are readable, waiting up to a timeout.

    `poll` where the platform has it: `select.select` cannot watch descriptors above 1023,
    and a benchmark with 1000 streams has more than that.
    """

    def __init__(self, *fds: int) -> None:
        self._fds = fds
        self._poll: select.poll | None = None
        if hasattr(select, "poll"):
            self._poll = select.poll()
            for fd in fds:
                self._poll.register(fd, select.POLLIN | select.POLLPRI)

    def ready(self, timeout: float | None) -> set[int]:
        """The readable descriptors, after waiting up to `timeout` seconds (None: no limit)."""
        if self._poll is not None:
            ms = None if timeout is None else math.ceil(timeout * 1000)
            return {fd for fd, _ in self._poll.poll(ms)}
        readable, _, _ = select.select(self._fds, [], [], timeout)
        return set(readable)


class _Waiter:
    """Waits for a connection's client to leave, or for the server's wake-up call."""

    def __init__(self, sock: socket.socket, wake: socket.socket, stopping: threading.Event) -> None:
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._wake_fd = wake.fileno()
        self._stopping = stopping
        self._readiness = _Readiness(self._sock_fd, self._wake_fd)

    def wait(self, timeout: float) -> _State:
        """Wait up to `timeout` seconds: "closed" (client left), "stop" (server closing), or
        "open" (neither happened)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._stopping.is_set():
                return "stop"
            remaining = max(0.0, deadline - time.monotonic())
            ready = self._readiness.ready(remaining)
            if self._wake_fd in ready or self._stopping.is_set():
                return "stop"
            if self._sock_fd in ready and self._client_left():
                return "closed"
            if not ready or remaining == 0.0:
                return "open"

    def _client_left(self) -> bool:
        try:
            data = self._sock.recv(4096, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not data:
            return True
        # The client sent more after its request; drop it so the socket stops being readable.
        try:
            self._sock.recv(len(data))
        except OSError:
            return True
        return False


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _BadRequest(Exception):
    """The bytes received are not an HTTP request this server can read."""


def _read_chunked(rfile: Any) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest("bad chunk size in the request body") from exc
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > _MAX_BODY:
            raise _BadRequest("request body too large")
        parts.append(rfile.read(size))
        rfile.readline(3)


def _read_request(rfile: Any) -> _Request | None:
    line: bytes = rfile.readline(65537)
    if not line.strip():
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest(f"not an HTTP request line: {line[:80]!r}")
    method, target, _version = parts
    try:
        message = http.client.parse_headers(rfile)
    except http.client.HTTPException as exc:
        raise _BadRequest(f"bad request headers: {exc}") from exc
    headers: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:  # absolute-form target
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return _Request(method.upper(), path, headers, b"")


def _route(path: str) -> _Route | None:
    trimmed = path.rstrip("/")
    if trimmed.endswith("/chat/completions"):
        return "openai"
    if trimmed.endswith(("/messages", ":streamRawPredict")):  # Vertex AI: Anthropic's SSE
        return "anthropic"
    if trimmed.endswith("/responses"):
        return "openai-responses"
    if trimmed.endswith("/invoke-with-response-stream"):  # Bedrock: AWS event stream
        return "bedrock"
    return None


def _events(route: _Route) -> Protocol:
    """The protocol of a route's events (Bedrock frames Anthropic's)."""
    return "anthropic" if route == "bedrock" else route


class _Connection:
    """Serves one accepted connection: reads the request, answers it, records progress."""

    def __init__(self, server: Server, sock: socket.socket, wake: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._waiter = _Waiter(sock, wake, server._stopping)
        self._record: RecordedRequest | None = None
        self._ping = b""
        self._ping_every: float | None = None
        self._normal = False
        self._checked = False

    def serve(self) -> None:
        rfile = self._sock.makefile("rb")
        try:
            self._serve(rfile)
        except _BadRequest as exc:
            with contextlib.suppress(OSError):
                self._respond(400, error_response(None, "invalid_request_error", str(exc)))
        except OSError:
            # The client went away while its request was read or an error was answered.
            if self._record is not None and not self._server._stopping.is_set():
                self._record._client_closed()
        finally:
            rfile.close()
            if self._record is not None:
                self._record._end()

    def _serve(self, rfile: Any) -> None:
        request = _read_request(rfile)
        if request is None or not self._read_body(request, rfile):
            return
        accepted = self._admit(request)
        if accepted is None:
            return
        route, body = accepted
        protocol = _events(route)
        record = RecordedRequest(route, request.path, request.headers, body)
        self._record = record
        script = self._server._take_script(record)
        if script is not None and script.headers_delay:
            self._ping_every = None  # nothing may be sent before the headers
            if not self._pause(script.headers_delay):
                return
        if script is None:
            # A test's own mistake: a 400, which no client retries (a 500 was retried).
            message = "rxllm.testing.Server has no script: call server.push(Script(...)) first"
            self._respond(400, error_response(protocol, "invalid_request_error", message))
        elif script.status is not None:
            self._respond(script.status, status_response(script, protocol), script.headers)
        else:
            try:
                encoded = plan(script, protocol, body)
            except ValueError as exc:  # a script this protocol cannot express
                self._respond(400, error_response(protocol, "invalid_request_error", str(exc)))
                return
            if route == "bedrock":
                encoded = bedrock_plan(encoded)
            self._stream(encoded, script, route)

    def _read_body(self, request: _Request, rfile: Any) -> bool:
        """Read the request body; False if the client left before sending all of it."""
        if request.headers.get("expect", "").lower() == "100-continue":
            self._sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            request.body = _read_chunked(rfile)
            return True
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError as exc:
            raise _BadRequest("bad Content-Length") from exc
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequest("bad Content-Length")
        request.body = rfile.read(length)
        return len(request.body) == length

    def _admit(self, request: _Request) -> tuple[_Route, dict[str, Any]] | None:
        """The route and JSON body of a request to stream; None once it was refused."""
        route = _route(request.path)
        if route is None:
            message = (
                f"rxllm.testing.Server has no endpoint {request.path!r}: it answers POSTs to "
                "paths ending in /chat/completions (OpenAI), /responses (OpenAI Responses), "
                "/messages or :streamRawPredict (Anthropic, Vertex AI) and "
                "/invoke-with-response-stream (Bedrock)"
            )
            self._respond(404, error_response(None, "not_found_error", message))
            return None
        problem = None
        body: Any = None
        if request.method != "POST":
            problem, status = f"{request.path} takes POST, not {request.method}", 405
        else:
            status = 400
            try:
                body = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError) as exc:
                problem = f"the request body is not JSON: {exc}"
            else:
                if not isinstance(body, dict):
                    problem = "the request body must be a JSON object"
                elif body.get("stream") is not True and route != "bedrock":  # in its path
                    problem = (
                        "rxllm.testing.Server only streams: send the request with stream=True "
                        "(the SDK's create(..., stream=True) or .stream(...))"
                    )
        if problem is not None:
            self._respond(status, error_response(_events(route), "invalid_request_error", problem))
            return None
        return route, body

    def _head(self, status: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _headers(self, defaults: dict[str, str], extra: Mapping[str, str]) -> dict[str, str]:
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        merged = {**defaults, "x-request-id": request_id, "request-id": request_id}
        lowered = {name.lower(): name for name in merged}
        for name, value in extra.items():
            merged.pop(lowered.get(name.lower(), name), None)
            merged[name] = value
        return merged

    def _respond(self, status: int, body: bytes, extra: Mapping[str, str] | None = None) -> None:
        """Answer with an HTTP error and a JSON body, and end the response."""
        headers = self._headers(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "Connection": "close",
            },
            extra or {},
        )
        if self._record is not None:
            self._record._answered(status)
        self._sock.sendall(self._head(status, headers) + body)
        self._close_write()

    def _close_write(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    # Streaming.

    def _stream(self, plan: Plan, script: Script, route: _Route) -> None:
        self._ping = ping(_events(route))
        # Bedrock's event stream has no keep-alive
        self._ping_every = None if route == "bedrock" else script.ping_every
        self._normal = plan.normal
        kind = _EVENTSTREAM if route == "bedrock" else "text/event-stream; charset=utf-8"
        head = self._headers(
            {
                "Content-Type": kind,
                "Cache-Control": "no-cache",
                "Connection": "close",
                "Transfer-Encoding": "chunked",
            },
            script.headers,
        )
        if not (self._send(self._head(200, head)) and self._write_frames(plan)):
            return
        assert self._record is not None
        if plan.ending == "hang" and not self._pause(_HANG_LIMIT):
            return
        if plan.ending != "end":
            # After a drop (or a hang given up) the connection ends inside the chunked body,
            # so the client sees an incomplete response rather than a short complete one.
            self._record._finish(normally=False)
        self._close_write()

    def _write_frames(self, plan: Plan) -> bool:
        """Write the frames, batched between pauses; False if the stream must stop."""
        batch: list[bytes] = []
        size = chunks = events = 0
        for frame in plan.frames:
            if frame.wait > 0:
                if batch and not self._write(batch, chunks, events):
                    return False
                batch, size, chunks, events = [], 0, 0, 0
                if not self._pause(frame.wait):
                    return False
            batch.append(frame.data)
            size += len(frame.data)
            chunks += frame.chunks
            events += frame.events
            if size >= _BATCH:
                if not self._write(batch, chunks, events):
                    return False
                batch, size, chunks, events = [], 0, 0, 0
        end = plan.ending == "end"
        return not (batch or end) or self._write(batch, chunks, events, end=end)

    def _check(self) -> bool:
        """Whether the client is still there and the server still running, without waiting."""
        state = self._waiter.wait(0.0)
        if state == "closed":
            assert self._record is not None
            self._record._client_closed()
        return state == "open"

    def _send(self, data: bytes, *, chunks: int = 0, events: int = 0, end: bool = False) -> bool:
        """Write `data` unless the client has left; False if the stream must stop.

        The recording is updated before the write and undone if it fails: a client that
        has read the bytes must find them counted (and the stream finished, if `end`).
        """
        # A pause that just ended has looked at the socket a moment ago: no need to again.
        checked, self._checked = self._checked, False
        if not (checked or self._check()):
            return False
        record = self._record
        assert record is not None
        record._wrote(chunks, events, client_gone=record.client_closed_at is not None)
        if end:
            record._finish(normally=self._normal)
        try:
            self._sock.sendall(data)
        except OSError:
            record._wrote(-chunks, -events, client_gone=record.client_closed_at is not None)
            if end:
                record._unfinish()
            if not self._server._stopping.is_set():
                record._client_closed()
            return False
        return True

    def _write(self, batch: list[bytes], chunks: int, events: int, *, end: bool = False) -> bool:
        """Write a batch of frames as one piece of the chunked body (and its end, if `end`)."""
        data = b"".join(batch)
        # A frame can be empty (audio scripted for Anthropic) and an empty piece would end
        # the body; its chunk still counts as written.
        wire = b"%x\r\n%b\r\n" % (len(data), data) if data else b""
        if end:
            # The end of the body goes out with the last events, so that a client closing as
            # soon as it has read them (the SDKs do, after [DONE]) cannot come in between.
            wire += b"0\r\n\r\n"
        return self._send(wire, chunks=chunks, events=events, end=end)

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds`, sending keep-alives as scripted; False if the stream must stop."""
        assert self._record is not None
        now = time.monotonic()
        deadline = now + seconds
        every = self._ping_every
        next_ping = now + every if every else math.inf
        while True:
            now = time.monotonic()
            if now >= deadline:
                self._checked = True
                return True
            if now >= next_ping and every:
                if not self._send(b"%x\r\n%b\r\n" % (len(self._ping), self._ping)):
                    return False
                self._record._pinged()
                next_ping = max(next_ping + every, now)
            state = self._waiter.wait(min(deadline, next_ping) - now)
            if state == "closed":
                self._record._client_closed()
                return False
            if state == "stop":
                return False


class Server:
    """A loopback HTTP server speaking the OpenAI and Anthropic streaming APIs from scripts.

    It binds 127.0.0.1 on a free port and serves on background threads. Each request takes
    the next pushed `Script` (the last one is reused when none is queued); every request is
    recorded as a live `RecordedRequest`. Paths ending in `/chat/completions` speak
    OpenAI, paths ending in `/responses` OpenAI's Responses API, paths ending in
    `/messages` speak Anthropic, so the real SDKs work against `server.url` unchanged; so do
    the anthropic SDK's Vertex AI client (`:streamRawPredict`, Anthropic's events) and
    Bedrock client (`/invoke-with-response-stream`, the same events in AWS's event-stream
    framing).

    >>> import anthropic
    >>> with Server(Script("Hello there.")) as server:
    ...     client = anthropic.Anthropic(base_url=server.url, api_key="test")
    ...     with client.messages.stream(model="m", max_tokens=50,
    ...             messages=[{"role": "user", "content": "hi"}]) as stream:
    ...         stream.get_final_message().content[0].text
    ...     server.last.protocol, server.last.chunks_written
    'Hello there.'
    ('anthropic', 2)
    """

    def __init__(self, script: Script | str | None = None) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._scripts: collections.deque[Script] = collections.deque()
        self._last_script: Script | None = None
        self._requests: list[RecordedRequest] = []
        self._handed_out = 0
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._port = 0
        self._closed = False
        if script is not None:
            self.push(script)

    # Lifecycle.

    def start(self) -> Server:
        """Start serving in the background (once); return the server.

        >>> server = Server().start()
        >>> server.url.startswith("http://127.0.0.1:")
        True
        >>> server.close()
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("this Server was closed; create a new one")
            if self._listener is not None:
                return self
            listener = socket.create_server((_HOST, 0), backlog=1024)
            listener.setblocking(False)
            self._listener = listener
            self._port = listener.getsockname()[1]
            # Written once by close(), never read: it stays readable, so it wakes every
            # thread that waits, also the ones that start waiting later.
            self._wake = socket.socketpair()
            self._acceptor = threading.Thread(
                target=self._accept,
                args=(listener, self._wake[0]),
                name="rxllm-testing-server",
                daemon=True,
            )
            self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop serving: end every stream in progress (also hanging ones) and free the port.

        >>> server = Server().start()
        >>> server.close()
        >>> server.close()  # closing twice is fine
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping.set()
            if self._wake is not None:
                self._wake[1].send(b"x")
            for conn in self._connections:
                # Unblocks a thread stuck writing to a client that does not read.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        if self._acceptor is not None:
            self._acceptor.join()
        if self._listener is not None:
            self._listener.close()
        deadline = time.monotonic() + _CLOSE_GRACE
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._wake is not None and not any(thread.is_alive() for thread in threads):
            # A thread still running may still wait on the wake-up socket.
            for end in self._wake:
                end.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self._port and not self._closed else "not serving"
        return f"<rxllm.testing.Server {where}, {len(self._requests)} requests>"

    @property
    def url(self) -> str:
        """The base URL to give an SDK client: `http://127.0.0.1:PORT`.

        >>> with Server() as server:
        ...     server.url.startswith("http://127.0.0.1:")
        True
        """
        if not self._port:
            raise RuntimeError("the Server is not started: use `with Server() as server:`")
        return f"http://{_HOST}:{self._port}"

    # Scripts and recordings.

    def push(self, script: Script | str) -> None:
        """Queue `script` (a text is `Script(text)`) as the answer to the next request.

        >>> server = Server()
        >>> server.push(Script("Hi.", status=429))
        >>> server.push("Hello again.")
        """
        if isinstance(script, str):
            script = Script(script)
        if not isinstance(script, Script):
            raise TypeError(f"Server.push takes a Script (or a str), not {type(script).__name__}")
        with self._lock:
            self._scripts.append(script)

    def _take_script(self, record: RecordedRequest) -> Script | None:
        with self._changed:
            if self._scripts:
                self._last_script = self._scripts.popleft()
            self._requests.append(record)
            self._changed.notify_all()
            return self._last_script

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, in arrival order (a copy of the list).

        >>> Server().requests
        []
        """
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> RecordedRequest:
        """The latest request received; `LookupError` if none arrived yet.

        >>> Server().last
        Traceback (most recent call last):
        ...
        LookupError: no request has reached the server yet ...
        """
        with self._lock:
            if not self._requests:
                raise LookupError(
                    "no request has reached the server yet (use server.wait_for_request() "
                    "to wait for one, and check the client's base_url is server.url)"
                )
            return self._requests[-1]

    async def wait_for_request_async(self, timeout: float = 5.0) -> RecordedRequest:
        """`wait_for_request` for asyncio tests: waits without blocking the event loop (the
        call that sends the request may be a task on that loop)."""
        return await asyncio.to_thread(self.wait_for_request, timeout)

    def wait_for_request(self, timeout: float = 5.0) -> RecordedRequest:
        """Block until a request arrives that no earlier call returned; return it.

        Successive calls return successive requests; `TimeoutError` after `timeout` seconds.

        >>> with Server() as server:
        ...     server.wait_for_request(timeout=0.01)
        Traceback (most recent call last):
        ...
        TimeoutError: no new request reached the server within 0.01 s (0 so far)
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) > self._handed_out, timeout):
                raise TimeoutError(
                    f"no new request reached the server within {timeout} s "
                    f"({len(self._requests)} so far)"
                )
            record = self._requests[self._handed_out]
            self._handed_out += 1
            return record

    # Threads.

    def _accept(self, listener: socket.socket, wake_socket: socket.socket) -> None:
        wake = wake_socket.fileno()
        readiness = _Readiness(listener.fileno(), wake)
        timeout: float | None = None
        while True:
            ready = readiness.ready(timeout)
            if wake in ready or self._stopping.is_set():
                return
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                # Out of file descriptors, say: the connection stays queued, so wait a
                # little for some to be freed instead of spinning on it.
                timeout = 0.01
                continue
            timeout = None
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(
                target=self._serve,
                args=(sock, wake_socket),
                name="rxllm-testing-stream",
                daemon=True,
            )
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._connections.add(sock)
                self._threads.add(thread)
                thread.start()

    def _serve(self, sock: socket.socket, wake: socket.socket) -> None:
        try:
            _Connection(self, sock, wake).serve()
        finally:
            with self._lock:
                self._connections.discard(sock)
                self._threads.discard(threading.current_thread())
            sock.close()
