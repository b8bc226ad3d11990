"""Serving apps for the web tests: a real uvicorn server on 127.0.0.1, read with httpx."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from rxllm.sse import SSEDecoder


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` with uvicorn on a free port of 127.0.0.1; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def parse_events(body: bytes) -> list[tuple[str | None, str]]:
    """A whole SSE body as `(event name, data)` pairs."""
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.flush()
    return [(name, data.decode()) for name, data in events]


def ui_events(body: bytes) -> list[dict[str, Any]]:
    """A UI message stream body as its JSON events; checks it ends with `[DONE]` and holds
    nothing else."""
    events = parse_events(body)
    assert events[-1] == (None, "[DONE]"), events[-3:]
    assert all(name is None for name, _ in events)
    return [json.loads(data) for _, data in events[:-1]]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An httpx client with a timeout that turns a hang into a failure."""
    with httpx.Client(timeout=30) as http:
        yield http
