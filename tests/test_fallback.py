"""fallback: the next source takes over when one fails, before or during the stream."""

from __future__ import annotations

import asyncio

import pytest
import reactivex
from reactivex import operators as rx_ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing import Script, Server

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def text(content: str, provider: str = "scripted") -> Chunk:
    return Chunk(content=content, provider=provider)


class TestHandOver:
    """Which failures move on to the next source, and when it is subscribed (virtual time)."""

    def test_a_failure_before_the_first_chunk_subscribes_the_next_source_then(self) -> None:
        scheduler = TestScheduler()
        boom = rxllm.ServerError("overloaded", provider="openai")
        first = scheduler.create_cold_observable(on_error(10, boom))
        second = scheduler.create_cold_observable(
            on_next(5, text("Hi", "anthropic")), on_completed(8)
        )
        results = scheduler.start(lambda: rxllm.fallback(first, second))
        assert results.messages == [on_next(215, text("Hi", "anthropic")), on_completed(218)]
        assert first.subscriptions == [subscribe(200, 210)]
        assert second.subscriptions == [subscribe(210, 218)]

    def test_a_source_that_works_is_the_only_one_subscribed(self) -> None:
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(on_next(5, text("ok")), on_completed(6))
        second = scheduler.create_cold_observable(on_completed(1))
        results = scheduler.start(lambda: rxllm.fallback(first, second))
        assert results.messages == [on_next(205, text("ok")), on_completed(206)]
        assert second.subscriptions == []

    @pytest.mark.parametrize(
        "error",
        [
            rxllm.ServerError("503"),
            rxllm.RateLimitError("429"),
            rxllm.APIConnectionError("refused"),
            rxllm.StreamTimeout("stalled"),
            rxllm.AuthenticationError("401: a key for this provider only"),
            rxllm.PermissionDeniedError("403"),
            rxllm.NotFoundError("404: this provider's model name"),
            rxllm.APIStatusError("409", status_code=409),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_retryable_errors_and_http_statuses_other_than_400_move_on(
        self, error: rxllm.LLMError
    ) -> None:
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(on_error(10, error))
        second = scheduler.create_cold_observable(on_next(1, text("ok")), on_completed(2))
        results = scheduler.start(lambda: rxllm.fallback(first, second))
        assert results.messages == [on_next(211, text("ok")), on_completed(212)]

    @pytest.mark.parametrize(
        "error",
        [
            rxllm.BadRequestError("400: the request itself is wrong"),
            rxllm.OutputValidationError("not the schema"),
            rxllm.StreamError("content policy", retryable=False),
            ValueError("a bug in a pipeline"),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_other_errors_are_raised_without_trying_the_next(self, error: Exception) -> None:
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(on_error(10, error))
        second = scheduler.create_cold_observable(on_next(1, text("never")), on_completed(2))
        results = scheduler.start(lambda: rxllm.fallback(first, second))
        assert results.messages == [on_error(210, error)]
        assert second.subscriptions == []

    def test_sources_failing_while_being_subscribed_hand_over_in_turn(self) -> None:
        errors = [rxllm.ServerError("a"), rxllm.APIConnectionError("b")]
        sources = [reactivex.throw(error) for error in errors]
        answer = rxllm.collect(rxllm.fallback(*sources, reactivex.of(text("third"))))
        assert answer.text == "third"

    def test_a_subscriber_raising_an_llm_error_is_not_a_provider_failure(self) -> None:
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(on_next(5, text("a")), on_completed(9))
        second = scheduler.create_cold_observable(on_next(1, text("never")), on_completed(2))
        mine = rxllm.ServerError("raised by my own on_next")

        def raising(_: Chunk) -> None:
            raise mine

        results = scheduler.start(
            lambda: rxllm.fallback(first, second).pipe(rx_ops.do_action(raising))
        )
        assert results.messages == [on_error(205, mine)]
        assert second.subscriptions == []


class TestAllFail:
    """When no source is left: the last error, with every attempt's."""

    def test_the_last_error_is_raised_with_every_attempt_in_order(self) -> None:
        scheduler = TestScheduler()
        errors = [
            rxllm.ServerError("openai 503", provider="openai"),
            rxllm.RateLimitError("anthropic 429", provider="anthropic"),
            rxllm.APIConnectionError("groq unreachable", provider="groq"),
        ]
        sources = [scheduler.create_cold_observable(on_error(10, e)) for e in errors]
        results = scheduler.start(lambda: rxllm.fallback(*sources))
        assert results.messages == [on_error(230, errors[2])]
        assert errors[2].attempts == tuple(errors)
        assert [s.subscriptions for s in sources] == [
            [subscribe(200, 210)],
            [subscribe(210, 220)],
            [subscribe(220, 230)],
        ]

    def test_a_single_error_has_no_attempts_until_fallback_tried_several(self) -> None:
        assert rxllm.ServerError("x").attempts == ()
        error = rxllm.ServerError("only one")
        with pytest.raises(rxllm.ServerError) as caught:
            rxllm.collect(rxllm.fallback(reactivex.throw(error)))
        assert caught.value.attempts == (error,)

    def test_an_error_that_does_not_move_on_carries_the_attempts_before_it(self) -> None:
        first, second = rxllm.ServerError("503"), rxllm.BadRequestError("400")
        with pytest.raises(rxllm.BadRequestError) as caught:
            rxllm.collect(rxllm.fallback(reactivex.throw(first), reactivex.throw(second)))
        assert caught.value.attempts == (first, second)

    def test_the_partial_is_everything_delivered_by_every_source(self) -> None:
        first = rxllm.scripted(["The ans"], error=rxllm.StreamInterrupted("dropped"))
        second = rxllm.scripted(["The answer is"], error=rxllm.ServerError("overloaded"))
        with pytest.raises(rxllm.ServerError) as caught:
            rxllm.collect(rxllm.fallback(first.stream("q"), second.stream("q")), timeout=10)
        assert caught.value.partial is not None
        assert caught.value.partial.text == "The answer is"
        assert [type(e) for e in caught.value.attempts] == [
            rxllm.StreamInterrupted,
            rxllm.ServerError,
        ]


class TestMidStream:
    """After text went out: the next source continues from it, never repeating it."""

    def test_the_next_source_continues_from_the_text_delivered(self) -> None:
        first = rxllm.scripted(["Hello ", "wor"], error=rxllm.ServerError("overloaded"))
        second = rxllm.scripted(["Hello ", "world", "!"])
        seen: list[str] = []
        answer = rxllm.collect(
            rxllm.fallback(first.stream("greet"), second.stream("greet")).pipe(
                rx_ops.do_action(lambda c: seen.append(c.content))
            ),
            timeout=10,
        )
        assert answer.text == "Hello world!"
        assert "".join(seen) == "Hello world!"  # each piece once
        request = second._provider.requests[0]  # type: ignore[attr-defined]
        assert request.messages[-1] == {"role": "assistant", "content": "Hello wor"}

    def test_resume_false_raises_instead(self) -> None:
        first = rxllm.scripted(["Hello ", "wor"], error=rxllm.ServerError("overloaded"))
        second = rxllm.scripted("Hello world!")
        with pytest.raises(rxllm.ServerError) as caught:
            rxllm.collect(
                rxllm.fallback(first.stream("q"), second.stream("q"), resume=False), timeout=10
            )
        assert caught.value.partial is not None and caught.value.partial.text == "Hello wor"
        assert second._provider.requests == []  # type: ignore[attr-defined]

    def test_resume_false_still_moves_on_before_any_content(self) -> None:
        first = rxllm.scripted([Chunk(model="m")], error=rxllm.ServerError("overloaded"))
        second = rxllm.scripted("Fine.")
        answer = rxllm.collect(
            rxllm.fallback(first.stream("q"), second.stream("q"), resume=False), timeout=10
        )
        assert answer.text == "Fine."

    def test_a_source_that_cannot_continue_is_skipped(self) -> None:
        first = rxllm.scripted(["Hello ", "wor"], error=rxllm.ServerError("overloaded"))
        plain = rxllm.scripted("Hello world!").stream("q").pipe(rx_ops.map(lambda c: c))
        third = rxllm.scripted("Hello world!")
        answer = rxllm.collect(rxllm.fallback(first.stream("q"), plain, third.stream("q")))
        assert answer.text == "Hello world!"

    @pytest.mark.parametrize(
        "chunk",
        [
            Chunk(tool_calls=(ToolCallDelta(index=0, id="t", name="f"),)),
            Chunk(thinking="Let me think"),
            Chunk(refusal="I can't"),
        ],
        ids=["tool_calls", "thinking", "refusal"],
    )
    def test_what_cannot_be_continued_is_raised(self, chunk: Chunk) -> None:
        first = rxllm.scripted([chunk], error=rxllm.ServerError("overloaded"))
        second = rxllm.scripted("never")
        with pytest.raises(rxllm.ServerError):
            rxllm.collect(rxllm.fallback(first.stream("q"), second.stream("q")), timeout=10)
        assert second._provider.requests == []  # type: ignore[attr-defined]

    def test_a_break_after_the_finish_reason_completes_the_whole_answer(self) -> None:
        scheduler = TestScheduler()
        done = Chunk(content="All.", finish_reason="stop")
        first = scheduler.create_cold_observable(
            on_next(5, done), on_error(9, rxllm.StreamInterrupted("no [DONE]"))
        )
        second = scheduler.create_cold_observable(on_next(1, text("never")))
        results = scheduler.start(lambda: rxllm.fallback(first, second))
        assert results.messages == [on_next(205, done), on_completed(209)]
        assert second.subscriptions == []

    def test_each_chunk_names_the_provider_and_model_that_served_it(self) -> None:
        first = rxllm.scripted(["One, "], error=rxllm.ServerError("x"), model="model-a")
        second = rxllm.scripted(["One, ", "two."], model="model-b")
        chunks = list(rxllm.iterate(rxllm.fallback(first.stream("q"), second.stream("q"))))
        assert [(c.content, c.model) for c in chunks] == [("One, ", "model-a"), ("two.", "model-b")]


class TestUsage:
    """Usage is summed over every source subscribed."""

    def test_the_last_chunk_counts_the_failed_sources_usage_too(self) -> None:
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(
            on_next(1, Chunk(usage=Usage(input_tokens=10, total_tokens=10))),
            on_error(5, rxllm.ServerError("overloaded")),
        )
        second = scheduler.create_cold_observable(
            on_next(1, text("ok")),
            on_next(2, Chunk(usage=Usage(input_tokens=12, output_tokens=3, total_tokens=15))),
            on_completed(3),
        )
        results = scheduler.start(lambda: rxllm.fallback(first, second))
        last = results.messages[-2].value.value
        assert last.usage == Usage(input_tokens=22, output_tokens=3, total_tokens=25)

    def test_usage_a_failed_source_reported_only_in_its_partial_is_counted(self) -> None:
        error = rxllm.StreamInterrupted("dropped")
        error.partial = rxllm.Response(usage=Usage(input_tokens=7, total_tokens=7))
        second = reactivex.of(text("ok"), Chunk(usage=Usage(input_tokens=9, total_tokens=9)))
        answer = rxllm.collect(rxllm.fallback(reactivex.throw(error), second))
        assert answer.usage == Usage(input_tokens=16, total_tokens=16)

    def test_the_error_when_all_fail_has_the_usage_of_all(self) -> None:
        first = rxllm.scripted(
            [Chunk(content="a", usage=Usage(input_tokens=4, total_tokens=4))],
            error=rxllm.ServerError("x"),
        )
        second = rxllm.scripted(
            [Chunk(usage=Usage(input_tokens=5, total_tokens=5))], error=rxllm.ServerError("y")
        )
        with pytest.raises(rxllm.ServerError) as caught:
            rxllm.collect(rxllm.fallback(first.stream("q"), second.stream("q")), timeout=10)
        assert caught.value.partial is not None
        assert caught.value.partial.usage == Usage(input_tokens=9, total_tokens=9)


class TestCancellation:
    """Disposing cancels the source in flight and starts no other."""

    def test_disposing_unsubscribes_the_source_in_flight(self) -> None:
        scheduler = TestScheduler()
        first = scheduler.create_cold_observable(on_error(10, rxllm.ServerError("x")))
        second = scheduler.create_cold_observable(on_next(20, text("a")), on_next(80, text("b")))
        third = scheduler.create_cold_observable(on_next(1, text("never")))
        results = scheduler.start(lambda: rxllm.fallback(first, second, third), disposed=250)
        assert results.messages == [on_next(230, text("a"))]
        assert second.subscriptions == [subscribe(210, 250)]
        assert third.subscriptions == []


class TestArguments:
    """Bad arguments fail at once, saying what to pass."""

    def test_no_source(self) -> None:
        with pytest.raises(ValueError, match="at least one source"):
            rxllm.fallback()

    def test_an_llm_instead_of_its_stream(self) -> None:
        with pytest.raises(TypeError, match=r"llm\.stream\(prompt\)"):
            rxllm.fallback(rxllm.scripted("x"))  # type: ignore[arg-type]

    def test_resume_must_be_a_bool(self) -> None:
        with pytest.raises(TypeError, match="resume must be True or False"):
            rxllm.fallback(reactivex.empty(), resume="yes")  # type: ignore[arg-type]


KEY = "sk-fallback-test"


def _openai(server: Server) -> rxllm.LLM:
    return rxllm.openai("gpt-4o-mini", base_url=server.url, api_key=KEY, max_retries=0)


def _anthropic(server: Server) -> rxllm.LLM:
    return rxllm.anthropic("claude-sonnet-4-5", base_url=server.url, api_key=KEY, max_retries=0)


class TestOverTheSDKs:
    """OpenAI failing, Anthropic taking over, through the real SDKs and the loopback server."""

    def test_openai_failing_with_500_before_the_stream_hands_over_to_anthropic(
        self, server: Server
    ) -> None:
        server.push(Script("x", status=500))
        server.push(Script(["Bonjour", "!"], model="claude-sonnet-4-5-20250929"))
        answer = rxllm.collect(
            rxllm.fallback(_openai(server).stream("hi"), _anthropic(server).stream("hi")),
            timeout=10,
        )
        assert answer.text == "Bonjour!"
        assert (answer.provider, answer.model) == ("anthropic", "claude-sonnet-4-5-20250929")
        assert [r.path for r in server.requests] == ["/chat/completions", "/v1/messages"]
        assert server.requests[1].body["messages"] == [{"role": "user", "content": "hi"}]

    @pytest.mark.parametrize(
        ("k", "repeat"), [(1, []), (3, ["quick", " brown"]), (5, ["fox jumps"])]
    )
    def test_a_dropped_openai_stream_is_continued_by_anthropic_with_a_prefill(
        self, server: Server, k: int, repeat: list[str]
    ) -> None:
        words = ["The ", "quick ", "brown ", "fox ", "jumps ", "over"]
        server.push(Script(words, drop_after=k, model="gpt-4o-mini-2024-07-18"))
        sent = "".join(words[:k])
        # the model may repeat the end of what it was given (in pieces), then goes on
        server.push(Script([*repeat, " ", *words[k:], " the dog."]))
        seen: list[Chunk] = []
        answer = rxllm.collect(
            rxllm.fallback(_openai(server).stream("fox"), _anthropic(server).stream("fox")).pipe(
                rx_ops.do_action(seen.append)
            ),
            timeout=10,
        )
        expected = "The quick brown fox jumps over the dog."
        assert answer.text == expected
        assert "".join(c.content for c in seen) == expected  # exactly once
        served = [(c.provider, c.content) for c in seen if c.content]
        assert served[:k] == [("openai", w) for w in words[:k]]
        assert {p for p, _ in served[k:]} == {"anthropic"}
        continuation = server.requests[1].body
        assert continuation["messages"][-1] == {"role": "assistant", "content": sent.rstrip()}
        assert answer.provider == "anthropic"
        assert answer.raw is None  # no native object covers an answer from two providers

    def test_when_all_fail_the_error_carries_every_attempt(self, server: Server) -> None:
        server.push(Script("x", status=503))
        server.push(Script(["Half"], error_event="overloaded_error"))
        with pytest.raises(rxllm.ServerError) as caught:
            rxllm.collect(
                rxllm.fallback(_openai(server).stream("hi"), _anthropic(server).stream("hi")),
                timeout=10,
            )
        attempts = caught.value.attempts
        assert [(type(e).__name__, e.provider) for e in attempts] == [
            ("ServerError", "openai"),
            ("ServerStreamError", "anthropic"),
        ]
        assert attempts[-1] is caught.value
        assert caught.value.partial is not None and caught.value.partial.text == "Half"
        assert KEY not in repr(attempts) and KEY not in str(caught.value)

    def test_disposing_mid_stream_closes_the_second_call(self, server: Server) -> None:
        server.push(Script("x", status=500))
        server.push(Script([f"w{i} " for i in range(200)], delay=0.02))
        source = rxllm.fallback(_openai(server).stream("hi"), _anthropic(server).stream("hi"))
        answer = rxllm.collect(source.pipe(ops.take_until(lambda c: c.content == "w1 ")))
        assert answer.text == "w0 w1 "
        second = server.requests[1]
        assert second.wait_closed(5)
        assert second.chunks_written < 50  # it stopped writing long before the end

    async def test_from_asyncio_the_continuation_runs_on_the_loop(self, server: Server) -> None:
        server.push(Script(["Hello ", "wor"], drop_after=2))
        server.push(Script(["ld", "!"]))
        loop_thread = asyncio.get_running_loop()
        threads: set[object] = set()

        def seen(_: Chunk) -> None:
            threads.add(asyncio.get_running_loop())

        answer = await rxllm.acollect(
            rxllm.fallback(_openai(server).stream("hi"), _anthropic(server).stream("hi")).pipe(
                rx_ops.do_action(seen)
            )
        )
        assert answer.text == "Hello world!"
        assert threads == {loop_thread}
