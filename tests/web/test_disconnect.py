"""A client that goes away cancels the provider call: the loopback server sees it leave.

The web app runs on uvicorn and calls the loopback server through the real SDKs; the
test's client reads some of the stream and disconnects. The loopback server's record says
whether the upstream response was closed and how many chunks were written after the
disconnect: at most a second's worth (counted from the script's delays), also when the
model was silent at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import rxllm
from rxllm import web
from rxllm.testing import Script, Server

from .conftest import serve

WORDS = [f"word{i} " for i in range(400)]


@pytest.fixture(params=["openai", "anthropic"])
def upstream(request: pytest.FixtureRequest, server: Server) -> rxllm.LLM:
    """An LLM on the loopback server, through the provider's real async SDK."""
    if request.param == "openai":
        return rxllm.openai("gpt-test", base_url=server.url, api_key="x", max_retries=0)
    return rxllm.anthropic("claude-test", base_url=server.url, api_key="x", max_retries=0)


@pytest.fixture
def app_url(upstream: rxllm.LLM) -> Iterator[str]:
    async def chat(request: Request) -> Response:
        await request.body()
        return web.ui_message_stream(upstream.stream("hi"))

    async def events(request: Request) -> Response:
        return web.sse(upstream.stream("hi"))

    routes = [Route("/chat", chat, methods=["POST"]), Route("/events", events)]
    with serve(Starlette(routes=routes)) as url:
        yield url


def read_then_leave(url: str, kind: str, deltas: int) -> None:
    """Read the stream until `deltas` text deltas arrived, then close the connection."""
    with httpx.Client(timeout=30) as client:
        request = (
            client.build_request("POST", f"{url}/chat", json={"messages": []})
            if kind == "ui"
            else client.build_request("GET", f"{url}/events")
        )
        response = client.send(request, stream=True)
        seen = 0
        for line in response.iter_lines():
            if seen >= deltas:
                break
            if ('"text-delta"' if kind == "ui" else '"content":"word') in line:
                seen += 1
        response.close()


@pytest.mark.parametrize("kind", ["ui", "sse"])
class TestClientLeaves:
    """Closing the connection mid-stream closes the upstream call."""

    def test_while_streaming(self, server: Server, app_url: str, kind: str) -> None:
        server.push(Script(WORDS, delay=0.05))
        read_then_leave(app_url, kind, deltas=3)
        record = server.last
        written = record.chunks_written
        assert record.wait_closed(10), "the upstream response was not closed"
        # a second at 0.05 s a chunk is 20 chunks; far fewer went out after the client left
        assert record.chunks_written - written <= 20
        assert not record.finished

    def test_while_the_model_is_silent(self, server: Server, app_url: str, kind: str) -> None:
        server.push(Script(WORDS, delay=0.5))  # half a second of silence after each word
        read_then_leave(app_url, kind, deltas=2)
        record = server.last
        written = record.chunks_written
        assert record.wait_closed(10), "the upstream response was not closed"
        # two chunks a second: the upstream call ended within a second of the disconnect
        assert record.chunks_written - written <= 2
        assert not record.finished


@pytest.mark.parametrize("kind", ["ui", "sse"])
def test_a_model_that_hangs(server: Server, app_url: str, kind: str) -> None:
    """A model that stops sending (no write could ever fail) is cancelled all the same."""
    server.push(Script(WORDS, hang_after=2))
    read_then_leave(app_url, kind, deltas=2)
    record = server.last
    assert record.wait_closed(10), "the upstream response was not closed"
    assert record.chunks_written == 2
    assert not record.finished


@pytest.mark.parametrize("kind", ["ui", "sse"])
def test_before_the_first_token(server: Server, app_url: str, kind: str) -> None:
    """A client that leaves while the model thinks before its first token."""
    server.push(Script(WORDS, first_delay=60))
    with httpx.Client(timeout=30) as client:
        request = (
            client.build_request("POST", f"{app_url}/chat", json={})
            if kind == "ui"
            else client.build_request("GET", f"{app_url}/events")
        )
        response = client.send(request, stream=True)
        assert response.status_code == 200
        server.wait_for_request(10)
        response.close()
    record = server.last
    assert record.wait_closed(10), "the upstream response was not closed"
    assert record.chunks_written == 0
