"""The protocol checked by its own client: the Vercel AI SDK's chat (`ai` 7.x, node).

`tests/web/js/chat.mjs` runs the SDK's `AbstractChat` (what `useChat` is built on) with its
default HTTP transport against an rxllm endpoint, and prints the UI messages it assembled.
The same script, collected by rxllm, gives the `Response` they must equal: text,
reasoning, tool calls and results per step, finish reason and usage. A second turn sends
the SDK's own messages back, and `ui_messages` must turn them into the conversation rxllm
itself would send. `stop()` must cancel the upstream call.

Needs node and `npm ci` in tests/web/js (done here when node_modules is missing). Without
node the test fails in CI (`CI=true`) and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import rxllm
from rxllm import Chunk, ToolCallDelta, Usage, ops, web
from rxllm.testing import Script, Server
from rxllm.web._ui_stream import finish_reason

from .conftest import serve

pytestmark = pytest.mark.slow

JS = Path(__file__).with_name("js")


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must install it (.ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the pinned `ai` package installed next to the script."""
    found = shutil.which("node")
    npm = shutil.which("npm")
    if found is None or npm is None:
        unavailable("the AI SDK protocol test needs node and npm")
    assert found is not None and npm is not None
    if not (JS / "node_modules" / "ai" / "package.json").exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            unavailable(f"npm ci in {JS} failed: {done.stderr[-2000:]}")
    return found


def run_chat(node: str, api: str, prompts: list[str], **options: Any) -> dict[str, Any]:
    config = json.dumps({"api": api, "prompts": prompts, **options})
    done = subprocess.run(
        [node, "chat.mjs", config],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def weather(city: str) -> dict[str, str]:
    """The weather in a city."""
    return {"city": city, "sky": "sunny"}


def broken(city: str) -> str:
    """A station that is down."""
    raise RuntimeError(f"no station in {city}")


def tool_call(index: int, id: str, name: str, arguments: str) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


USAGE = Usage(input_tokens=20, output_tokens=12, total_tokens=32)
FIRST_CALL = Script(
    [
        Chunk(thinking="The user wants "),
        Chunk(thinking="two cities."),
        "Let me ",
        "check both.",
        tool_call(0, "call_oslo", "weather", '{"city": '),
        tool_call(0, "", "", '"Oslo"}'),
        tool_call(1, "call_bergen", "broken", '{"city": "Bergen"}'),
    ],
    usage=USAGE,
)
SECOND_CALL = Script(
    [Chunk(thinking="Oslo is sunny."), "Sunny ", "in Oslo; ", "Bergen is down."], usage=USAGE
)
FOLLOW_UP = Script("You are welcome.", usage=USAGE)


@pytest.fixture(params=["openai", "anthropic"])
def llm(request: pytest.FixtureRequest, server: Server) -> rxllm.LLM:
    if request.param == "openai":
        return rxllm.openai("gpt-test", base_url=server.url, api_key="x", max_retries=0)
    return rxllm.anthropic("claude-test", base_url=server.url, api_key="x", max_retries=0)


@pytest.fixture
def api(llm: rxllm.LLM) -> Iterator[str]:
    """A useChat endpoint: a tool loop on the conversation the client sent."""

    async def chat(request: Request) -> Response:
        messages = web.ui_messages(await request.json(), provider=llm.provider)
        stream = llm.stream(messages=messages, tools=[weather, broken]).pipe(ops.tool_loop())
        return web.ui_message_stream(stream)

    with serve(Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])) as url:
        yield f"{url}/api/chat"


def steps_of(message: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """A UI message's parts, split at its step-start parts."""
    steps: list[list[dict[str, Any]]] = []
    for part in message["parts"]:
        if part["type"] == "step-start":
            steps.append([])
        else:
            steps[-1].append(part)
    return steps


def test_assembled_message_equals_the_response(
    node: str, server: Server, llm: rxllm.LLM, api: str
) -> None:
    for script in (FIRST_CALL, SECOND_CALL, FOLLOW_UP):
        server.push(script)
    result = run_chat(node, api, ["Weather in Oslo and Bergen?", "Thanks!"])
    assert result["status"] == "ready" and result["error"] is None

    for script in (FIRST_CALL, SECOND_CALL):
        server.push(script)
    question = [{"role": "user", "content": "Weather in Oslo and Bergen?"}]
    stream = llm.stream(messages=question, tools=[weather, broken]).pipe(ops.tool_loop())
    answer = rxllm.collect(stream)
    assert len(answer.steps) == 1

    user, assistant, _, follow_up = result["messages"]
    assert user["parts"] == [{"type": "text", "text": "Weather in Oslo and Bergen?"}]
    steps = steps_of(assistant)
    assert len(steps) == len(answer.steps) + 1
    for parts, expected in zip(steps, [*answer.steps, answer], strict=True):
        texts = [p for p in parts if p["type"] == "text"]
        assert "".join(p["text"] for p in texts) == expected.text
        assert all(p["state"] == "done" for p in texts)
        reasoning = "".join(p["text"] for p in parts if p["type"] == "reasoning")
        assert reasoning == expected.thinking
        tools = [p for p in parts if p["type"].startswith("tool-")]
        assert [(p["type"], p["toolCallId"], p["input"]) for p in tools] == [
            (f"tool-{c.name}", c.id, c.args) for c in expected.tool_calls
        ]
        for part, result_of in zip(tools, expected.tool_results, strict=True):
            if result_of.is_error:
                assert (part["state"], part["errorText"]) == ("output-error", result_of.error)
            else:
                assert (part["state"], part["output"]) == ("output-available", result_of.output)
    assert steps[0][0]["type"] == "reasoning"  # the parts come in the order they streamed

    first, second = result["finishes"]
    assert first["finishReason"] == finish_reason(answer.finish_reason) == "stop"
    assert not (first["isAbort"] or first["isError"] or first["isDisconnect"])
    total = answer.total_usage
    assert total is not None
    assert assistant["metadata"]["usage"]["outputTokens"] == total.output_tokens
    assert assistant["metadata"]["usage"]["inputTokens"] == total.input_tokens

    # the second turn: the SDK sent its messages back, rxllm made them the conversation
    assert "".join(p.get("text", "") for p in follow_up["parts"]) == "You are welcome."
    assert second["finishReason"] == "stop"
    sent = server.requests[2].body["messages"]
    expected_turns = [*question, *answer.messages(), {"role": "user", "content": "Thanks!"}]
    assert comparable(sent) == comparable(expected_turns)


def comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with tool arguments parsed (their JSON spacing is the model's) and Anthropic
    thinking blocks left out (the UI message stream carries no signature to send back)."""
    result = []
    for given in messages:
        message = json.loads(json.dumps(given))
        for call in message.get("tool_calls") or []:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        if isinstance(message.get("content"), list):
            message["content"] = [b for b in message["content"] if b.get("type") != "thinking"]
        result.append(message)
    return result


def test_an_error_reaches_the_client(node: str, server: Server, api: str) -> None:
    server.push(Script(["Half ", "an ", "answer"], error_event="overloaded_error"))
    result = run_chat(node, api, ["Hi"])
    assert result["status"] == "error"
    assert result["error"].startswith(("ServerStreamError: ", "StreamError: "))
    [finish] = result["finishes"]
    assert finish["isError"]
    [_, assistant] = result["messages"]
    texts = [p["text"] for p in assistant["parts"] if p["type"] == "text"]
    assert texts == ["Half an answer"]  # what came before the error stays


def test_stop_cancels_the_model(node: str, server: Server, api: str) -> None:
    server.push(Script([f"word{i} " for i in range(500)], delay=0.05))
    result = run_chat(node, api, ["Talk"], stopAfter=30)
    record = server.last
    written = record.chunks_written
    assert record.wait_closed(10), "stop() did not close the upstream call"
    assert record.chunks_written - written <= 20  # a second at 0.05 s a chunk
    assert not record.finished
    [finish] = result["finishes"]
    assert finish["isAbort"]
    [_, assistant] = result["messages"]
    text = "".join(p["text"] for p in assistant["parts"] if p["type"] == "text")
    assert len(text) >= 30 and len(text.split()) <= record.chunks_written
