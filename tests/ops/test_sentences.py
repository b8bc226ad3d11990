"""`sentences()`: whole sentences as they complete, whatever the chunking."""

# ruff: noqa: RUF001  (full-width CJK punctuation is what several of these tests are about)

from __future__ import annotations

import itertools
import re

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm.models import Chunk, Usage
from rxllm.ops._sentences import SentenceDecoder, sentences

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def split(pieces: list[str]) -> list[str]:
    decoder = SentenceDecoder()
    found: list[str] = []
    for piece in pieces:
        found += decoder.decode(piece)
    return found + decoder.flush()


class TestDecoder:
    """Where sentences end, independent of Rx."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Hello world. How are you?", ["Hello world.", "How are you?"]),
            ("Wow! Really?! Yes... Fine…  Ok", ["Wow!", "Really?!", "Yes...", "Fine…", "Ok"]),
            ("It costs 3.14 dollars. Cheap.", ["It costs 3.14 dollars.", "Cheap."]),
            ("Use e.g. a hammer, i.e. a tool. Done.", ["Use e.g. a hammer, i.e. a tool.", "Done."]),
            (
                "Dr. Who met Mr. Smith and Mrs. Jones. Bye.",
                ["Dr. Who met Mr. Smith and Mrs. Jones.", "Bye."],
            ),
            (
                "The U.S. economy and the U.S.A. grew. Then.",
                ["The U.S. economy and the U.S.A. grew.", "Then."],
            ),
            ("Apples, pears, etc. Then more.", ["Apples, pears, etc.", "Then more."]),
            ("Apples, pears, etc. and more.", ["Apples, pears, etc. and more."]),
            (
                "See No. 5 on p. 12 now. I said no. Ok.",
                ["See No. 5 on p. 12 now.", "I said no.", "Ok."],
            ),
            ('He said "Hi." Then (really.) left.', ['He said "Hi."', "Then (really.) left."]),
            ('"Stop!" she said. (See above.) Then', ['"Stop!" she said.', "(See above.)", "Then"]),
            ("She asked (why?) and left.) Ok", ["She asked (why?) and left.)", "Ok"]),
            ("\u201cHi!\u201d she said.", ["\u201cHi!\u201d she said."]),
            ("First para\n\nSecond para", ["First para", "Second para"]),
            ("Line one\nline two\n  \n Next", ["Line one\nline two", "Next"]),
            ("你好。我很好！你呢？好的", ["你好。", "我很好！", "你呢？", "好的"]),
            ("他说：\u201c好。\u201d然后走了。", ["他说：\u201c好。\u201d", "然后走了。"]),
            ("1. Buy milk.\n2. Sell eggs.", ["1. Buy milk.", "2. Sell eggs."]),
            (
                "J. R. R. Tolkien wrote. John F. Kennedy spoke.",
                ["J. R. R. Tolkien wrote.", "John F. Kennedy spoke."],
            ),
            ("The answer is B. Because.", ["The answer is B.", "Because."]),
            (
                "Version 2.0. Visit example.com. Now.",
                ["Version 2.0.", "Visit example.com.", "Now."],
            ),
            ("   ", []),
            ("", []),
            ("no terminator at all", ["no terminator at all"]),
        ],
    )
    def test_split(self, text: str, expected: list[str]) -> None:
        assert split([text]) == expected
        assert split(list(text)) == expected  # one character at a time

    def test_a_terminator_waits_for_the_next_text(self) -> None:
        decoder = SentenceDecoder()
        assert decoder.decode("Pi is 3.") == []  # "3." might be "3.14"
        assert decoder.decode("14") == []
        assert decoder.decode(".") == []  # "3.14." might be "3.14.1"
        assert decoder.decode(" Tau is 6.28.") == ["Pi is 3.14."]
        assert decoder.flush() == ["Tau is 6.28."]

    def test_closing_quotes_and_ellipses_may_continue_in_the_next_piece(self) -> None:
        decoder = SentenceDecoder()
        assert decoder.decode('He said "Wait.') == []
        assert decoder.decode('.."') == []
        assert decoder.decode(" Then") == ['He said "Wait..."']
        assert decoder.flush() == ["Then"]

    def test_a_cjk_terminator_needs_the_next_character_for_closing_quotes(self) -> None:
        decoder = SentenceDecoder()
        assert decoder.decode("好。") == []
        assert decoder.decode("\u201d") == []
        assert decoder.decode("走") == ["好。\u201d"]

    def test_etc_waits_for_the_next_word(self) -> None:
        decoder = SentenceDecoder()
        assert decoder.decode("Pens, etc. ") == []
        assert decoder.decode("  ") == []
        assert decoder.decode("Then") == ["Pens, etc."]

    def test_flush_resets(self) -> None:
        decoder = SentenceDecoder()
        decoder.decode("One. Two")
        assert decoder.flush() == ["Two"]
        assert decoder.flush() == []
        assert decoder.decode("Three. ") == ["Three."]

    def test_cost_per_piece_does_not_grow_with_the_text(self) -> None:
        decoder = SentenceDecoder()
        for _ in range(50_000):
            decoder.decode("Sentence one. Word ")
        # Only the pending sentence is kept, and it was scanned as it arrived.
        assert len(decoder._pending) < 40


# Text built from the awkward cases: abbreviations, decimals, quotes, CJK, blank lines.
_TOKENS = st.sampled_from(
    [
        "Hello", "world", "e.g.", "i.e.", "Dr.", "Mr.", "etc.", "U.S.", "3.14", "No.", "5",
        ".", "?", "!", "...", "…", '"', ")", "(", "'", "。", "！", "？", "你好", "」",
        " ", " ", " ", "  ", "\n", "\n\n", "\n \n", "\t", "A", "b", "B.", "1.", "x.y",
    ]
)  # fmt: skip
_TEXTS = st.lists(_TOKENS, max_size=40).map("".join) | st.text(
    alphabet=st.sampled_from(list("ab AB.!?\"')\n3。，你")), max_size=60
)


@st.composite
def text_and_split(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(_TEXTS)
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


class TestProperties:
    """Invariants for any text and any chunking."""

    @settings(max_examples=400, deadline=None)
    @given(text_and_split())
    def test_no_text_lost_and_chunking_never_matters(self, case: tuple[str, list[str]]) -> None:
        text, pieces = case
        whole = split([text])
        assert split(pieces) == whole
        assert all(s and s == s.strip() for s in whole)
        assert re.sub(r"\s", "", "".join(whole)) == re.sub(r"\s", "", text)


class TestOperator:
    """The Rx operator: timing, chunks vs. strings, completion, errors, disposal."""

    def test_sentences_are_emitted_when_decided(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(150, "Ignored."),
            on_next(210, "Hi. I'm"),
            on_next(220, " Dr. Rx"),
            on_next(230, ". Pi is 3."),
            on_next(240, "14. Bye"),
            on_completed(250),
        )
        results = scheduler.start(lambda: xs.pipe(sentences()))
        assert results.messages == [
            on_next(210, "Hi."),
            on_next(230, "I'm Dr. Rx."),
            on_next(240, "Pi is 3.14."),
            on_next(250, "Bye"),
            on_completed(250),
        ]
        assert xs.subscriptions == [subscribe(200, 250)]

    def test_chunks_use_their_content_and_others_are_skipped(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(content="One. Tw")),
            on_next(220, Chunk(usage=Usage(output_tokens=3))),
            on_next(230, Chunk(content="o.", finish_reason="stop")),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(sentences()))
        assert results.messages == [
            on_next(210, "One."),
            on_next(240, "Two."),
            on_completed(240),
        ]

    def test_an_error_passes_and_drops_the_unfinished_sentence(self) -> None:
        error = RuntimeError("boom")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(on_next(210, "One. Two"), on_error(220, error))
        results = scheduler.start(lambda: xs.pipe(sentences()))
        assert results.messages == [on_next(210, "One."), on_error(220, error)]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_disposal_unsubscribes_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, "One. Two"), on_next(230, ". Three."), on_completed(240)
        )
        results = scheduler.start(lambda: xs.pipe(sentences()), disposed=220)
        assert results.messages == [on_next(210, "One.")]
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_other_items_are_a_type_error(self) -> None:
        failures: list[Exception] = []
        reactivex.of(42).pipe(sentences()).subscribe(on_error=failures.append)  # type: ignore[arg-type]
        assert isinstance(failures[0], TypeError)

    def test_each_subscription_has_its_own_pending_text(self) -> None:
        stream = reactivex.of("One. Tw", "o. Three").pipe(sentences())
        first: list[str] = []
        second: list[str] = []
        stream.subscribe(first.append)
        stream.subscribe(second.append)
        assert first == second == ["One.", "Two.", "Three"]

    def test_with_a_provider(self) -> None:
        llm = rxllm.scripted("Hello there. It costs $3.14, e.g. in the U.S. Bye!", delay=0.001)
        found = list(rxllm.iterate(llm.stream("hi").pipe(sentences())))
        assert found == ["Hello there.", "It costs $3.14, e.g. in the U.S. Bye!"]
