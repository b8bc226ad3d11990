"""`smooth()`: even pieces of text, one per `delay`, with everything else in its place."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from typing import Any, cast

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as rx_ops
from reactivex.notification import Notification, OnCompleted, OnNext
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.ops._smooth import PieceDecoder, smooth

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def text(content: str, **fields: Any) -> Chunk:
    return Chunk(content=content, **fields)


class Recording(abc.SchedulerBase):
    """Delegates to a `TestScheduler` and records when the operator's timer actions run."""

    def __init__(self, inner: TestScheduler) -> None:
        self.inner = inner
        self.fired: list[float] = []

    @property
    def now(self) -> Any:
        return self.inner.now

    def _record(self, action: Any) -> Any:
        def run(scheduler: abc.SchedulerBase, state: Any = None) -> Any:
            self.fired.append(self.inner.clock)
            return action(scheduler, state)

        return run

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.inner.schedule(self._record(action), state)

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.inner.schedule_relative(duetime, self._record(action), state)

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.inner.schedule_absolute(duetime, self._record(action), state)

    @classmethod
    def to_seconds(cls, value: Any) -> float:
        return TestScheduler.to_seconds(value)

    @classmethod
    def to_datetime(cls, value: Any) -> Any:
        return TestScheduler.to_datetime(value)

    @classmethod
    def to_timedelta(cls, value: Any) -> Any:
        return TestScheduler.to_timedelta(value)


class TestPieceDecoder:
    """How text is cut, independent of Rx."""

    @pytest.mark.parametrize(
        ("by", "pieces", "expected"),
        [
            (
                "word",
                ["Hello wor", "ld, how  are", " you"],
                ["Hello ", "world, ", "how  ", "are ", "you"],
            ),
            ("word", ["  lead", "ing"], ["  leading"]),
            ("word", ["你好世界。", "OK"], ["你", "好", "世", "界", "。", "OK"]),
            ("word", ["Hello世界 ok"], ["Hello", "世", "界 ", "ok"]),
            ("word", ["สวัสดี"], ["ส", "ว", "ั", "ส", "ด", "ี"]),
            ("line", ["one\ntw", "o\n\nthree"], ["one\n", "two\n\n", "three"]),
            (r"[.!?]\s", ["One. Two! Thr", "ee"], ["One. ", "Two! ", "Three"]),
            (re.compile(r","), ["a,b,,c"], ["a,", "b,", ",", "c"]),
            (r"(?=x)", ["abxcdx"], ["ab", "xcd", "x"]),  # empty matches never make empty pieces
        ],
    )
    def test_pieces(self, by: Any, pieces: list[str], expected: list[str]) -> None:
        decoder = PieceDecoder(by)
        out: list[str] = []
        for piece in pieces:
            out += decoder.decode(piece)
        out += decoder.flush()
        assert out == expected
        assert "".join(out) == "".join(pieces)

    @pytest.mark.parametrize(("by", "piece", "end"), [("line", "x", "\n"), ("word", "x", " ")])
    def test_a_long_line_or_word_is_not_searched_again_per_chunk(
        self, by: str, piece: str, end: str
    ) -> None:
        """Linear in the text: chunks that cannot end a piece are not searched at all."""
        decoder = PieceDecoder(by)
        searched: list[int] = []
        pattern = decoder._pattern  # pyright: ignore[reportPrivateUsage]

        class Counting:
            def search(self, text: str, position: int = 0) -> Any:
                searched.append(len(text) - position)
                return pattern.search(text, position)

        decoder._pattern = Counting()  # type: ignore[assignment]  # pyright: ignore[reportPrivateUsage]
        for _ in range(5000):
            assert decoder.decode(piece) == []
        assert searched == []  # 5000 chunks, no search: was 5000 searches of 1..5000 chars
        assert decoder.decode(end) == [piece * 5000 + end]
        assert sum(searched) <= 2 * 5001

    def test_bad_by(self) -> None:
        with pytest.raises(TypeError):
            smooth(by=3)  # type: ignore[arg-type]
        with pytest.raises(re.error):
            smooth(by="(")
        with pytest.raises(ValueError, match="delay"):
            smooth(delay=-1)
        for delay in (float("inf"), float("nan"), "1"):  # inf hung the stream in a timer
            with pytest.raises(ValueError, match="delay"):
                smooth(delay=delay)  # type: ignore[arg-type]
        for typo in ("words", "sentence", "char"):  # no smoothing at all, silently
            with pytest.raises(ValueError, match="mode name"):
                smooth(by=typo)  # type: ignore[arg-type]


class TestPacing:
    """Virtual time: one piece per `delay`, the first at once."""

    def test_a_burst_is_spread_out(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, text("Hello big wo")), on_next(215, text("rld")), on_completed(250)
        )
        results = scheduler.start(lambda: xs.pipe(smooth(delay=10, scheduler=scheduler)))
        assert results.messages == [
            on_next(210, text("Hello ")),
            on_next(220, text("big ")),
            on_next(250, text("world")),  # the unfinished word waits for completion
            on_completed(250),
        ]
        assert xs.subscriptions == [subscribe(200, 250)]

    def test_completion_waits_for_the_remaining_pieces(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, text("a b c d")), on_completed(212))
        results = scheduler.start(lambda: xs.pipe(smooth(delay=10)))  # the subscription's scheduler
        assert results.messages == [
            on_next(210, text("a ")),
            on_next(220, text("b ")),
            on_next(230, text("c ")),
            on_next(240, text("d")),
            on_completed(240),
        ]
        assert xs.subscriptions == [subscribe(200, 212)]

    def test_a_piece_arriving_after_the_delay_goes_out_at_once(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, text("a ")),
            on_next(235, text("b ")),
            on_next(237, text("c ")),
            on_completed(300),
        )
        results = scheduler.start(lambda: xs.pipe(smooth(delay=10, scheduler=scheduler)))
        assert results.messages == [
            on_next(210, text("a ")),
            on_next(235, text("b ")),
            on_next(245, text("c ")),
            on_completed(300),
        ]

    def test_cjk_goes_character_by_character(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, text("你好。")), on_completed(215))
        results = scheduler.start(lambda: xs.pipe(smooth(delay=5, scheduler=scheduler)))
        assert results.messages == [
            on_next(210, text("你")),
            on_next(215, text("好")),
            on_next(220, text("。")),
            on_completed(220),
        ]

    def test_lines(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, text("one two\nthree\nfo")), on_next(212, text("ur")), on_completed(215)
        )
        results = scheduler.start(lambda: xs.pipe(smooth(by="line", delay=10, scheduler=scheduler)))
        assert results.messages == [
            on_next(210, text("one two\n")),
            on_next(220, text("three\n")),
            on_next(230, text("four")),
            on_completed(230),
        ]

    @pytest.mark.parametrize("delay", [0, None])
    def test_no_delay_only_rechunks(self, delay: float | None) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, text("a b c")), on_next(220, text("d e")), on_completed(230)
        )
        results = scheduler.start(lambda: xs.pipe(smooth(delay=delay, scheduler=scheduler)))
        assert results.messages == [
            on_next(210, text("a ")),
            on_next(210, text("b ")),
            on_next(220, text("cd ")),
            on_next(230, text("e")),
            on_completed(230),
        ]


class TestOtherChunks:
    """Chunks without text keep their place; metadata follows the text."""

    def test_non_text_chunks_follow_the_text_before_them(self) -> None:
        call = ToolCallDelta(index=0, name="f", arguments="{}")
        usage = Usage(input_tokens=1, output_tokens=2, total_tokens=3)
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(205, Chunk(thinking="hmm")),
            on_next(210, text("one two thr")),
            on_next(211, Chunk(tool_calls=(call,))),
            on_next(212, text("ee four", finish_reason="stop", usage=usage)),
            on_completed(213),
        )
        results = scheduler.start(lambda: xs.pipe(smooth(delay=10, scheduler=scheduler)))
        assert results.messages == [
            on_next(205, Chunk(thinking="hmm")),
            on_next(210, text("one ")),
            on_next(220, text("two ")),
            on_next(230, text("thr")),  # cut short by the tool call
            on_next(230, Chunk(tool_calls=(call,))),
            on_next(240, text("ee ")),
            on_next(250, text("four")),
            on_next(250, Chunk(finish_reason="stop", usage=usage)),
            on_completed(250),
        ]

    def test_pieces_keep_provider_model_and_id(self) -> None:
        first = text("Hel", provider="openai", model="m1", id="r1")
        second = text("lo you", provider="openai", model="m2", id="r1")
        out: list[Chunk] = []
        reactivex.of(first, second).pipe(smooth(delay=None)).subscribe(out.append)
        assert [(c.content, c.model, c.id, c.provider) for c in out] == [
            ("Hello ", "m2", "r1", "openai"),  # from the chunk that brought its end
            ("you", "m2", "r1", "openai"),
        ]

    def test_other_items_are_a_type_error(self) -> None:
        failures: list[Exception] = []
        reactivex.of("text").pipe(smooth()).subscribe(on_error=failures.append)  # type: ignore[arg-type]
        assert isinstance(failures[0], TypeError)


class TestTermination:
    """Errors, disposal, and a subscriber that raises."""

    def test_an_error_follows_the_remaining_pieces(self) -> None:
        error = RuntimeError("boom")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, text("a b c")), on_error(212, error))
        results = scheduler.start(lambda: xs.pipe(smooth(delay=10, scheduler=scheduler)))
        assert results.messages == [
            on_next(210, text("a ")),
            on_next(220, text("b ")),
            on_next(230, text("c")),
            on_error(230, error),
        ]
        assert xs.subscriptions == [subscribe(200, 212)]

    def test_disposal_cancels_the_timer_and_the_upstream(self) -> None:
        scheduler = TestScheduler()
        timer = Recording(scheduler)
        xs = scheduler.create_hot_observable(
            on_next(210, text("a b c d ")), on_next(300, text("e "))
        )
        results = scheduler.start(lambda: xs.pipe(smooth(delay=10, scheduler=timer)), disposed=225)
        assert results.messages == [on_next(210, text("a ")), on_next(220, text("b "))]
        assert xs.subscriptions == [subscribe(200, 225)]
        assert timer.fired == [220]  # the tick due at 230 was cancelled

    def test_a_raising_subscriber_gets_the_error_and_the_upstream_is_disposed(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, text("a b c d")), on_completed(300))
        seen: list[str] = []
        failures: list[Exception] = []

        def on_item(chunk: Chunk) -> None:
            seen.append(chunk.content)
            if chunk.content == "b ":
                raise ValueError("subscriber bug")

        def run(_: abc.SchedulerBase, __: Any = None) -> None:
            xs.pipe(smooth(delay=10, scheduler=scheduler)).subscribe(on_item, failures.append)

        scheduler.schedule_absolute(200, run)
        scheduler.start()
        assert seen == ["a ", "b "]
        assert [type(f) for f in failures] == [ValueError]
        assert xs.subscriptions == [subscribe(200, 220)]


_TEXTS = st.text(alphabet=st.sampled_from(list("ab c\n\t.你好")), max_size=80)


@st.composite
def chunked(draw: st.DrawFn) -> list[Chunk]:
    content = draw(_TEXTS)
    cuts = sorted(draw(st.sets(st.integers(0, len(content)), max_size=10)))
    bounds = [0, *cuts, len(content)]
    chunks = [text(content[a:b]) for a, b in itertools.pairwise(bounds) if a < b]
    extras = draw(st.lists(st.integers(0, len(chunks)), max_size=3))
    for at in sorted(extras, reverse=True):
        chunks.insert(at, Chunk(thinking="t"))
    return chunks


class TestProperties:
    """For any chunking: the text is unchanged, the other chunks keep their order."""

    @settings(max_examples=200, deadline=None)
    @given(chunked(), st.sampled_from(["word", "line", r"\s"]), st.sampled_from([0, 3]))
    def test_concatenation_is_preserved(self, chunks: list[Chunk], by: str, delay: int) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_cold_observable(
            [on_next(10 + i, c) for i, c in enumerate(chunks)] + [on_completed(10 + len(chunks))]
        )
        results = scheduler.start(lambda: xs.pipe(smooth(by=by, delay=delay, scheduler=scheduler)))
        notifications = [cast(Notification[Chunk], m.value) for m in results.messages]
        items = [n.value for n in notifications if isinstance(n, OnNext)]
        assert isinstance(notifications[-1], OnCompleted)
        assert "".join(c.content for c in items) == "".join(c.content for c in chunks)
        assert all(c.content for c in items if not c.thinking)  # no empty text pieces
        assert [c.thinking for c in items if c.thinking] == [
            c.thinking for c in chunks if c.thinking
        ]
        times = [
            m.time
            for m, n in zip(results.messages, notifications, strict=True)
            if isinstance(n, OnNext) and n.value.content
        ]
        if delay:
            assert all(b - a >= delay for a, b in itertools.pairwise(times))


class TestWithProviders:
    """Real threads and a running asyncio loop."""

    def test_with_a_scripted_provider(self) -> None:
        llm = rxllm.scripted(["Hello big wo", "rld. 你好"])
        chunks = list(rxllm.iterate(llm.stream("hi").pipe(smooth(delay=0.001))))
        assert [c.content for c in chunks] == ["Hello ", "big ", "world. ", "你", "好", ""]
        assert chunks[-1].finish_reason == "stop"
        assert (
            rxllm.collect(llm.stream("hi").pipe(smooth(delay=0.001))).text
            == "Hello big world. 你好"
        )

    def test_disposal_stops_the_pieces(self) -> None:
        llm = rxllm.scripted(["one two three four five six seven"])
        seen: list[str] = []
        first = threading.Event()

        def on_item(chunk: Chunk) -> None:
            seen.append(chunk.content)
            first.set()

        subscription = llm.stream("x").pipe(smooth(delay=0.05)).subscribe(on_item)
        assert first.wait(5)
        subscription.dispose()
        count = len(seen)
        threading.Event().wait(0.2)
        assert len(seen) == count < 7

    async def test_inside_asyncio_every_piece_is_delivered_on_the_loop(self) -> None:
        loop_thread = threading.get_ident()
        threads: set[int] = set()
        llm = rxllm.scripted(["Hello big wo", "rld."])
        stream = llm.stream("x").pipe(
            smooth(delay=0.002),
            rx_ops.do_action(lambda _: threads.add(threading.get_ident())),
        )
        pieces = [c.content async for c in rxllm.aiterate(stream)]
        assert pieces == ["Hello ", "big ", "world.", ""]
        assert threads == {loop_thread}
        await asyncio.sleep(0)
