"""`tool_results(registry)`: tool calls run as Python functions, failures as results."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import reactivex
from pydantic import BaseModel
from reactivex import operators
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm.models import Chunk, ToolCall, ToolCallDelta
from rxllm.ops._tool_calls import tool_calls
from rxllm.ops._tool_results import ToolResult, tool_results

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def add(a: int, b: int = 0) -> int:
    """Add two numbers."""
    return a + b


def fail(reason: str) -> None:
    raise RuntimeError(reason)


class Weather(BaseModel):
    city: str
    celsius: float


def weather(city: str) -> Weather:
    return Weather(city=city, celsius=21.5)


async def slow_echo(text: str, delay: float = 0.0) -> str:
    await asyncio.sleep(delay)
    return text


def call(name: str, arguments: str = "{}", id: str = "c1") -> ToolCall:
    return ToolCall(id=id, name=name, arguments=arguments)


def run(registry: Any, *calls: ToolCall) -> list[ToolResult]:
    found: list[ToolResult] = []
    reactivex.from_iterable(calls).pipe(tool_results(registry)).subscribe(found.append)
    return found


class TestToolResult:
    """The result model and the messages built from it."""

    def test_content_is_the_text_or_the_json_of_the_output(self) -> None:
        assert ToolResult(call=call("f"), output="plain").content == "plain"
        assert ToolResult(call=call("f"), output={"a": [1, 2]}).content == '{"a":[1,2]}'
        assert ToolResult(call=call("f"), output=Weather(city="X", celsius=1)).content == (
            '{"city":"X","celsius":1.0}'
        )
        assert ToolResult(call=call("f"), output=None).content == "null"
        # Not JSON-serializable: its str(), as a JSON string.
        assert ToolResult(call=call("f"), output=object).content == "\"<class 'object'>\""

    def test_an_error_is_the_content(self) -> None:
        result = ToolResult(call=call("f"), error="ValueError: no")
        assert result.content == "Error: ValueError: no"
        assert result.is_error

    def test_openai_message(self) -> None:
        result = ToolResult(call=call("f", id="call_9"), output=3)
        assert result.message() == {"role": "tool", "tool_call_id": "call_9", "content": "3"}

    def test_anthropic_message(self) -> None:
        result = ToolResult(call=call("f", id="toolu_1"), error="boom")
        assert result.message("anthropic") == {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "Error: boom",
                    "is_error": True,
                }
            ],
        }

    def test_messages_for_several_results(self) -> None:
        results = [ToolResult(call=call("f", id=f"t{i}"), output=i) for i in range(3)]
        assert len(ToolResult.messages(results, "openai")) == 3
        (anthropic,) = ToolResult.messages(results, "anthropic")
        assert [b["tool_use_id"] for b in anthropic["content"]] == ["t0", "t1", "t2"]
        assert ToolResult.messages([], "anthropic") == []

    def test_an_unknown_provider_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="provider"):
            ToolResult(call=call("f")).message("cohere")  # type: ignore[arg-type]

    def test_frozen_and_dumpable(self) -> None:
        result = ToolResult(call=call("f"), output=1)
        with pytest.raises(ValueError, match="frozen"):
            result.output = 2
        assert result.model_dump()["content"] == "1"


class TestRegistry:
    """What a registry may be, checked when the operator is made."""

    def test_a_mapping_or_a_list(self) -> None:
        assert run({"plus": add}, call("plus", '{"a": 1, "b": 2}'))[0].output == 3
        assert run([add], call("add", '{"a": 1}'))[0].output == 1

    @pytest.mark.parametrize(
        ("registry", "error"),
        [
            ([add, add], ValueError),
            ([lambda: 1], ValueError),
            ({"x": 3}, TypeError),
            (add, TypeError),
            ("add", TypeError),
        ],
    )
    def test_bad_registries(self, registry: Any, error: type[Exception]) -> None:
        with pytest.raises(error):
            tool_results(registry)

    def test_callable_objects_and_builtins(self) -> None:
        class Multiply:
            def __call__(self, a: int, b: int) -> int:
                return a * b

        results = run(
            {"mul": Multiply(), "abs": abs},
            call("mul", '{"a": "3", "b": 4}'),
            call("abs", '{"x": -2}'),
        )
        assert [r.output for r in results] == [12, None]
        assert results[1].error is not None  # abs takes no keyword arguments


class TestRunning:
    """Validation, failures as results, order."""

    def test_arguments_are_validated_and_coerced(self) -> None:
        (result,) = run([add], call("add", '{"a": "2", "b": 3}'))
        assert result.output == 5 and result.error is None
        assert result.call.arguments == '{"a": "2", "b": 3}'

    def test_arguments_that_do_not_fit_are_an_error_result(self) -> None:
        (result,) = run([add], call("add", '{"a": "two", "c": 1}'))
        assert result.output is None
        assert result.error is not None
        assert result.error.startswith("invalid arguments for add: ")
        assert "a: Input should be a valid integer" in result.error
        assert "c: Unexpected keyword argument" in result.error

    def test_arguments_that_are_not_json_are_an_error_result(self) -> None:
        (result,) = run([add], call("add", '{"a": 1'))
        assert result.error is not None and "not valid JSON" in result.error

    def test_an_unknown_tool_is_an_error_result(self) -> None:
        (result,) = run([add, fail], call("search"))
        assert result.error == "unknown tool 'search'; known: add, fail"

    def test_an_exception_of_the_tool_is_an_error_result(self) -> None:
        (result,) = run([fail], call("fail", '{"reason": "no network"}'))
        assert result.error == "RuntimeError: no network"

    def test_empty_arguments_are_no_arguments(self) -> None:
        (result,) = run({"now": lambda: "12:00"}, call("now", ""))
        assert result.output == "12:00"

    def test_an_async_tool_outside_a_loop_runs_with_asyncio_run(self) -> None:
        results = run(
            [slow_echo, add], call("slow_echo", '{"text": "hi"}'), call("add", '{"a": 1}')
        )
        assert [r.output for r in results] == ["hi", 1]

    def test_an_async_tool_that_raises(self) -> None:
        async def broken() -> None:
            raise KeyError("k")

        assert run([broken], call("broken"))[0].error == "KeyError: 'k'"


class TestOperator:
    """The Rx operator in virtual time: timing, completion, errors, disposal."""

    def test_results_at_the_time_of_their_calls(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(150, call("add", '{"a": 100}')),
            on_next(210, call("add", '{"a": 1, "b": 2}', id="c1")),
            on_next(220, call("nope", id="c2")),
            on_completed(230),
        )
        results = scheduler.start(lambda: xs.pipe(tool_results([add])))
        assert results.messages == [
            on_next(210, ToolResult(call=call("add", '{"a": 1, "b": 2}', id="c1"), output=3)),
            on_next(
                220,
                ToolResult(call=call("nope", id="c2"), error="unknown tool 'nope'; known: add"),
            ),
            on_completed(230),
        ]
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_errors_pass_through(self) -> None:
        error = RuntimeError("upstream")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, call("add", '{"a": 1}')), on_error(220, error)
        )
        results = scheduler.start(lambda: xs.pipe(tool_results([add])))
        assert results.messages == [
            on_next(210, ToolResult(call=call("add", '{"a": 1}'), output=1)),
            on_error(220, error),
        ]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_disposal_unsubscribes_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, call("add", '{"a": 1}')),
            on_next(230, call("add", '{"a": 2}')),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(tool_results([add])), disposed=220)
        assert results.messages == [
            on_next(210, ToolResult(call=call("add", '{"a": 1}'), output=1))
        ]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_other_items_are_a_type_error(self) -> None:
        failures: list[Exception] = []
        reactivex.of("add").pipe(tool_results([add])).subscribe(on_error=failures.append)  # type: ignore[arg-type]
        assert isinstance(failures[0], TypeError)

    def test_end_to_end_with_a_provider(self) -> None:
        llm = rxllm.scripted(
            [
                Chunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="weather"),)),
                Chunk(tool_calls=(ToolCallDelta(index=0, arguments='{"city": "Oslo"}'),)),
                Chunk(tool_calls=(ToolCallDelta(index=1, id="call_2", name="add"),)),
                Chunk(tool_calls=(ToolCallDelta(index=1, arguments='{"a": 2, "b": 2}'),)),
            ],
            delay=0.001,
            finish_reason="tool_calls",
        )
        stream = llm.stream("go").pipe(tool_calls(), tool_results([weather, add]))
        results = list(rxllm.iterate(stream))
        assert [r.output for r in results] == [Weather(city="Oslo", celsius=21.5), 4]
        assert ToolResult.messages(results, "openai") == [
            {"role": "tool", "tool_call_id": "call_1", "content": '{"city":"Oslo","celsius":21.5}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "4"},
        ]


class TestOnALoop:
    """Subscribed inside a running asyncio loop: tools run as tasks there, in order."""

    async def test_async_and_sync_tools_in_order_on_the_loop_thread(self) -> None:
        loop_thread = threading.get_ident()
        threads: list[int] = []

        def where() -> str:
            threads.append(threading.get_ident())
            return "here"

        calls = [
            call("slow_echo", '{"text": "first", "delay": 0.02}', id="1"),
            call("where", id="2"),
            call("slow_echo", '{"text": "third"}', id="3"),
        ]
        results = await _gather(reactivex.from_iterable(calls), [slow_echo, where])
        assert [r.output for r in results] == ["first", "here", "third"]
        assert threads == [loop_thread]

    async def test_with_a_provider_on_the_loop(self) -> None:
        llm = rxllm.scripted(
            [
                Chunk(
                    tool_calls=(
                        ToolCallDelta(index=0, id="a", name="slow_echo", arguments='{"text": "x"}'),
                    )
                ),
                Chunk(
                    tool_calls=(ToolCallDelta(index=1, id="b", name="add", arguments='{"a": 1}'),)
                ),
            ],
            finish_reason="tool_calls",
        )
        results = await _gather(llm.stream("go").pipe(tool_calls()), [slow_echo, add])
        assert [(r.call.id, r.output) for r in results] == [("a", "x"), ("b", 1)]

    async def test_calls_from_another_thread_are_run_on_the_loop(self) -> None:
        loop_thread = threading.get_ident()
        seen: list[int] = []

        async def probe() -> int:
            seen.append(threading.get_ident())
            return 1

        source: Subject[ToolCall] = Subject()
        pending = asyncio.ensure_future(_gather(source, [probe]))
        await asyncio.sleep(0)

        def feed() -> None:
            source.on_next(call("probe"))
            source.on_completed()

        thread = threading.Thread(target=feed)
        thread.start()
        results = await asyncio.wait_for(pending, 5)
        thread.join()
        assert [r.output for r in results] == [1]
        assert seen == [loop_thread]

    async def test_disposal_cancels_the_running_tool(self) -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def forever() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        found: list[ToolResult] = []
        subscription = (
            reactivex.of(call("forever"), call("forever"))
            .pipe(tool_results([forever]))
            .subscribe(found.append)
        )
        await asyncio.wait_for(started.wait(), 5)
        subscription.dispose()
        await asyncio.wait_for(cancelled.wait(), 5)
        await asyncio.sleep(0.01)
        assert found == []

    async def test_a_source_error_passes_through(self) -> None:
        error = RuntimeError("broken stream")
        source = reactivex.of(call("add", '{"a": 1}')).pipe(
            operators.concat(reactivex.throw(error))
        )
        with pytest.raises(RuntimeError, match="broken stream"):
            await _gather(source, [add])

    async def test_an_exception_in_on_next_goes_to_on_error(self) -> None:
        failures: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

        def on_next(_: ToolResult) -> None:
            raise ValueError("subscriber bug")

        reactivex.of(call("add", '{"a": 1}')).pipe(tool_results([add])).subscribe(
            on_next, failures.set_result
        )
        error = await asyncio.wait_for(failures, 5)
        assert str(error) == "subscriber bug"


async def _gather(source: reactivex.Observable[ToolCall], registry: Any) -> list[ToolResult]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[ToolResult]] = loop.create_future()
    found: list[ToolResult] = []

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_exception(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(found)

    source.pipe(tool_results(registry)).subscribe(found.append, on_error, on_completed)
    return await asyncio.wait_for(done, 5)


class TestConcurrency:
    """`concurrency=n`: up to n tools at once, results in the calls' order."""

    def test_sync_tools_outside_a_loop_run_together_and_come_out_in_order(self) -> None:
        barrier = threading.Barrier(3, timeout=5)  # passes only if all three run at once
        done: list[int] = []

        def slow(n: int) -> int:
            barrier.wait()
            threading.Event().wait(0.05 * (3 - n))  # the first call finishes last
            done.append(n)
            return n

        calls = [call("slow", f'{{"n": {n}}}', id=f"c{n}") for n in range(3)]
        results = (
            reactivex.from_iterable(calls)
            .pipe(tool_results([slow], concurrency=3), operators.to_list())
            .run()
        )
        assert [r.output for r in results] == [0, 1, 2]
        assert done == [2, 1, 0]
        assert all(r.error is None for r in results)

    async def test_on_a_loop_async_and_sync_tools_run_together_in_order(self) -> None:
        both_fetching = asyncio.Barrier(2)
        barrier = threading.Barrier(2, timeout=5)

        async def fetch(n: int) -> int:
            await asyncio.wait_for(both_fetching.wait(), 5)  # passes only if both run at once
            await asyncio.sleep(0.05 * (2 - n))
            return n

        def compute(n: int) -> int:
            barrier.wait()  # on worker threads: both sync tools at once, the loop free
            return 10 + n

        calls = [
            call("fetch", '{"n": 0}', id="a"),
            call("fetch", '{"n": 1}', id="b"),
            call("compute", '{"n": 0}', id="c"),
            call("compute", '{"n": 1}', id="d"),
        ]
        loop_thread = threading.get_ident()
        seen: list[tuple[Any, int]] = []
        done = asyncio.Event()
        reactivex.from_iterable(calls).pipe(
            tool_results([fetch, compute], concurrency=2)
        ).subscribe(
            lambda r: seen.append((r.output, threading.get_ident())),
            lambda e: done.set(),
            done.set,
        )
        await asyncio.wait_for(done.wait(), 10)
        assert [output for output, _ in seen] == [0, 1, 10, 11]
        assert {thread for _, thread in seen} == {loop_thread}

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True])
    def test_a_bad_concurrency_is_a_value_error(self, bad: Any) -> None:
        with pytest.raises(ValueError, match="concurrency"):
            tool_results([], concurrency=bad)

    def test_a_source_error_drops_what_is_still_running(self) -> None:
        gate = threading.Event()

        def wait() -> str:
            gate.wait(5)
            return "late"

        source: Subject[ToolCall] = Subject()
        events: list[Any] = []
        source.pipe(tool_results([wait], concurrency=2)).subscribe(
            events.append, lambda e: events.append(("error", str(e)))
        )
        source.on_next(call("wait"))
        source.on_error(rxllm.StreamInterrupted("dropped"))
        gate.set()
        threading.Event().wait(0.1)
        assert events == [("error", "dropped")]

    def test_disposal_stops_emitting_and_frees_the_workers(self) -> None:
        gate = threading.Event()

        def wait(n: int) -> int:
            gate.wait(5)
            return n

        source: Subject[ToolCall] = Subject()
        seen: list[Any] = []
        subscription = source.pipe(tool_results([wait], concurrency=2)).subscribe(seen.append)
        source.on_next(call("wait", '{"n": 1}'))
        subscription.dispose()
        gate.set()
        threading.Event().wait(0.1)
        assert seen == []
        assert not source.observers  # the upstream was unsubscribed

    async def test_calls_arriving_one_by_one_on_a_loop_still_overlap(self) -> None:
        # A call that arrives while the first tool runs starts at once (it waited for the
        # first to finish).
        both_running = asyncio.Barrier(2)

        async def fetch(n: int) -> int:
            await asyncio.wait_for(both_running.wait(), 5)  # passes only if both run at once
            return n

        source: Subject[ToolCall] = Subject()
        seen: list[Any] = []
        source.pipe(tool_results([fetch], concurrency=2)).subscribe(seen.append)
        source.on_next(call("fetch", '{"n": 0}', id="a"))
        await asyncio.sleep(0.05)  # the first tool is running
        source.on_next(call("fetch", '{"n": 1}', id="b"))
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert [r.output for r in seen] == [0, 1]

    async def test_on_a_loop_n_sync_tools_run_at_once_beyond_the_default_executor(self) -> None:
        # the loop's default executor has min(32, cpus + 4) threads: 6 on two cores
        barrier = threading.Barrier(10, timeout=5)

        def wait(n: int) -> int:
            barrier.wait()
            return n

        calls = [call("wait", f'{{"n": {n}}}', id=f"c{n}") for n in range(10)]
        seen: list[Any] = []
        done = asyncio.Event()
        reactivex.from_iterable(calls).pipe(tool_results([wait], concurrency=10)).subscribe(
            seen.append, lambda e: done.set(), done.set
        )
        await asyncio.wait_for(done.wait(), 10)
        assert [r.output for r in seen] == list(range(10))
        assert all(r.error is None for r in seen)

    async def test_a_finished_result_waiting_for_an_earlier_one_holds_no_slot(self) -> None:
        slow_may_finish = asyncio.Event()
        started: list[int] = []

        async def work(n: int) -> int:
            started.append(n)
            if n == 0:
                await asyncio.wait_for(slow_may_finish.wait(), 5)
            return n

        seen: list[Any] = []
        done = asyncio.Event()
        calls = [call("work", f'{{"n": {n}}}', id=f"c{n}") for n in range(5)]
        reactivex.from_iterable(calls).pipe(tool_results([work], concurrency=2)).subscribe(
            seen.append, lambda e: done.set(), done.set
        )
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert started == [0, 1, 2, 3, 4]  # the quick ones ran while call 0 was still running
        assert seen == []  # ... and wait for it, in order
        slow_may_finish.set()
        await asyncio.wait_for(done.wait(), 5)
        assert [r.output for r in seen] == [0, 1, 2, 3, 4]

    async def test_an_on_next_that_raises_stops_the_tools_and_frees_the_threads(self) -> None:
        before = threading.active_count()

        def slow(n: int) -> int:
            threading.Event().wait(0.1)
            return n

        def on_next(_: ToolResult) -> None:
            raise RuntimeError("boom")

        errors: list[Exception] = []
        done = asyncio.Event()
        calls = [call("slow", f'{{"n": {n}}}', id=f"c{n}") for n in range(6)]
        reactivex.from_iterable(calls).pipe(tool_results([slow], concurrency=3)).subscribe(
            on_next, lambda e: (errors.append(e), done.set()), done.set
        )
        await asyncio.wait_for(done.wait(), 5)
        assert [str(e) for e in errors] == ["boom"]
        for _ in range(50):  # the running tool finishes; no worker is left waiting for work
            if threading.active_count() <= before:
                break
            await asyncio.sleep(0.02)
        assert threading.active_count() <= before
