"""`ops.tool_loop` against the real SDKs on the loopback server: each step's request carries
the previous answers and tool results in the provider's format, a Stop in any step cancels
the HTTP stream in flight and makes no further call, and errors carry every step so far."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as rx

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing import Script, Server

from .anthropic_events import block, message

KEY = "sk-tool-loop"
PROVIDERS = ["openai", "anthropic"]


def make(provider: str, server: Server, **defaults: Any) -> rxllm.LLM:
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    return factory("test-model", base_url=server.url, api_key=KEY, max_retries=0, **defaults)


def weather(city: str) -> str:
    """The weather in a city."""
    return {"Oslo": "sunny", "Rome": "rainy"}.get(city, "unknown")


def call(index: int, id: str, name: str, arguments: str) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


TWO_CALLS = Script(
    [
        "Let me check.",
        call(0, "call_1", "weather", '{"city": "Oslo"}'),
        call(1, "call_2", "weather", '{"city": "Rome"}'),
    ],
    usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15),
)
ANSWER = Script(
    "Oslo is sunny, Rome is rainy.", usage=Usage(input_tokens=30, output_tokens=8, total_tokens=38)
)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tools_run_and_their_results_make_the_next_request(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(ANSWER)
    chunks = rxllm.iterate(
        llm.stream("Weather in Oslo and Rome?", tools=[weather]).pipe(ops.tool_loop())
    )
    seen = list(chunks)

    assert len(server.requests) == 2
    boundary = [c for c in seen if c.tool_results]
    assert len(boundary) == 1
    assert [r.output for r in boundary[0].tool_results] == ["sunny", "rainy"]
    assert "".join(c.content for c in seen) == "Let me check.Oslo is sunny, Rome is rainy."

    sent = server.requests[1].body["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Oslo and Rome?"}
    if provider == "openai":
        assert sent[1]["role"] == "assistant" and sent[1]["content"] == "Let me check."
        assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_1", "call_2"]
        assert sent[2:] == [
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
        ]
    else:
        assert [b["type"] for b in sent[1]["content"]] == ["text", "tool_use", "tool_use"]
        assert sent[1]["content"][1]["input"] == {"city": "Oslo"}
        assert sent[2] == {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1",
                    "content": "sunny",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": "rainy",
                    "is_error": False,
                },
            ],
        }
    # the same tools are offered again
    assert server.requests[1].body["tools"] == server.requests[0].body["tools"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_collect_gives_the_last_answer_with_every_step(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(ANSWER)
    answer = rxllm.collect(
        llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop()), timeout=10
    )
    assert answer.text == "Oslo is sunny, Rome is rainy."
    assert answer.finish_reason == "stop" and answer.tool_calls == ()
    (first,) = answer.steps
    assert first.text == "Let me check." and first.finish_reason == "tool_calls"
    assert [c.args for c in first.tool_calls] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert [r.content for r in first.tool_results] == ["sunny", "rainy"]
    assert answer.usage is not None and answer.usage.output_tokens == 8
    assert answer.total_usage is not None and answer.total_usage.output_tokens == 13
    # each step's raw is that call's own provider object
    assert answer.raw is not None and first.raw is not None
    assert answer.raw.id != first.raw.id or provider == "anthropic"
    if provider == "openai":
        raw_texts = [r.raw.choices[0].message.content for r in (first, answer)]
        raw_calls = [len(r.raw.choices[0].message.tool_calls or ()) for r in (first, answer)]
    else:
        raw_texts = [
            "".join(b.text for b in r.raw.content if b.type == "text") for r in (first, answer)
        ]
        raw_calls = [sum(b.type == "tool_use" for b in r.raw.content) for r in (first, answer)]
    assert raw_texts == ["Let me check.", "Oslo is sunny, Rome is rainy."]
    assert raw_calls == [2, 0]
    # the whole exchange, ready to go on with the conversation
    turns = answer.messages()
    assert turns[:-1] == server.requests[1].body["messages"][1:]
    assert turns[-1] == answer.message()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_loop_works_from_asyncio_with_async_tools(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(ANSWER)
    threads: list[threading.Thread] = []

    async def slow_weather(city: str) -> str:
        """The weather in a city, slowly."""
        threads.append(threading.current_thread())
        await asyncio.sleep(0.01)
        return weather(city)

    async def main() -> rxllm.Response:
        # the model is offered `weather`; the loop runs the async version under that name
        stream = llm.stream("Weather?", tools=[weather]).pipe(
            ops.tool_loop({"weather": slow_weather}, concurrency=2)
        )
        return await rxllm.acollect(stream)

    answer = asyncio.run(main())
    assert answer.text == "Oslo is sunny, Rome is rainy."
    assert [r.output for r in answer.steps[0].tool_results] == ["sunny", "rainy"]
    assert threads == [threading.main_thread()] * 2  # on the loop, not on a worker


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stop_in_the_second_call_cancels_its_http_stream(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(Script("Oslo is sunny and " + "more words " * 200, delay=0.01))
    stream = llm.stream("Weather?", tools=[weather]).pipe(
        ops.tool_loop(),
        ops.accumulate(),
        ops.take_until(lambda s: s.step == 1 and len(s.text) > 20),
    )
    answer = rxllm.collect(stream, timeout=10)
    second = server.requests[1]
    assert second.wait_closed(5)
    assert second.chunks_after_close == 0
    assert second.chunks_written < 50
    assert answer.finish_reason is None and answer.text.startswith("Oslo is sunny")
    assert len(answer.steps) == 1
    time.sleep(0.1)
    assert len(server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stop_while_a_tool_runs_makes_no_further_call(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(Script([call(0, "call_1", "slow", "{}")]))
    server.push(ANSWER)
    started, release = threading.Event(), threading.Event()
    stop = reactivex.subject.Subject[None]()

    def slow() -> str:
        """Takes a while."""
        started.set()
        release.wait(5)
        return "done"

    seen: list[Chunk] = []
    done = threading.Event()
    llm.stream("Go", tools=[slow]).pipe(ops.tool_loop(), ops.take_until(stop)).subscribe(
        seen.append, lambda e: done.set(), done.set
    )
    assert started.wait(5)
    stop.on_next(None)
    release.set()
    assert done.wait(5)
    time.sleep(0.2)
    assert len(server.requests) == 1
    assert not any(c.tool_results for c in seen)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_error_in_a_later_step_carries_every_step(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(Script(["Oslo is sunny, ", "Rome is"], drop_after=1))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop()), timeout=10)
    partial = caught.value.partial
    assert partial is not None
    assert partial.text == "Oslo is sunny, "
    (first,) = partial.steps
    assert first.text == "Let me check." and len(first.tool_results) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_error_before_the_next_answer_still_has_the_steps(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(Script(status=503))
    with pytest.raises(rxllm.ServerError) as caught:
        rxllm.collect(llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop()), timeout=10)
    partial = caught.value.partial
    assert partial is not None and partial.text == "" and len(partial.steps) == 1
    # the step that said nothing is left out: what step 2 was sent, no more (an empty
    # assistant turn after it would be refused by both APIs)
    assert partial.messages() == server.requests[1].body["messages"][1:]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_per_call_retry_resumes_within_a_step(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(Script(status=503))
    server.push(ANSWER)
    answer = rxllm.collect(
        llm.stream("Weather?", tools=[weather]).pipe(
            ops.tool_loop(per_call=ops.retry(attempts=2, backoff=0))
        ),
        timeout=10,
    )
    assert answer.text == "Oslo is sunny, Rome is rainy."
    assert len(server.requests) == 3
    assert server.requests[2].body["messages"] == server.requests[1].body["messages"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_max_steps_stops_a_model_that_keeps_calling(server: Server, provider: str) -> None:
    llm = make(provider, server)
    for i in range(3):
        server.push(Script([call(0, f"call_{i}", "weather", '{"city": "Oslo"}')]))
    answer = rxllm.collect(
        llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop(max_steps=3)), timeout=10
    )
    assert len(server.requests) == 3
    assert len(answer.steps) == 2
    assert answer.finish_reason == "tool_calls" and answer.tool_calls[0].id == "call_2"
    # the last call's tools ran too, so the exchange is one the provider takes back
    assert answer.tool_results[0].output == "sunny"
    server.push(Script("Sunny."))
    history = [{"role": "user", "content": "Weather?"}, *answer.messages()]
    assert rxllm.collect(llm.stream(messages=history, tools=[weather])).text == "Sunny."
    roles = [m["role"] for m in server.requests[-1].body["messages"]]
    if provider == "openai":
        assert roles == ["user"] + ["assistant", "tool"] * 3
    else:
        assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_calls_and_text_read_every_step(server: Server, provider: str) -> None:
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(Script([call(0, "call_3", "weather", '{"city": "Paris"}')]))
    server.push(ANSWER)
    shared = llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop(), rx.publish())
    names: list[str] = []
    texts: list[str] = []
    shared.pipe(ops.tool_calls()).subscribe(lambda c: names.append(c.id or ""))
    done = threading.Event()
    shared.pipe(ops.text()).subscribe(texts.append, lambda e: done.set(), done.set)
    shared.connect()
    assert done.wait(10)
    assert names == ["call_1", "call_2", "call_3"]
    assert "".join(texts) == "Let me check.Oslo is sunny, Rome is rainy."


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_readme_tool_loop_runs(
    server: Server, provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    recipe = readme.split("Tool loops:")[1].split("```python")[1].split("```")[0]
    server.push(Script(["Let me look.", call(0, "call_1", "weather", '{"city": "Oslo"}')]))
    server.push(Script("It is sunny in Oslo."))
    exec(recipe, {"rxllm": rxllm, "ops": ops, "llm": make(provider, server)})
    assert capsys.readouterr().out == (
        "Let me look.\n[weather({'city': 'Oslo'}) -> sunny]\nIt is sunny in Oslo."
    )
    assert len(server.requests) == 2


# --- found by an audit of the first version; each failed on it -----------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stop_during_a_sync_tool_starts_none_of_the_others(server: Server, provider: str) -> None:
    ran: list[int] = []
    started, release = threading.Event(), threading.Event()

    def slow(n: int) -> int:
        """Slow."""
        ran.append(n)
        started.set()
        release.wait(5)
        return n

    llm = make(provider, server)
    server.push(Script([call(i, f"c{i}", "slow", f'{{"n": {i}}}') for i in range(4)]))
    server.push(ANSWER)
    stop = reactivex.subject.Subject[None]()
    done = threading.Event()
    llm.stream("Go", tools=[slow]).pipe(ops.tool_loop(), ops.take_until(stop)).subscribe(
        lambda _: None, lambda _: done.set(), done.set
    )
    assert started.wait(5)
    stop.on_next(None)
    release.set()
    assert done.wait(5)
    time.sleep(0.3)  # had the next tools started, they would have by now
    assert ran == [0]
    assert len(server.requests) == 1


def test_a_step_resumed_by_retry_goes_back_as_what_was_said(server: Server) -> None:
    # Anthropic's raw message of a resumed step mixes two calls' events; the turn sent back
    # is built from the answer's fields then (the text once, the call with its arguments)
    llm = make("anthropic", server)
    oslo = call(0, "c1", "weather", '{"city": "Oslo"}')
    server.push(Script(["Let me check ", "the weather ", "now.", oslo], drop_after=2))
    server.push(Script([" now.", oslo]))
    server.push(ANSWER)
    answer = rxllm.collect(
        llm.stream("Weather?", tools=[weather]).pipe(
            ops.tool_loop(per_call=ops.retry(attempts=2, backoff=0))
        ),
        timeout=10,
    )
    assert answer.steps[0].text == "Let me check the weather now."
    assistant = server.requests[2].body["messages"][1]["content"]
    assert assistant == [
        {"type": "text", "text": "Let me check the weather now."},
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_forced_tool_choice_goes_with_the_first_call_only(server: Server, provider: str) -> None:
    forced = "required" if provider == "openai" else {"type": "any"}
    llm = make(provider, server)
    server.push(TWO_CALLS)
    server.push(ANSWER)
    answer = rxllm.collect(
        llm.stream("Weather?", tools=[weather], tool_choice=forced).pipe(ops.tool_loop()),
        timeout=10,
    )
    assert answer.text == "Oslo is sunny, Rome is rainy."
    assert server.requests[0].body["tool_choice"] == forced
    assert "tool_choice" not in server.requests[1].body


def test_an_async_tool_whose_await_is_cancelled_is_a_failed_result() -> None:
    async def inner() -> str:
        """Awaits something that gets cancelled."""
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        return await future

    async def main() -> rxllm.Response:
        llm = rxllm.scripted([call(0, "c1", "inner", "{}")], then=["Done."])
        stream = llm.stream("go", tools=[inner]).pipe(ops.tool_loop())
        return await asyncio.wait_for(rxllm.acollect(stream), 5)

    answer = asyncio.run(main())
    assert answer.text == "Done."
    assert answer.steps[0].tool_results[0].error == "inner was cancelled (CancelledError)"


# --- found by a re-audit of the fixes; each failed before them ------------------------------


def test_an_anthropic_answer_cut_inside_a_tool_call_goes_back_as_sent(server: Server) -> None:
    # the arguments cannot be parsed, so the fields cannot be compared: the API's blocks,
    # thinking signature included, go back (message() raised ValueError)
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    cut = message(
        block(
            0,
            thinking,
            {"type": "thinking_delta", "thinking": "Plan."},
            {"type": "signature_delta", "signature": "SIG"},
        ),
        block(1, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Writing."}),
        block(
            2,
            {"type": "tool_use", "id": "toolu_1", "name": "write", "input": {}},
            {"type": "input_json_delta", "partial_json": '{"path": "a.txt", "text": "hel'},
        ),
        reason="max_tokens",
    )
    server.push(cut)
    answer = rxllm.collect(make("anthropic", server).stream("x"), timeout=10)
    assert answer.finish_reason == "length"
    blocks = answer.message()["content"]
    assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use"]
    assert blocks[0]["signature"] == "SIG"
    assert answer.messages() == [answer.message()]


def test_an_anthropic_turn_of_server_tool_blocks_only_is_kept(server: Server) -> None:
    # a pause_turn answer holding only a web search must go back as it is (and the loop
    # goes on with it: tests/providers/test_pause_turn.py)
    search = {"type": "web_search_20250305", "name": "web_search"}  # the provider runs it
    server.push(Script(["Checking.", call(0, "c1", "weather", '{"city": "Oslo"}')]))
    result = {
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
    server.push(
        message(
            block(
                0,
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                {"type": "input_json_delta", "partial_json": '{"query": "oslo"}'},
            ),
            block(1, result),
            reason="pause_turn",
        )
    )
    llm = make("anthropic", server)
    answer = rxllm.collect(
        llm.stream("x", tools=[weather, search]).pipe(ops.tool_loop(max_steps=2)), timeout=10
    )
    assert answer.finish_reason == "pause_turn"  # max_steps: no call to continue it
    last = answer.messages()[-1]
    assert [b["type"] for b in last["content"]] == ["server_tool_use", "web_search_tool_result"]


def test_ids_given_to_calls_reach_the_steps_and_messages(server: Server) -> None:
    llm = make("openai", server)
    delta = {"index": 0, "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [delta]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    server.push(Script(raw_events=[{"id": "r1", "model": "m", **e} for e in events]))
    server.push(ANSWER)
    answer = rxllm.collect(
        llm.stream("Weather?", tools=[weather]).pipe(ops.tool_loop()), timeout=10
    )
    sent = server.requests[1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"] == "call_0_0"
    assert answer.steps[0].tool_calls[0].id == "call_0_0"
    assert answer.messages()[:2] == sent[1:]


@pytest.mark.parametrize(
    ("given", "later"),
    [
        ({"type": "auto", "disable_parallel_tool_use": True}, "same"),
        ({"type": "any", "disable_parallel_tool_use": True}, "auto"),
        ({"type": "tool", "name": "weather"}, None),
    ],
)
def test_only_a_forcing_tool_choice_is_dropped_after_the_first_call(
    server: Server, given: dict[str, Any], later: str | None
) -> None:
    llm = make("anthropic", server)
    server.push(TWO_CALLS)
    server.push(ANSWER)
    rxllm.collect(
        llm.stream("Weather?", tools=[weather], tool_choice=given).pipe(ops.tool_loop()),
        timeout=10,
    )
    sent = server.requests[1].body.get("tool_choice")
    if later == "same":
        assert sent == given
    elif later == "auto":
        assert sent == {"type": "auto", "disable_parallel_tool_use": True}
    else:
        assert sent is None
