"""`ops.tool_loop` and the step-aware stream it makes, without network (scripted provider):
what accumulate/collect/tool_calls/partial make of steps, the loop's rules (when tools run,
max_steps, failures as results), and its argument checks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import rxllm
from rxllm import ops
from rxllm.accumulator import Accumulator
from rxllm.models import Chunk, Response, ToolCall, ToolCallDelta, ToolResult, Usage


def call(index: int, id: str, name: str, arguments: str) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def boom() -> str:
    """Fails."""
    raise RuntimeError("the tool broke")


ASK_ADD = [call(0, "c1", "add", '{"a": 1, "b": 2}')]


def result(id: str, output: Any) -> ToolResult:
    return ToolResult(call=ToolCall(id=id, name="add", arguments="{}"), output=output)


# --- the accumulator reads a loop's stream as steps -------------------------------------


def test_snapshots_of_a_step_keep_their_own_text_after_the_next_step_starts() -> None:
    acc = Accumulator()
    first = acc.add(Chunk(content="Let me add."))
    asked = acc.add(call(0, "c1", "add", "{}").model_copy(update={"finish_reason": "tool_calls"}))
    boundary = acc.add(Chunk(tool_results=(result("c1", 3),)))
    second = acc.add(Chunk(content="It is "))
    last = acc.add(Chunk(content="3.", finish_reason="stop"))
    assert [s.step for s in (first, asked, boundary, second, last)] == [0, 0, 0, 1, 1]
    assert first.text == "Let me add." and boundary.text == "Let me add."
    assert second.text == "It is " and last.text == "It is 3."
    assert boundary.tool_calls[0].id == "c1" and second.tool_calls == ()
    assert boundary.finish_reason == "tool_calls" and second.finish_reason is None
    # an old snapshot read after the new step began is still itself
    assert asked.response().text == "Let me add." and asked.response().steps == ()
    done = boundary.response()
    assert done.tool_results[0].output == 3 and done.steps == ()
    final = last.response()
    assert final.text == "It is 3." and final.chunk_count == 2
    assert [s.text for s in final.steps] == ["Let me add."]
    assert final.steps[0].tool_results == (result("c1", 3),)


def test_usage_is_per_step_and_total_usage_adds_them() -> None:
    acc = Accumulator()
    acc.push(Chunk(content="a", usage=Usage(input_tokens=5, output_tokens=1, total_tokens=6)))
    acc.push(Chunk(tool_results=(result("c1", 1),)))
    acc.push(Chunk(content="b"))
    assert acc.response().usage is None  # the new step has reported nothing yet
    acc.push(Chunk(content="c", usage=Usage(input_tokens=9, output_tokens=2, total_tokens=11)))
    response = acc.response()
    assert response.usage == Usage(input_tokens=9, output_tokens=2, total_tokens=11)
    assert response.total_usage == Usage(input_tokens=14, output_tokens=3, total_tokens=17)


steps_strategy = st.lists(
    st.lists(st.text(max_size=5), min_size=1, max_size=6), min_size=1, max_size=4
)


@settings(max_examples=80, deadline=None)
@given(steps_strategy)
def test_a_stream_of_steps_accumulates_as_each_step_alone(steps: list[list[str]]) -> None:
    acc = Accumulator()
    snapshots = []
    for k, pieces in enumerate(steps):
        for piece in pieces:
            snapshots.append((k, acc.add(Chunk(content=piece))))
        if k < len(steps) - 1:
            snapshots.append((k, acc.add(Chunk(tool_results=(result(f"c{k}", k),)))))
    response = acc.response()
    assert response.text == "".join(steps[-1])
    assert [s.text for s in response.steps] == ["".join(p) for p in steps[:-1]]
    assert [s.tool_results[0].output for s in response.steps] == list(range(len(steps) - 1))
    # every snapshot, read in any order, is its own step's text so far
    for k, snapshot in reversed(snapshots):
        assert snapshot.step == k
        assert "".join(steps[k]).startswith(snapshot.text)


def test_a_response_with_steps_round_trips_through_json() -> None:
    answer = rxllm.collect(
        rxllm.scripted(ASK_ADD, then=["It is 3."]).stream("1+2?", tools=[add]).pipe(ops.tool_loop())
    )
    again = Response.model_validate_json(answer.model_dump_json())
    assert again.text == "It is 3." and again.steps[0].tool_results[0].output == 3
    assert again.messages() == answer.messages()


# --- the loop ----------------------------------------------------------------------------


def test_the_loop_sends_the_answer_and_results_and_completes_on_a_plain_answer() -> None:
    llm = rxllm.scripted(ASK_ADD, then=["It is 3."])
    chunks = list(rxllm.iterate(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop())))
    provider = llm._provider  # type: ignore[attr-defined]
    assert len(provider.requests) == 2
    assert list(provider.requests[1].messages[1:]) == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
    ]
    boundary = [c for c in chunks if c.tool_results]
    assert len(boundary) == 1 and boundary[0].provider == "scripted"
    assert chunks[-1].content == "3." and chunks[-1].finish_reason == "stop"


def test_a_failing_or_unknown_tool_is_a_result_the_model_reads() -> None:
    llm = rxllm.scripted(
        [call(0, "c1", "boom", "{}"), call(1, "c2", "nope", "{}")], then=["Sorry."]
    )
    answer = rxllm.collect(llm.stream("go", tools=[boom]).pipe(ops.tool_loop()))
    errors = [r.error for r in answer.steps[0].tool_results]
    assert errors == ["RuntimeError: the tool broke", "unknown tool 'nope'; known: boom"]
    sent = llm._provider.requests[1].messages  # type: ignore[attr-defined]
    assert sent[-2]["content"] == "Error: RuntimeError: the tool broke"
    assert answer.text == "Sorry."


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_calls_of_a_cut_off_answer_are_not_run(reason: str) -> None:
    ran: list[int] = []

    def record(a: int, b: int) -> int:
        """Record."""
        ran.append(a)
        return a

    script = [
        call(0, "c1", "record", '{"a": 1, "b": 2}').model_copy(update={"finish_reason": reason})
    ]
    llm = rxllm.scripted(script, then=["never"])
    answer = rxllm.collect(llm.stream("go", tools=[record]).pipe(ops.tool_loop()))
    assert ran == [] and answer.finish_reason == reason and answer.steps == ()
    assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]


def test_max_steps_one_is_a_single_call() -> None:
    llm = rxllm.scripted(ASK_ADD, then=["It is 3."])
    answer = rxllm.collect(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop(max_steps=1)))
    assert answer.tool_calls[0].name == "add" and answer.steps == ()
    assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]


def test_an_on_next_that_raises_on_the_results_chunk_reaches_on_error() -> None:
    llm = rxllm.scripted(ASK_ADD, then=["It is 3."])
    errors: list[Exception] = []
    done = threading.Event()

    def on_next(chunk: Chunk) -> None:
        if chunk.tool_results:
            raise KeyError("ui bug")

    llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop()).subscribe(
        on_next, lambda e: (errors.append(e), done.set()), done.set
    )
    assert done.wait(5)
    assert [type(e) for e in errors] == [KeyError]
    assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]


def test_tool_calls_and_partial_start_over_at_each_step() -> None:
    class Sum(BaseModel):
        value: int

    again = call(0, "c2", "add", '{"a": 3, "b": 0}')

    def loop() -> Any:  # a new script each time: a scripted LLM's `then` is used up
        llm = rxllm.scripted(["Let me add.", *ASK_ADD], then=[[again], ['{"val', 'ue": 3}']])
        return llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop())

    # each step's calls count from 0: without starting over, c2 would be a fragment of c1
    assert [c.id for c in rxllm.iterate(loop().pipe(ops.tool_calls()))] == ["c1", "c2"]
    # the JSON is the last step's whole text, not prose + JSON
    values = list(rxllm.iterate(loop().pipe(ops.partial(Sum))))
    assert values[-1] == Sum(value=3)


def test_a_scripted_error_follows_only_the_last_script() -> None:
    llm = rxllm.scripted(ASK_ADD, then=["It is"], error=rxllm.ServerError("flaky"))
    with pytest.raises(rxllm.ServerError) as caught:
        rxllm.collect(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop()))
    partial = caught.value.partial
    assert partial is not None and partial.text == "It is" and len(partial.steps) == 1


# --- argument checks -------------------------------------------------------------------


def test_the_loop_goes_first_on_a_provider_stream() -> None:
    llm = rxllm.scripted(ASK_ADD)
    with pytest.raises(TypeError, match=r"per_call=ops.retry\(\)"):
        llm.stream("x", tools=[add]).pipe(ops.retry(), ops.tool_loop())


def test_a_call_without_tools_is_refused() -> None:
    with pytest.raises(ValueError, match="offers the model no tools"):
        rxllm.scripted("x").stream("x").pipe(ops.tool_loop())


def test_a_dict_tool_needs_a_function() -> None:
    schema = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
    llm = rxllm.scripted("x")
    with pytest.raises(ValueError, match=r"no function to run for 'lookup'.*tool_loop\(\{'lookup'"):
        llm.stream("x", tools=[add, schema]).pipe(ops.tool_loop())
    llm.stream("x", tools=[schema]).pipe(ops.tool_loop({"lookup": add}))  # named: fine


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_max_steps_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_steps"):
        ops.tool_loop(max_steps=bad)


def test_per_call_and_concurrency_are_checked_at_once() -> None:
    with pytest.raises(TypeError, match="per_call"):
        ops.tool_loop(per_call="retry")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        ops.tool_loop(concurrency=0)


def test_then_must_be_a_list_of_scripts() -> None:
    with pytest.raises(ValueError, match="then="):
        rxllm.scripted("x", then="It is 3.")  # type: ignore[arg-type]


def test_messages_include_the_results_of_a_loop_stopped_right_after_its_tools() -> None:
    llm = rxllm.scripted(ASK_ADD, then=["It is 3."])
    stream = llm.stream("1+2?", tools=[add]).pipe(
        ops.tool_loop(), ops.take_until(lambda c: bool(c.tool_results))
    )
    answer = rxllm.collect(stream)
    assert answer.tool_results[0].output == 3 and answer.steps == ()
    assert [m["role"] for m in answer.messages()] == ["assistant", "tool"]


# --- found by an audit of the first version; each failed on it -----------------------------


def test_tool_outputs_json_cannot_hold_still_reach_the_model_and_the_json() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    def thing() -> object:
        """A thing."""
        return Thing()

    def blob() -> bytes:
        """Bytes that are not UTF-8."""
        return b"\xff\xfe"

    def numbers() -> Any:
        """A generator."""
        yield from (1, 2)

    llm = rxllm.scripted(
        [call(0, "a", "thing", "{}"), call(1, "b", "blob", "{}"), call(2, "c", "numbers", "{}")],
        then=["ok"],
    )
    answer = rxllm.collect(llm.stream("go", tools=[thing, blob, numbers]).pipe(ops.tool_loop()))
    results = answer.steps[0].tool_results
    assert [r.content for r in results] == ['"a thing"', "b'\\xff\\xfe'", "[1,2]"]
    assert results[2].output == [1, 2]  # read once: the model and the result agree
    dumped = Response.model_validate_json(answer.model_dump_json())
    assert [r.output for r in dumped.steps[0].tool_results] == ["a thing", "b'\\xff\\xfe'", [1, 2]]


def test_a_model_class_offered_as_a_tool_ends_the_loop_when_called() -> None:
    class Forecast(BaseModel):
        """The final answer."""

        city: str
        sky: str

    final = call(1, "f1", "Forecast", '{"city": "Oslo", "sky": "sunny"}')
    llm = rxllm.scripted([call(0, "c1", "add", '{"a": 1, "b": 2}')], then=[[final]])
    answer = rxllm.collect(llm.stream("go", tools=[add, Forecast]).pipe(ops.tool_loop()))
    assert len(llm._provider.requests) == 2  # type: ignore[attr-defined]
    assert Forecast(**answer.tool_calls[0].args) == Forecast(city="Oslo", sky="sunny")
    assert answer.tool_results == () and len(answer.steps) == 1


def test_functions_given_to_the_loop_add_to_the_calls_own() -> None:
    def weather(city: str) -> str:
        """The weather."""
        return "sunny"

    def fake_weather(city: str) -> str:
        return "always sunny"

    llm = rxllm.scripted(
        [call(0, "c1", "weather", '{"city": "x"}'), call(1, "c2", "add", '{"a": 1, "b": 1}')],
        then=["ok"],
    )
    loop = ops.tool_loop({"weather": fake_weather})  # add still runs the call's own
    answer = rxllm.collect(llm.stream("go", tools=[weather, add]).pipe(loop))
    assert [r.output for r in answer.steps[0].tool_results] == ["always sunny", 2]


def test_sentences_end_with_a_step() -> None:
    llm = rxllm.scripted(["I will look that up", *ASK_ADD], then=["It is 3."])
    stream = llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop(), ops.sentences())
    assert list(rxllm.iterate(stream)) == ["I will look that up", "It is 3."]


def test_batch_counts_the_tokens_of_every_step() -> None:
    from rxllm.batch import _Limiter  # pyright: ignore[reportPrivateUsage]

    usage = Usage(input_tokens=100, output_tokens=0, total_tokens=100)
    llm = rxllm.scripted(ASK_ADD, then=["3."], usage=usage)
    answer = rxllm.collect(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop()))
    limiter = _Limiter(None, 1000)
    limiter.spent(answer)
    assert [n for _, n in limiter._tokens] == [200]  # pyright: ignore[reportPrivateUsage]


def test_a_per_call_operator_must_keep_chunks() -> None:
    llm = rxllm.scripted(["Let me add.", *ASK_ADD], then=["3."])
    with pytest.raises(TypeError, match="per_call must keep each call a stream of chunks"):
        rxllm.collect(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop(per_call=ops.text())))


def test_a_scripted_tool_call_finishes_with_tool_calls() -> None:
    assert rxllm.collect(rxllm.scripted(ASK_ADD).stream("x")).finish_reason == "tool_calls"
    assert rxllm.collect(rxllm.scripted("Hi.").stream("x")).finish_reason == "stop"


def test_snapshot_chunk_count_is_the_steps_own() -> None:
    llm = rxllm.scripted(ASK_ADD, then=[["It ", "is ", "3."]])
    snapshots = list(
        rxllm.iterate(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop(), ops.accumulate()))
    )
    assert snapshots[-1].chunk_count == snapshots[-1].response().chunk_count == 3


def test_an_iterator_output_is_read_once_for_the_model_and_the_result() -> None:
    def evens() -> Any:
        """Even numbers."""
        return filter(lambda n: n % 2 == 0, range(7))

    llm = rxllm.scripted([call(0, "c1", "evens", "{}")], then=["ok"])
    answer = rxllm.collect(llm.stream("go", tools=[evens]).pipe(ops.tool_loop()))
    (result,) = answer.steps[0].tool_results
    assert result.output == [0, 2, 4, 6] and result.content == "[0,2,4,6]"
    assert answer.messages()[1]["content"] == "[0,2,4,6]"
