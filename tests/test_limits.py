"""UsageLimits: no request starts once a limit is reached; a stream that crosses one stops."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from reactivex import operators as rx_ops

import rxllm
from rxllm import cost, ops
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing import Script, Server


def usage(input_tokens: int, output_tokens: int) -> Usage:
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def ping() -> str:
    """Ping the server."""
    return "pong"


def looping(call_usage: Usage, **kw: Any) -> rxllm.LLM:
    """A model that asks for the tool on every call, each call reporting `call_usage` with
    its last chunk."""
    call = ToolCallDelta(index=0, id="c", name="ping", arguments="{}")
    return rxllm.scripted(
        [Chunk(content="Pinging. "), Chunk(tool_calls=(call,))], usage=call_usage, **kw
    )


def calls_made(llm: rxllm.LLM) -> int:
    return len(llm._provider.requests)  # type: ignore[attr-defined]


def run_loop(llm: rxllm.LLM, limits: rxllm.UsageLimits, **kw: Any) -> rxllm.UsageLimitExceeded:
    stream = llm.stream("ping it", tools=[ping]).pipe(
        ops.tool_loop(max_steps=50, limits=limits, **kw)
    )
    with pytest.raises(rxllm.UsageLimitExceeded) as caught:
        rxllm.collect(stream, timeout=10)
    return caught.value


class TestUsageLimits:
    """The limits themselves: validated when made."""

    def test_a_cost_is_kept_as_a_decimal(self) -> None:
        assert rxllm.UsageLimits(cost=0.1).cost == Decimal("0.1")
        assert rxllm.UsageLimits().requests is None

    @pytest.mark.parametrize(
        "given",
        [
            {"requests": -1},
            {"output_tokens": True},
            {"total_tokens": 1.5},
            {"cost": float("nan")},
            {"cost": -0.01},
            {"tokens": 100},  # not a limit there is
        ],
    )
    def test_bad_limits_are_a_value_error(self, given: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            rxllm.UsageLimits(**given)

    def test_limits_of_another_type_are_refused_where_they_are_given(self) -> None:
        with pytest.raises(TypeError, match="UsageLimits"):
            ops.tool_loop(limits={"requests": 2})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="UsageLimits"):
            rxllm.batch([1], rxllm.scripted("x").stream, concurrency=1, limits=5)  # type: ignore[arg-type]

    def test_the_error_is_an_llm_error_that_says_what_was_used(self) -> None:
        llm = looping(usage(10, 5))
        error = run_loop(llm, rxllm.UsageLimits(requests=1))
        assert isinstance(error, rxllm.LLMError) and not error.retryable
        assert error.limit == "requests" and "requests=1" in str(error)
        assert error.usage == usage(10, 5)
        assert error.cost is None  # priced only with a cost limit


class TestToolLoop:
    """ops.tool_loop(limits=...): the whole loop's calls count."""

    def test_no_call_starts_once_the_requests_are_reached(self) -> None:
        llm = looping(usage(10, 5))
        error = run_loop(llm, rxllm.UsageLimits(requests=2))
        assert calls_made(llm) == 2
        assert error.limit == "requests"
        assert error.partial is not None
        # both calls were answered (their tools ran) before the third was refused
        assert [len(step.tool_results) for step in error.partial.steps] == [1, 1]
        assert error.usage == usage(20, 10)

    def test_a_token_limit_reached_exactly_lets_the_call_finish_and_stops_the_next(self) -> None:
        llm = looping(usage(60, 40))
        error = run_loop(llm, rxllm.UsageLimits(total_tokens=200))
        assert calls_made(llm) == 2  # 100, then 200: reached (>=), not crossed
        assert error.limit == "total_tokens" and "reached" in str(error)
        assert error.partial is not None and len(error.partial.steps) == 2

    def test_usage_crossing_with_the_last_chunk_fails_that_call(self) -> None:
        llm = looping(usage(60, 41))
        error = run_loop(llm, rxllm.UsageLimits(total_tokens=200))
        assert calls_made(llm) == 2  # 101, then 202: crossed by the second call's last chunk
        assert error.limit == "total_tokens" and "crossed" in str(error)
        assert error.partial is not None
        # the second call's answer, with its tool call, was received; its tool never ran
        assert error.partial.text == "Pinging. " and len(error.partial.tool_calls) == 1
        assert error.partial.tool_results == () and len(error.partial.steps) == 1
        assert error.usage == usage(120, 82)

    def test_a_stream_crossing_a_limit_is_stopped_there(self) -> None:
        chunks = [Chunk(content="a", usage=usage(500, 1)), "b", "c", "d", "e"]
        llm = rxllm.scripted(chunks, delay=0.02)
        seen: list[str] = []
        stream = llm.stream("q", tools=[ping]).pipe(
            ops.tool_loop(limits=rxllm.UsageLimits(input_tokens=100)),
            rx_ops.do_action(lambda c: seen.append(c.content)),
        )
        with pytest.raises(rxllm.UsageLimitExceeded) as caught:
            rxllm.collect(stream, timeout=10)
        assert seen == ["a"]  # the crossing chunk was delivered, nothing after it
        assert caught.value.limit == "input_tokens"
        assert caught.value.partial is not None and caught.value.partial.text == "a"

    def test_input_tokens_add_up_over_the_calls(self) -> None:
        llm = looping(usage(40, 1))
        error = run_loop(llm, rxllm.UsageLimits(input_tokens=100))
        assert calls_made(llm) == 3  # 40, 80, then 120 crosses with the third call's usage
        assert error.usage is not None and error.usage.input_tokens == 120

    def test_a_cost_limit_counts_each_call_at_its_models_price(self) -> None:
        each = usage(20_000, 1000)
        one_call = cost.price(each, "gpt-4o-mini", "openai")
        assert one_call is not None
        llm = looping(each, model="gpt-4o-mini")
        # scripted chunks say provider "scripted": priced as OpenAI's here
        openai_chunks = rx_ops.map(lambda c: c.model_copy(update={"provider": "openai"}))
        error = run_loop(
            llm, rxllm.UsageLimits(cost=one_call * 2 + one_call / 2), per_call=openai_chunks
        )
        assert calls_made(llm) == 3  # 1x, 2x, then 3x crosses 2.5x
        assert error.limit == "cost"
        assert error.cost == one_call * 3

    def test_a_cost_limit_on_a_model_without_a_price_stops_rather_than_guesses(self) -> None:
        llm = looping(usage(10, 1), model="my-own-model")
        error = run_loop(llm, rxllm.UsageLimits(cost=1))
        assert calls_made(llm) == 1
        assert error.limit == "cost" and "cannot be kept" in str(error)


def many(n: int) -> list[str]:
    return [f"item {i}" for i in range(n)]


def outcomes(results: Any) -> list[tuple[Any, Any]]:
    return sorted(rxllm.iterate(results), key=lambda pair: pair[0])


class TestBatch:
    """rxllm.batch(limits=...): the limits cover the whole batch."""

    def test_items_not_started_come_out_as_usage_limit_exceeded(self) -> None:
        llm = rxllm.scripted("ok", usage=usage(5, 5))
        results = outcomes(
            rxllm.batch(
                many(5),
                llm.stream,
                concurrency=1,
                progress=False,
                limits=rxllm.UsageLimits(requests=2),
            )
        )
        kinds = [type(outcome).__name__ for _, outcome in results]
        assert kinds.count("Response") == 2 and kinds.count("UsageLimitExceeded") == 3
        assert calls_made(llm) == 2
        refused = [o for _, o in results if isinstance(o, rxllm.UsageLimitExceeded)]
        assert all(o.partial is None and o.limit == "requests" for o in refused)

    @pytest.mark.parametrize(("limit", "finished", "crossed"), [(20, 2, 0), (25, 2, 1)])
    def test_reached_stops_starting_crossed_fails_the_crossing_item(
        self, limit: int, finished: int, crossed: int
    ) -> None:
        llm = rxllm.scripted("ten tokens", usage=usage(5, 5))
        results = [
            outcome
            for _, outcome in rxllm.iterate(
                rxllm.batch(
                    many(5),
                    llm.stream,
                    concurrency=1,
                    progress=False,
                    limits=rxllm.UsageLimits(total_tokens=limit),
                )
            )
        ]
        assert [isinstance(o, rxllm.Response) for o in results].count(True) == finished
        over = [o for o in results if isinstance(o, rxllm.UsageLimitExceeded)]
        stopped = [o for o in over if o.partial is not None]
        assert len(stopped) == crossed
        assert all(o.partial is not None and o.partial.text == "ten tokens" for o in stopped)
        assert calls_made(llm) == finished + crossed
        assert len(over) == 5 - finished

    def test_a_crossing_stops_the_other_items_still_running(self) -> None:
        slow = rxllm.scripted([f"w{i} " for i in range(100)], delay=0.02)
        heavy = rxllm.scripted([Chunk(content="big", usage=usage(1000, 1))], delay=0.2)

        def pipeline(item: str) -> Any:
            return heavy.stream(item) if item == "heavy" else slow.stream(item)

        results = dict(
            rxllm.iterate(
                rxllm.batch(
                    ["slow", "heavy"],
                    pipeline,
                    concurrency=2,
                    progress=False,
                    limits=rxllm.UsageLimits(input_tokens=100),
                )
            )
        )
        stopped = results["slow"]
        assert isinstance(stopped, rxllm.UsageLimitExceeded)
        assert stopped.limit == "input_tokens" and "stopped too" in str(stopped)
        assert stopped.partial is not None and 0 < len(stopped.partial.text) < len(
            "".join(f"w{i} " for i in range(100))
        )
        assert isinstance(results["heavy"], rxllm.UsageLimitExceeded)

    def test_a_tool_loop_pipeline_counts_all_its_calls(self) -> None:
        call = ToolCallDelta(index=0, id="c", name="ping", arguments="{}")
        llm = rxllm.scripted(
            [Chunk(tool_calls=(call,), usage=usage(30, 5))],
            then=[[Chunk(content="pong", usage=usage(40, 5))]],
        )
        results = outcomes(
            rxllm.batch(
                ["a", "b"],
                lambda item: llm.stream(item, tools=[ping]).pipe(ops.tool_loop()),
                concurrency=1,
                progress=False,
                limits=rxllm.UsageLimits(input_tokens=70),
            )
        )
        first, second = (outcome for _, outcome in results)
        assert isinstance(first, rxllm.Response)  # 30 + 40 = 70: reached, not crossed
        assert isinstance(second, rxllm.UsageLimitExceeded) and second.partial is None

    def test_a_pipeline_ending_in_a_response_counts_it_whole(self) -> None:
        llm = rxllm.scripted("ok", usage=usage(50, 10))
        results = outcomes(
            rxllm.batch(
                many(3),
                lambda item: llm.stream(item).pipe(ops.to_response()),
                concurrency=1,
                progress=False,
                limits=rxllm.UsageLimits(output_tokens=15),
            )
        )
        kinds = [type(outcome).__name__ for _, outcome in results]
        assert kinds == ["Response", "UsageLimitExceeded", "UsageLimitExceeded"]
        assert results[1][1].partial is not None  # crossed: the second answer is kept
        assert results[2][1].partial is None  # never started


KEY = "sk-limits-test"


class TestOverTheSDKs:
    """A stopped stream's HTTP call is closed: the loopback server's record shows it."""

    def test_a_tool_loop_crossing_the_input_limit_closes_the_call(self, server: Server) -> None:
        server.push(Script([f"w{i} " for i in range(300)], delay=0.02, usage=usage(5000, 300)))
        llm = rxllm.anthropic("claude-sonnet-4-5", base_url=server.url, api_key=KEY)
        stream = llm.stream("hi", tools=[ping]).pipe(
            ops.tool_loop(limits=rxllm.UsageLimits(input_tokens=1000))
        )
        with pytest.raises(rxllm.UsageLimitExceeded) as caught:
            rxllm.collect(stream, timeout=10)
        assert caught.value.usage is not None and caught.value.usage.input_tokens == 5000
        assert server.last.wait_closed(5)  # message_start said 5000: stopped there
        assert server.last.chunks_written < 20

    def test_a_batch_crossing_closes_the_other_calls_in_flight(self, server: Server) -> None:
        with Server() as other:
            server.push(Script(["Big"], first_delay=0.3, usage=usage(5000, 1)))
            other.push(Script([f"w{i} " for i in range(300)], delay=0.02))
            heavy = rxllm.anthropic("claude-sonnet-4-5", base_url=server.url, api_key=KEY)
            slow = rxllm.openai("gpt-4o-mini", base_url=other.url, api_key=KEY)
            results = dict(
                rxllm.iterate(
                    rxllm.batch(
                        ["heavy", "slow"],
                        lambda item: (heavy if item == "heavy" else slow).stream(item),
                        concurrency=2,
                        progress=False,
                        limits=rxllm.UsageLimits(input_tokens=1000),
                    )
                )
            )
            assert isinstance(results["heavy"], rxllm.UsageLimitExceeded)
            assert isinstance(results["slow"], rxllm.UsageLimitExceeded)
            assert other.last.wait_closed(5)
            assert other.last.chunks_written < 100
