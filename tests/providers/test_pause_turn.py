"""tool_loop and Anthropic's pause_turn: a paused turn goes back as it is and is continued."""

from __future__ import annotations

from reactivex import operators as rx

import rxllm
from rxllm import ops
from rxllm.models import Chunk, Usage
from rxllm.testing import Script, Server

from .anthropic_events import block, message

SEARCH = {"type": "web_search_20250305", "name": "web_search"}  # the provider runs it
USE = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_1",
    "content": [
        {
            "type": "web_search_result",
            "url": "https://example.com",
            "title": "Ex",
            "encrypted_content": "ENC",
            "page_age": None,
        }
    ],
}


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _paused(tokens: tuple[int, int] = (10, 5)) -> Script:
    return message(
        block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Searching. "}),
        block(1, USE, {"type": "input_json_delta", "partial_json": '{"query": "oslo"}'}),
        block(2, RESULT),
        reason="pause_turn",
        tokens=tokens,
    )


def _llm(server: Server) -> rxllm.LLM:
    return rxllm.anthropic("claude-x", base_url=server.url, api_key="sk-pause", max_retries=0)


def test_a_paused_turn_goes_back_as_it_is_and_is_continued(server: Server) -> None:
    server.push(_paused(tokens=(10, 5)))
    server.push(
        message(
            block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Sunny."}),
            reason="end_turn",
            tokens=(40, 3),
        )
    )
    seen: list[Chunk] = []
    stream = _llm(server).stream("Weather in Oslo?", tools=[weather, SEARCH])
    answer = rxllm.collect(stream.pipe(ops.tool_loop(), rx.do_action(seen.append)), timeout=10)
    assert len(server.requests) == 2
    sent = server.requests[1].body["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Oslo?"}
    assert sent[1]["role"] == "assistant" and len(sent) == 2  # no turn added after it
    assert [b["type"] for b in sent[1]["content"]] == ["text", "server_tool_use", RESULT["type"]]
    assert sent[1]["content"][2]["content"][0]["encrypted_content"] == "ENC"
    # one step, as one turn: the text of both calls, their usage added up
    assert answer.text == "Searching. Sunny."
    assert answer.steps == () and answer.finish_reason == "stop"
    assert answer.usage == Usage(input_tokens=50, output_tokens=8, total_tokens=58)
    assert [c.finish_reason for c in seen if c.finish_reason] == ["stop"]


def test_client_tools_after_a_paused_turn_run_and_the_loop_goes_on(server: Server) -> None:
    server.push(_paused())
    server.push(
        message(
            block(
                0,
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
                {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'},
            ),
            reason="tool_use",
            tokens=(50, 7),
        )
    )
    server.push(
        message(
            block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Sunny."}),
            reason="end_turn",
            tokens=(60, 2),
        )
    )
    stream = _llm(server).stream("Weather in Oslo?", tools=[weather, SEARCH])
    answer = rxllm.collect(stream.pipe(ops.tool_loop()), timeout=10)
    assert answer.text == "Sunny."
    assert [r.output for r in answer.steps[0].tool_results] == ["sunny in Oslo"]
    third = server.requests[2].body["messages"]
    # the paused turn, its continuation with the tool call, then the result
    assert [m["role"] for m in third] == ["user", "assistant", "assistant", "user"]
    assert [b["type"] for b in third[1]["content"]] == ["text", "server_tool_use", RESULT["type"]]
    assert third[2]["content"][0]["type"] == "tool_use"
    assert third[3]["content"][0]["type"] == "tool_result"


def test_a_turn_paused_again_and_again_ends_at_max_steps(server: Server) -> None:
    server.push(_paused())  # reused for every request
    stream = _llm(server).stream("Weather in Oslo?", tools=[weather, SEARCH])
    answer = rxllm.collect(stream.pipe(ops.tool_loop(max_steps=3)), timeout=10)
    assert len(server.requests) == 3
    assert answer.finish_reason == "pause_turn"
    assert answer.usage == Usage(input_tokens=30, output_tokens=15, total_tokens=45)
