"""A tool loop with two tools: the model asks, Python answers, the model answers the user.

Shows `ops.tool_loop()`: the first call asks for `weather` and `local_time` (two tool calls
in one answer); the loop runs both Python functions (arguments validated against their
signatures), sends their results back in a second call, and streams that call's answer —
all as one stream of chunks for the UI, with a chunk carrying the step's `tool_results`
between the calls. `collect` gives the last answer with the first step in `answer.steps`
and the usage of both calls in `answer.total_usage`. It runs against the loopback server
(`rxllm.testing.Server`) through the real OpenAI SDK, which records what the second request
carried.

Run:  python examples/tool_loop.py
"""

from __future__ import annotations

import rxllm
from rxllm import Chunk, ToolCallDelta, Usage, ops
from rxllm.testing import Script, Server


def weather(city: str) -> str:
    """The current weather in a city."""
    return {"Oslo": "light snow, -3 °C", "Lisbon": "sunny, 19 °C"}.get(city, "unknown")


def local_time(city: str, twenty_four_hour: bool = True) -> str:
    """The local time in a city."""
    return {"Oslo": "14:05", "Lisbon": "13:05"}.get(city, "unknown")


def call(index: int, call_id: str, name: str, arguments: str) -> Chunk:
    return Chunk(
        tool_calls=(ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments),)
    )


ASKS_FOR_TOOLS = Script(
    [
        "Let me check. ",
        call(0, "call_w", "weather", '{"city": "Oslo"}'),
        call(1, "call_t", "local_time", '{"city": "Oslo"}'),
    ],
    usage=Usage(input_tokens=120, output_tokens=40),
)
ANSWERS = Script(
    "In Oslo it is 14:05, with light snow at -3 °C: take a warm coat.",
    usage=Usage(input_tokens=190, output_tokens=25),
)


def main() -> None:
    with Server() as server:
        server.push(ASKS_FOR_TOOLS)
        server.push(ANSWERS)
        llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test")
        stream = llm.stream(
            "Should I take a coat in Oslo right now?", tools=[weather, local_time]
        ).pipe(ops.tool_loop(max_steps=4))

        for chunk in rxllm.iterate(stream):
            if chunk.tool_results:  # the end of a step: what its tools returned
                print()
                for result in chunk.tool_results:
                    print(f"  [{result.call.name}({result.call.args}) -> {result.output!r}]")
            print(chunk.content, end="", flush=True)
        print()

        server.push(ASKS_FOR_TOOLS)
        server.push(ANSWERS)
        answer = rxllm.collect(stream)  # the same loop again, collected
        usage = answer.total_usage
        print(
            f"\nsteps: {len(answer.steps) + 1}; usage of both calls: {usage.input_tokens} in, "
            f"{usage.output_tokens} out"
        )
        second = server.requests[1].body["messages"]
        print("the second request carried:")
        for message in second:
            detail = message.get("tool_call_id") or ", ".join(
                c["function"]["name"] for c in message.get("tool_calls") or []
            )
            print(f"  {message['role']:9} {detail}")


if __name__ == "__main__":
    main()
