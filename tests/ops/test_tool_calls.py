"""`tool_calls()`: each tool call once, when its arguments are complete."""

from __future__ import annotations

import itertools
import json

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm import ops
from rxllm.models import Chunk, ToolCall, ToolCallDelta
from rxllm.ops._tool_calls import ToolCallDecoder, tool_calls

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def fragment(
    index: int, arguments: str = "", *, id: str | None = None, name: str | None = None
) -> Chunk:
    return Chunk(tool_calls=(ToolCallDelta(index=index, id=id, name=name, arguments=arguments),))


class TestDecoder:
    """Putting fragments together, without Rx."""

    def test_a_later_index_completes_the_earlier_calls(self) -> None:
        decoder = ToolCallDecoder()
        assert decoder.decode(fragment(0, '{"a"', id="c0", name="f")) == []
        assert decoder.decode(fragment(0, ": 1}")) == []
        assert decoder.decode(fragment(1, "{}", id="c1", name="g")) == [
            ToolCall(id="c0", name="f", arguments='{"a": 1}')
        ]
        assert decoder.flush() == [ToolCall(id="c1", name="g", arguments="{}")]
        assert decoder.flush() == []

    def test_a_finish_reason_completes_every_call(self) -> None:
        decoder = ToolCallDecoder()
        decoder.decode(fragment(0, "{}", id="c0", name="f"))
        assert decoder.decode(Chunk(finish_reason="tool_calls")) == [
            ToolCall(id="c0", name="f", arguments="{}")
        ]
        assert decoder.flush() == []

    def test_several_calls_in_one_chunk_come_out_in_index_order(self) -> None:
        decoder = ToolCallDecoder()
        chunk = Chunk(
            tool_calls=(
                ToolCallDelta(index=1, id="b", name="g", arguments="{}"),
                ToolCallDelta(index=0, id="a", name="f", arguments="{}"),
            ),
            finish_reason="tool_calls",
        )
        assert [c.id for c in decoder.decode(chunk)] == ["a", "b"]

    def test_a_fragment_of_a_finished_call_is_an_error(self) -> None:
        decoder = ToolCallDecoder()
        decoder.decode(fragment(0, "{", name="f"))
        decoder.decode(fragment(1, "{", name="g"))
        decoder.decode(fragment(0, ""))  # an empty fragment says nothing: ignored
        with pytest.raises(ValueError, match="interleaves"):
            decoder.decode(fragment(0, "}"))

    def test_id_and_name_come_from_whichever_fragment_has_them(self) -> None:
        decoder = ToolCallDecoder()
        decoder.decode(fragment(0, "{"))
        decoder.decode(fragment(0, "}", id="late", name="f"))
        assert decoder.flush() == [ToolCall(id="late", name="f", arguments="{}")]


class TestOperator:
    """The Rx operator: timing, completion, errors, disposal."""

    def test_calls_are_emitted_as_they_complete(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(150, fragment(0, "{}", id="old", name="old")),
            on_next(210, Chunk(content="Let me check.")),
            on_next(220, fragment(0, '{"city":', id="c0", name="weather")),
            on_next(230, fragment(0, ' "Oslo"}')),
            on_next(240, fragment(1, '{"tz": "CET"}', id="c1", name="time")),
            on_next(250, fragment(2, "", id="c2", name="noop")),
            on_next(260, Chunk(finish_reason="tool_calls")),
            on_completed(270),
        )
        results = scheduler.start(lambda: xs.pipe(tool_calls()))
        assert results.messages == [
            on_next(240, ToolCall(id="c0", name="weather", arguments='{"city": "Oslo"}')),
            on_next(250, ToolCall(id="c1", name="time", arguments='{"tz": "CET"}')),
            on_next(260, ToolCall(id="c2", name="noop", arguments="")),
            on_completed(270),
        ]
        assert xs.subscriptions == [subscribe(200, 270)]

    def test_completion_flushes_the_last_call(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, fragment(0, "{}", id="c0", name="f")), on_completed(220)
        )
        results = scheduler.start(lambda: xs.pipe(tool_calls()))
        assert results.messages == [
            on_next(220, ToolCall(id="c0", name="f", arguments="{}")),
            on_completed(220),
        ]

    def test_an_error_drops_the_incomplete_call(self) -> None:
        error = rxllm.StreamInterrupted("dropped")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, fragment(0, "{}", id="c0", name="f")),
            on_next(220, fragment(1, '{"x', id="c1", name="g")),
            on_error(230, error),
        )
        results = scheduler.start(lambda: xs.pipe(tool_calls()))
        assert results.messages == [
            on_next(220, ToolCall(id="c0", name="f", arguments="{}")),
            on_error(230, error),
        ]
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_interleaved_calls_fail_and_unsubscribe(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, fragment(0, "{", name="f")),
            on_next(220, fragment(1, "{", name="g")),
            on_next(230, fragment(0, "}")),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(tool_calls()))
        assert [m.time for m in results.messages] == [220, 230]
        last = results.messages[-1].value
        assert isinstance(last, OnError) and isinstance(last.exception, ValueError)
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_a_call_cut_off_at_max_tokens_fails_after_the_whole_ones(self) -> None:
        cut = Chunk(finish_reason="length")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, fragment(0, "{}", id="c0", name="f")),
            on_next(220, fragment(1, '{"city": "Os', id="c1", name="weather")),
            on_next(230, cut),
            on_next(240, Chunk(content="after")),
            on_completed(250),
        )
        results = scheduler.start(lambda: xs.pipe(tool_calls()))
        assert results.messages[0] == on_next(220, ToolCall(id="c0", name="f", arguments="{}"))
        assert results.messages[1].time == 230
        error = results.messages[1].value
        assert isinstance(error, OnError)
        assert isinstance(error.exception, rxllm.OutputValidationError)
        assert "inside tool call 'weather'" in str(error.exception)
        assert len(results.messages) == 2
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_a_call_cut_before_its_arguments_at_max_tokens_is_not_emitted(self) -> None:
        decoder = ToolCallDecoder()
        decoder.decode(fragment(0, "{}", id="c0", name="f"))
        decoder.decode(fragment(1, id="c1", name="g"))  # its name only, then the cut
        assert decoder.decode(Chunk(finish_reason="length")) == []
        assert decoder.failure is not None and "'g'" in str(decoder.failure)

    def test_a_whole_call_at_max_tokens_is_emitted(self) -> None:
        decoder = ToolCallDecoder()
        decoder.decode(fragment(0, '{"a": 1}', id="c0", name="f"))
        assert decoder.decode(Chunk(finish_reason="length")) == [
            ToolCall(id="c0", name="f", arguments='{"a": 1}')
        ]
        assert decoder.failure is None

    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("", []),  # its name only: running it would use the tool's defaults
            ('{"pattern": "/tmp/', []),  # half its arguments
            ('{"pattern": "/tmp/old.log"}', [{"pattern": "/tmp/old.log"}]),  # whole
        ],
    )
    def test_a_stop_during_a_tool_call_never_runs_it_with_missing_arguments(
        self, written: str, expected: list[dict[str, str]]
    ) -> None:
        ran: list[dict[str, str]] = []

        def delete_files(pattern: str = "*") -> str:
            """Delete the files matching `pattern`."""
            ran.append({"pattern": pattern})
            return "deleted"

        llm = rxllm.scripted(
            [
                Chunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="delete_files"),)),
                Chunk(tool_calls=(ToolCallDelta(index=0, arguments=written),)),
                Chunk(content="stop here"),  # the Stop button, as a predicate
                Chunk(tool_calls=(ToolCallDelta(index=0, arguments="never sent"),)),
            ]
        )
        results = list(
            rxllm.iterate(
                llm.stream("clean up").pipe(
                    ops.take_until(lambda c: c.content == "stop here", inclusive=False),
                    tool_calls(),
                    ops.tool_results([delete_files]),
                )
            )
        )
        assert ran == expected
        assert [r.call.args for r in results] == expected

    def test_other_items_are_a_type_error(self) -> None:
        failures: list[Exception] = []
        reactivex.of("text").pipe(tool_calls()).subscribe(on_error=failures.append)  # type: ignore[arg-type]
        assert isinstance(failures[0], TypeError)

    def test_disposal_unsubscribes_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, fragment(0, "{}", name="f")),
            on_next(230, fragment(1, "{}", name="g")),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(tool_calls()), disposed=220)
        assert results.messages == []
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_with_a_provider(self) -> None:
        llm = rxllm.scripted(
            [
                Chunk(content="Checking."),
                fragment(0, "", id="call_1", name="weather"),
                fragment(0, '{"city": '),
                fragment(0, '"Oslo"}'),
                fragment(1, '{"city": "Rome"}', id="call_2", name="weather"),
                Chunk(finish_reason="tool_calls"),
            ],
            delay=0.001,
        )
        calls = list(rxllm.iterate(llm.stream("weather?").pipe(tool_calls())))
        assert [(c.id, c.args) for c in calls] == [
            ("call_1", {"city": "Oslo"}),
            ("call_2", {"city": "Rome"}),
        ]


@st.composite
def calls_and_fragments(draw: st.DrawFn) -> tuple[list[ToolCall], list[Chunk]]:
    count = draw(st.integers(0, 4))
    calls = [
        ToolCall(id=f"call_{i}", name=f"tool_{i}", arguments=draw(st.text(max_size=30)))
        for i in range(count)
    ]
    chunks: list[Chunk] = []
    for index, call in enumerate(calls):
        text = call.arguments
        cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=8)))
        pieces = [text[a:b] for a, b in itertools.pairwise([0, *cuts, len(text)])]
        for position, piece in enumerate(pieces):
            first = position == 0
            chunks.append(
                fragment(
                    index,
                    piece,
                    id=call.id if first else None,
                    name=call.name if first else None,
                )
            )
            if draw(st.booleans()):
                chunks.append(Chunk(content="x"))  # other deltas in between
    if draw(st.booleans()):
        chunks.append(Chunk(finish_reason="tool_calls"))
    elif calls and not _json_object(calls[-1].arguments):
        # Without a finish reason (a Stop) the last call may have been cut off while its
        # arguments were written: it is dropped unless they are a complete JSON object.
        calls = calls[:-1]
    return calls, chunks


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class TestProperties:
    """For any split of the fragments: each call once, with exactly its arguments."""

    @settings(max_examples=300, deadline=None)
    @given(calls_and_fragments())
    def test_each_call_once_with_its_concatenated_arguments(
        self, case: tuple[list[ToolCall], list[Chunk]]
    ) -> None:
        calls, chunks = case
        found: list[ToolCall] = []
        done: list[bool] = []
        reactivex.from_iterable(chunks).pipe(tool_calls()).subscribe(
            found.append, on_completed=lambda: done.append(True)
        )
        assert found == calls
        assert done == [True]
