"""A finished stream hands its connection back to the pool: no new TCP/TLS per call.

rxllm stops reading at `[DONE]` / `message_stop`; it then drains the end of the body so
the SDK's connection pool can reuse the connection. `rxllm.testing.Server` closes every
connection, so this file has a minimal keep-alive server that counts connections.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import threading
from collections.abc import Iterator

import pytest

import rxllm

OPENAI_BODY = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_BODY = "".join(
    f"event: {e['type']}\ndata: {json.dumps(e)}\n\n"
    for e in [
        {
            "type": "message_start",
            "message": {
                "id": "m1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 2},
        },
        {"type": "message_stop"},
    ]
).encode()


class KeepAliveServer:
    """Serves every request with one SSE body, keeping connections open; counts them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn:
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                path = request_line.split()[1].decode()
                reader.read(length)
                self.requests += 1
                body = OPENAI_BODY if path.endswith("/chat/completions") else ANTHROPIC_BODY
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                    + f"{len(body):x}\r\n".encode()
                    + body
                    + b"\r\n0\r\n\r\n"
                )

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def keep_alive() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer()
    yield server
    server.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_sync_calls_reuse_one_connection(keep_alive: KeepAliveServer, provider: str) -> None:
    llm = getattr(rxllm, provider)("m", base_url=keep_alive.url, api_key="k")
    for _ in range(4):
        assert rxllm.collect(llm.stream("x"), timeout=10).text == "hi"
    assert keep_alive.requests == 4
    assert keep_alive.connections == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_async_calls_reuse_one_connection(keep_alive: KeepAliveServer, provider: str) -> None:
    llm = getattr(rxllm, provider)("m", base_url=keep_alive.url, api_key="k")

    async def main() -> None:
        for _ in range(4):
            assert (await rxllm.acollect(llm.stream("x"), timeout=10)).text == "hi"

    asyncio.run(main())
    assert keep_alive.requests == 4
    assert keep_alive.connections == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_each_asyncio_run_does_not_leave_its_client_behind(
    keep_alive: KeepAliveServer, provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each asyncio.run is a new loop with its own client; a closed loop's client (whose
    # pooled connection keeps the loop alive) is let go when the next loop needs one, and
    # dropping the LLM inside a later loop prints no failed aclose() tasks.
    llm = getattr(rxllm, provider)("m", base_url=keep_alive.url, api_key="k")
    for _ in range(5):
        assert asyncio.run(rxllm.acollect(llm.stream("x"), timeout=10)).text == "hi"
    assert len(llm._provider._async_clients) == 1  # type: ignore[attr-defined]

    async def drop() -> None:
        nonlocal llm
        del llm
        gc.collect()
        await asyncio.sleep(0.05)

    asyncio.run(drop())
    gc.collect()
    assert "Event loop is closed" not in capsys.readouterr().err


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_one_llm_on_loops_in_several_threads_at_once(
    keep_alive: KeepAliveServer, provider: str
) -> None:
    # Each thread runs its own loops one after another; the table of per-loop clients is
    # shared (the cleanup of closed loops raced: KeyError, 'dictionary changed size').
    llm = getattr(rxllm, provider)("m", base_url=keep_alive.url, api_key="k")
    failures: list[BaseException] = []

    def worker() -> None:
        for _ in range(15):
            try:
                assert asyncio.run(rxllm.acollect(llm.stream("x"), timeout=10)).text == "hi"
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert keep_alive.requests == 90


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("how", ["take_until", "on_next raises"])
def test_an_asyncio_call_stopped_from_its_own_notification_leaves_no_pool_entry(
    provider: str, how: str, transport: str
) -> None:
    # The stop used to cancel the call's task as well, which interrupted the response's
    # close: every such call left its request in the SDK's connection pool for ever.
    from reactivex import operators as rx

    from rxllm import ops
    from rxllm.testing import Script, Server

    def boom(chunk: rxllm.Chunk) -> None:
        if "w3" in chunk.content:
            raise ValueError("stop here")

    async def main(url: str) -> int:
        llm = getattr(rxllm, provider)("m", base_url=url, api_key="k", max_retries=0)
        for _ in range(20):
            stream = llm.stream("hi")
            if how == "take_until":
                await rxllm.acollect(stream.pipe(ops.take_until(lambda c: "w3" in c.content)))
            else:
                with pytest.raises(ValueError, match="stop here"):
                    await rxllm.acollect(stream.pipe(rx.do_action(boom)))
        await asyncio.sleep(0.2)  # the last call's task closes its response
        (client,) = llm._provider._async_clients.values()  # type: ignore[attr-defined]
        if transport == "aiohttp":  # connections taken from the session's connector
            return len(client._client._transport.client.connector._acquired)
        return len(client._client._transport._pool._requests)

    with Server(Script([f"w{i} " for i in range(50)], delay=0.002)) as server:
        assert asyncio.run(main(server.url)) == 0
