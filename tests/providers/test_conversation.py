"""A conversation goes on: an answer becomes the next call's assistant message, in each
provider's own format, with the tool results after it (both SDKs, loopback server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import reactivex
from reactivex import operators as rx

import rxllm
from rxllm import ToolResult, ops
from rxllm.models import Chunk, ToolCallDelta
from rxllm.testing import Script, Server

KEY = "sk-conversation"


def make(provider: str, server: Server) -> rxllm.LLM:
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    return factory("test-model", base_url=server.url, api_key=KEY, max_retries=0)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


TOOL_TURN = [
    Chunk(thinking="The user wants a sum."),
    "Let me add.",
    Chunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="add", arguments='{"a": 1, '),)),
    Chunk(tool_calls=(ToolCallDelta(index=0, arguments='"b": 2}'),)),
]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tool_turn_and_its_results_make_the_next_request(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(Script(TOOL_TURN))
    first = rxllm.collect(llm.stream("What is 1+2?", tools=[add]), timeout=10)
    results = (
        reactivex.from_iterable(first.tool_calls).pipe(ops.tool_results([add]), rx.to_list()).run()
    )
    assert [r.output for r in results] == [3]
    server.push(Script("It is 3."))
    messages = [
        {"role": "user", "content": "What is 1+2?"},
        first.message(),
        *ToolResult.messages(results, provider),  # type: ignore[arg-type]
    ]
    second = rxllm.collect(llm.stream(messages=messages, tools=[add]), timeout=10)
    assert second.text == "It is 3."
    sent = server.last.body["messages"]
    if provider == "openai":
        assert sent[1:] == [
            {
                "role": "assistant",
                "content": "Let me add.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "3"},
        ]
    else:
        thinking, text, tool_use = sent[1]["content"]
        # the thinking block keeps the signature the API checks when tool results follow
        assert thinking["type"] == "thinking" and thinking["signature"]
        assert thinking["thinking"] == "The user wants a sum."
        assert text == {"type": "text", "text": "Let me add."}
        assert tool_use == {
            "type": "tool_use",
            "id": "call_1",
            "name": "add",
            "input": {"a": 1, "b": 2},
        }
        assert sent[2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "3", "is_error": False}
            ],
        }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_sdks_own_message_object_is_taken_as_a_message(server: Server, provider: str) -> None:
    # The SDKs' idiom: messages.append(completion.choices[0].message) / the Message itself.
    llm = make(provider, server)
    server.push(Script(TOOL_TURN))
    first = rxllm.collect(llm.stream("What is 1+2?", tools=[add]), timeout=10)
    native = first.raw.choices[0].message if provider == "openai" else first.raw
    server.push(Script("ok"))
    rxllm.collect(llm.stream(messages=[{"role": "user", "content": "1+2?"}, native]), timeout=10)
    (assistant,) = server.last.body["messages"][1:]
    assert assistant == first.message()  # the same as rxllm's own rendering


def test_a_local_or_scripted_answer_renders_in_either_format() -> None:
    response = rxllm.collect(rxllm.scripted(TOOL_TURN).stream("1+2?"))
    assert response.message()["content"] == "Let me add."
    assert response.message("anthropic")["content"] == [
        {"type": "text", "text": "Let me add."},
        {"type": "tool_use", "id": "call_1", "name": "add", "input": {"a": 1, "b": 2}},
    ]
    # a service known by name (rxllm.model's "gemini:") writes OpenAI's format
    assert response.message("gemini") == response.message("openai")
    with pytest.raises(ValueError, match="provider must be"):
        response.message("cohere")  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_readme_tool_recipe_runs(server: Server, provider: str) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    recipe = readme.split("Tools and conversations")[1].split("```python")[1].split("```")[0]
    server.push(Script(TOOL_TURN))
    server.push(Script("It is 3."))
    scope = {"rxllm": rxllm, "ops": ops, "llm": make(provider, server)}
    exec(recipe, scope)
    assert server.requests[-1].body["messages"][1]["role"] == "assistant"
    assert scope["results"][0].output == 3


def test_the_readme_tool_recipe_runs_on_the_scripted_provider() -> None:
    # The README says llm may be rxllm.scripted(...): ToolResult.messages(results,
    # llm.provider) used to refuse "scripted".
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    recipe = readme.split("Tools and conversations")[1].split("```python")[1].split("```")[0]
    scope = {"rxllm": rxllm, "ops": ops, "llm": rxllm.scripted(TOOL_TURN)}
    exec(recipe, scope)
    assert [m["role"] for m in scope["messages"]] == ["user", "assistant", "tool"]
    assert scope["results"][0].output == 3
    assert rxllm.ToolResult.messages(scope["results"], "local") == scope["messages"][2:]
    with pytest.raises(ValueError, match=r"one of .*'local'.*'openai'.*'scripted'"):
        rxllm.ToolResult.messages(scope["results"], "no-such-service")


def test_sdk_messages_without_content_or_with_parsed_arguments(server: Server) -> None:
    from openai.types.chat import ParsedChatCompletionMessage, ParsedFunctionToolCall
    from openai.types.chat.parsed_function_tool_call import ParsedFunction

    call = ParsedFunctionToolCall(
        id="call_1",
        type="function",
        function=ParsedFunction(name="add", arguments='{"a": 1}', parsed_arguments={"a": 1}),
    )
    only_calls = ParsedChatCompletionMessage(
        role="assistant", content=None, tool_calls=[call], parsed=None
    )
    refusal = ParsedChatCompletionMessage(
        role="assistant", content=None, refusal="I can't.", parsed=None
    )
    server.push(Script("ok"))
    llm = make("openai", server)
    rxllm.collect(llm.stream(messages=[{"role": "user", "content": "x"}, only_calls, refusal]))
    sent = server.last.body["messages"][1:]
    assert sent == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 1}'},
                }
            ],
        },
        {"role": "assistant", "content": None, "refusal": "I can't."},
    ]


def test_a_response_given_as_a_message_says_to_call_message() -> None:
    response = rxllm.collect(rxllm.scripted("Hi.").stream("hi"))
    with pytest.raises(ValueError, match=r"messages\[1\] is a Response.*response.message\(\)"):
        rxllm.scripted("x").stream(messages=[{"role": "user", "content": "x"}, response])


def test_a_thinking_block_cut_before_its_signature_is_left_out(server: Server) -> None:
    server.push(Script([Chunk(thinking=f"step {i}. ") for i in range(50)], delay=0.005))
    llm = make("anthropic", server)
    cut = rxllm.collect(
        llm.stream("think").pipe(ops.take_until(lambda c: "step 3" in c.thinking)), timeout=10
    )
    assert cut.thinking.startswith("step 0.")
    assert cut.message()["content"] == []  # no unsigned thinking block to be refused
