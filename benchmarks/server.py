"""A lean loopback SSE server for the benchmarks, run in its own process.

`rxllm.testing.Server` gives every connection a thread and encodes every chunk as it
writes it: right for tests, too heavy to feed a thousand streams, or 100k chunks as fast
as a client can read them. This one is one asyncio loop that serves pre-encoded bodies
(`benchmarks.bodies`) with HTTP/1.1 keep-alive and a chunked body, like the real APIs.

What to stream is said by the request's model name, a query string, so any client (the
SDKs, rxllm, raw httpx2) can ask for it without extra headers:

    bench?n=100000              100k chunks, written as fast as the client reads them
    bench?n=1000&every=0.01     one chunk every 10 ms (the first at once)
    bench?n=200&every=0.005&tag=c1
                                ... and record every write's time and when the client left

The path picks the protocol: `.../chat/completions` is OpenAI, `.../messages` Anthropic,
`.../responses` OpenAI's Responses API.
`GET /_record?tag=...` returns a tagged stream's recording as JSON (times are
`time.monotonic()`, which is CLOCK_MONOTONIC and so comparable across processes on Linux);
`GET /_stats` returns and resets the pacer's lateness, the connections opened and the
process's CPU time.

Paced streams are driven by one 1 ms ticker, not a timer per stream: a stream belongs to
one of `every / 1 ms` buckets, and each tick serves one bucket, writing whatever chunks
are due, each event still its own HTTP chunk (so a late tick catches up instead of
slowing the stream down, and the client reads what a real API would send).

    python -m benchmarks.server [--port 0] [--prepare 10000,100000] [--cpu 1]

prints `PORT <n>` once it listens, and stops on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import signal
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from benchmarks import bodies
from benchmarks.bodies import Protocol

__all__ = ["main"]

_TICK = 0.001
_MAX_REQUEST = 1 << 20
_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"x-request-id: req_bench\r\n"
    b"\r\n"
)


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@functools.lru_cache(maxsize=16)
def _whole(protocol: Protocol, n: int) -> bytes:
    """The complete response of an unpaced stream, head to last chunk, made once: building
    it per request copied the body three times before the first byte was sent (~100 ms at
    300k chunks, a server cost that section 6 counted against rxllm's scaling)."""
    return b"".join([_HEAD, _chunked(bodies.body(protocol, n)), b"0\r\n\r\n"])


def _plain(status: int, payload: Any) -> bytes:
    data = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n\r\n"
    ).encode() + data


class Recording:
    """What happened to one tagged stream, for the cancellation measurement."""

    __slots__ = ("closed_at", "first_write_at", "writes")

    def __init__(self) -> None:
        self.writes: list[tuple[float, int]] = []  # (monotonic time, chunks in that write)
        self.closed_at: float | None = None
        self.first_write_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "closed_at": self.closed_at,
            "first_write_at": self.first_write_at,
            "writes": self.writes,
        }


class Stats:
    """How well the pacer keeps its schedule (reset by each `GET /_stats`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.since = time.monotonic()
        self.cpu_since = time.process_time()
        self.chunks = 0
        self.writes = 0
        self.late_sum = 0.0
        self.late_max = 0.0
        self.connections = 0

    def as_json(self) -> dict[str, Any]:
        wall = time.monotonic() - self.since
        return {
            "wall_s": wall,
            "cpu_s": time.process_time() - self.cpu_since,
            "chunks": self.chunks,
            "writes": self.writes,
            "late_mean_ms": 1000 * self.late_sum / self.writes if self.writes else 0.0,
            "late_max_ms": 1000 * self.late_max,
            "connections": self.connections,
        }


class PacedStream:
    """A response body written one chunk per `every` seconds."""

    __slots__ = ("conn", "every", "recording", "sent", "start", "ticks")

    def __init__(
        self, conn: Connection, ticks: tuple[bytes, ...], every: float, recording: Recording | None
    ) -> None:
        self.conn = conn
        self.ticks = ticks
        self.every = every
        self.start = time.monotonic()
        self.sent = 0
        self.recording = recording

    def pump(self, now: float, stats: Stats) -> bool:
        """Write the chunks due by `now`; False once the body is complete or the client gone."""
        if self.conn.closed:
            return False
        due = min(len(self.ticks), int((now - self.start) / self.every) + 1)
        if due <= self.sent:
            return True
        last = due == len(self.ticks)
        # One HTTP chunk per event even when late ticks are served together: a real API
        # flushes each event as it is generated, and the client's HTTP stack pays per chunk
        # (joining them would make a server that falls behind look cheaper to read).
        wire = b"".join([_chunked(tick) for tick in self.ticks[self.sent : due]])
        if last:
            wire += b"0\r\n\r\n"
        count = due - self.sent
        late = now - (self.start + (due - 1) * self.every)
        stats.writes += 1
        stats.chunks += count
        stats.late_sum += late
        stats.late_max = max(stats.late_max, late)
        self.conn.write(wire, count, self.recording)
        self.sent = due
        if last:
            self.conn.response_done()
            return False
        return True


class Pacer:
    """One 1 ms ticker for every paced stream, spread over `every / 1 ms` buckets."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stats: Stats) -> None:
        self._loop = loop
        self._stats = stats
        self._buckets: dict[int, list[list[PacedStream]]] = {}  # ticks per period -> buckets
        self._next: dict[int, int] = {}
        self._count = 0
        self._handle: asyncio.TimerHandle | None = None
        self._epoch = loop.time()
        self._tick_no = 0

    def add(self, stream: PacedStream) -> None:
        period = max(1, round(stream.every / _TICK))
        buckets = self._buckets.setdefault(period, [[] for _ in range(period)])
        slot = self._next.get(period, 0)
        self._next[period] = (slot + 1) % period
        buckets[slot].append(stream)
        self._count += 1
        if self._handle is None:
            self._epoch = self._loop.time()
            self._tick_no = 0
            self._schedule()

    def _schedule(self) -> None:
        self._tick_no += 1
        self._handle = self._loop.call_at(self._epoch + self._tick_no * _TICK, self._tick)

    def _tick(self) -> None:
        # Ticks that came late are served together: every bucket they cover, once.
        now_loop = self._loop.time()
        behind = int((now_loop - self._epoch) / _TICK)
        first = self._tick_no
        last = max(first, behind)
        now = time.monotonic()
        stats = self._stats
        for period, buckets in self._buckets.items():
            slots = {tick % period for tick in range(first, min(last, first + period - 1) + 1)}
            for slot in slots:
                bucket = buckets[slot]
                if bucket:
                    kept = [stream for stream in bucket if stream.pump(now, stats)]
                    self._count -= len(bucket) - len(kept)
                    buckets[slot] = kept
        self._tick_no = last
        if self._count > 0:
            self._schedule()
        else:
            self._handle = None
            self._buckets.clear()


class Connection(asyncio.Protocol):
    """One client connection: requests in, keep-alive responses out."""

    def __init__(self, server: BenchServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._busy = False
        self._recording: Recording | None = None
        self.closed = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _MAX_REQUEST:
            self._close()
            return
        self._next_request()

    def eof_received(self) -> bool:
        self._gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()

    # helpers for the streams

    def write(self, data: bytes, chunks: int, recording: Recording | None) -> None:
        assert self._transport is not None
        if recording is not None:
            now = time.monotonic()
            if recording.first_write_at is None:
                recording.first_write_at = now
            recording.writes.append((now, chunks))
        self._transport.write(data)

    def response_done(self) -> None:
        self._busy = False
        self._recording = None
        self._next_request()

    # internals

    def _gone(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._recording is not None and self._recording.closed_at is None:
            self._recording.closed_at = time.monotonic()

    def _close(self) -> None:
        self._gone()
        if self._transport is not None:
            self._transport.close()

    def _next_request(self) -> None:
        if self._busy or self.closed:
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end].decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            self._close()
            return
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
        if len(self._buffer) < end + 4 + length:
            return
        payload = self._buffer[end + 4 : end + 4 + length]
        self._buffer = self._buffer[end + 4 + length :]
        self._busy = True
        self._handle(method, target, payload)

    def _reply(self, status: int, payload: Any) -> None:
        assert self._transport is not None
        self._transport.write(_plain(status, payload))
        self.response_done()

    def _handle(self, method: str, target: str, payload: bytes) -> None:
        url = urlsplit(target)
        path = url.path.rstrip("/")
        if method == "GET" and path == "/_record":
            tag = parse_qs(url.query).get("tag", [""])[0]
            recording = self._server.recordings.get(tag)
            self._reply(200, recording.as_json() if recording else None)
            return
        if method == "GET" and path == "/_stats":
            stats = self._server.stats
            result = stats.as_json()
            stats.reset()
            self._reply(200, result)
            return
        if method == "GET" and path == "/_health":
            self._reply(200, {"ok": True})
            return
        if path.endswith("/chat/completions"):
            protocol: bodies.Protocol = "openai"
        elif path.endswith("/messages"):
            protocol = "anthropic"
        elif path.endswith("/responses"):
            protocol = "openai-responses"
        else:
            self._reply(404, {"error": {"message": f"no endpoint {path}"}})
            return
        try:
            request = json.loads(payload)
            query = parse_qs(urlsplit(request["model"]).query)
            n = int(query["n"][0])
            every = float(query.get("every", ["0"])[0])
            tag = query.get("tag", [""])[0]
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": {"message": f"bad benchmark request: {exc!r}"}})
            return
        recording = None
        if tag:
            recording = self._server.recordings[tag] = Recording()
            self._recording = recording
        assert self._transport is not None
        ticks = bodies.ticks(protocol, n)
        if every <= 0:
            self._transport.write(_whole(protocol, n))
            self.response_done()
            return
        self._transport.write(_HEAD)
        stream = PacedStream(self, ticks, every, recording)
        if stream.pump(time.monotonic(), self._server.stats):
            self._server.pacer.add(stream)


class BenchServer:
    """The listening server: recordings, stats and the pacer shared by all connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stats = Stats()
        self.pacer = Pacer(loop, self.stats)
        self.recordings: dict[str, Recording] = {}


async def _serve(port: int, prepare: list[int]) -> None:
    loop = asyncio.get_running_loop()
    for n in prepare:
        for protocol in ("openai", "anthropic", "openai-responses"):
            _whole(protocol, n)  # type: ignore[arg-type]
    server_state = BenchServer(loop)
    server = await loop.create_server(
        lambda: Connection(server_state), "127.0.0.1", port, backlog=4096
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # The parent holds our stdin: when it dies (or closes it), we stop too.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1024) else None)
    async with server:
        await stop.wait()


def raise_fd_limit() -> None:
    """Allow thousands of sockets (the soft limit is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--prepare", default="", help="chunk counts to encode up front, e.g. 10000,100000"
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {args.cpu})
    raise_fd_limit()
    prepare = [int(n) for n in args.prepare.split(",") if n.strip()]
    asyncio.run(_serve(args.port, prepare))


if __name__ == "__main__":
    main()
