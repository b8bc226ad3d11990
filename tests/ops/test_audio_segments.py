"""`audio_segments()`: audio cut at sentence ends, with transcript and times."""

from __future__ import annotations

import itertools

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm.models import Chunk
from rxllm.ops._audio_segments import AudioSegment, AudioSegmenter, audio_segments

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

RATE = 10  # samples per second: one sample is 0.1 s, two bytes


def pcm(samples: int, value: int = 1) -> bytes:
    return bytes([value, 0]) * samples


def cut(chunks: list[Chunk]) -> list[AudioSegment]:
    segmenter = AudioSegmenter(RATE)
    found = [s for chunk in chunks for s in segmenter.decode(chunk)]
    return found + segmenter.flush()


class TestSegmenter:
    """Where segments are cut, without Rx."""

    def test_a_segment_per_sentence_with_the_audio_so_far(self) -> None:
        segments = cut(
            [
                Chunk(audio_transcript="Hello there."),
                Chunk(audio=pcm(5)),
                Chunk(audio_transcript=" How are"),
                Chunk(audio=pcm(10, 2)),
                Chunk(audio_transcript=" you?"),
            ]
        )
        assert segments == [
            AudioSegment(audio=pcm(5), transcript="Hello there.", start=0.0, end=0.5),
            AudioSegment(audio=pcm(10, 2), transcript="How are you?", start=0.5, end=1.5),
        ]

    def test_the_sentence_ends_at_the_whitespace_after_its_terminator(self) -> None:
        segmenter = AudioSegmenter(RATE)
        assert segmenter.decode(Chunk(audio=pcm(1), audio_transcript="Pi is 3.")) == []
        assert segmenter.decode(Chunk(audio_transcript="14!")) == []
        assert segmenter.decode(Chunk(audio_transcript='"')) == []
        (segment,) = segmenter.decode(Chunk(audio_transcript=" Yes"))
        assert segment.transcript == 'Pi is 3.14!"'
        assert segmenter.flush()[0].transcript == "Yes"

    def test_sentences_completed_together_share_a_segment(self) -> None:
        segments = cut([Chunk(audio=pcm(4), audio_transcript="One. Two! Three")])
        assert [s.transcript for s in segments] == ["One. Two!", "Three"]
        assert [s.audio for s in segments] == [pcm(4), b""]
        assert segments[1].start == segments[1].end == 0.4

    def test_cuts_fall_on_whole_samples(self) -> None:
        segments = cut(
            [
                Chunk(audio=b"\x01\x00\x02"),  # a sample split across chunks
                Chunk(audio_transcript="Done. "),  # ("A. " could be an initial)
                Chunk(audio=b"\x00"),
            ]
        )
        assert [s.audio for s in segments] == [b"\x01\x00", b"\x02\x00"]
        assert [(s.start, s.end) for s in segments] == [(0.0, 0.1), (0.1, 0.2)]

    def test_audio_without_a_transcript_is_one_segment(self) -> None:
        assert cut([Chunk(audio=pcm(3)), Chunk(audio=pcm(2))]) == [
            AudioSegment(audio=pcm(5), transcript="", start=0.0, end=0.5)
        ]

    def test_nothing_gives_nothing(self) -> None:
        assert cut([Chunk(content="text only"), Chunk(audio_transcript="  ")]) == []

    def test_a_sentence_that_completes_before_its_audio_waits_for_it(self) -> None:
        # Transcript deltas that carry their trailing space, each before its audio: each
        # segment used to hold the previous sentence's audio, and the first none.
        chunks = []
        for number in range(3):
            chunks += [Chunk(audio_transcript=f"Sentence {number}. "), Chunk(audio=pcm(number + 1))]
        segments = cut(chunks)
        assert [(s.transcript, s.audio) for s in segments] == [
            ("Sentence 0.", pcm(1)),
            ("Sentence 1.", pcm(2)),
            ("Sentence 2.", pcm(3)),
        ]

    def test_a_transcript_far_ahead_of_the_audio_shares_it_by_length(self) -> None:
        # The whole transcript first, then all the audio: the best arrival allows is a
        # split in proportion to each sentence's length (it used to be [0, 0, all]).
        segments = cut(
            [
                Chunk(audio_transcript="Hi. "),
                Chunk(audio_transcript="How are you? "),
                Chunk(audio_transcript="Fine"),
                Chunk(audio=pcm(21)),
            ]
        )
        assert [s.transcript for s in segments] == ["Hi.", "How are you?", "Fine"]
        # 21 samples over 3 + 12 + 4 characters, cut on whole samples: 3, 13 and 5
        assert [len(s.audio) // 2 for s in segments] == [3, 13, 5]
        assert all(len(s.audio) % 2 == 0 for s in segments)

    def test_a_bad_sample_rate(self) -> None:
        with pytest.raises(ValueError, match="sample_rate"):
            AudioSegmenter(0)


class TestOperator:
    """The Rx operator: timing, completion, errors, disposal."""

    def test_segments_when_sentences_complete_and_the_rest_at_the_end(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(150, Chunk(audio=pcm(100), audio_transcript="Ignored. ")),
            on_next(210, Chunk(audio=pcm(2), audio_transcript="Hi.")),
            on_next(220, Chunk(audio=pcm(3), audio_transcript=" Bye")),
            on_next(230, Chunk(audio=pcm(5))),
            on_completed(240),
        )
        results = scheduler.start(lambda: xs.pipe(audio_segments(sample_rate=RATE)))
        assert results.messages == [
            on_next(220, AudioSegment(audio=pcm(5), transcript="Hi.", start=0.0, end=0.5)),
            on_next(240, AudioSegment(audio=pcm(5), transcript="Bye", start=0.5, end=1.0)),
            on_completed(240),
        ]
        assert xs.subscriptions == [subscribe(200, 240)]

    def test_an_error_drops_the_unfinished_segment(self) -> None:
        error = rxllm.StreamInterrupted("dropped")
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(audio=pcm(2), audio_transcript="Hi. Th")),
            on_next(220, Chunk(audio=pcm(2))),
            on_error(230, error),
        )
        results = scheduler.start(lambda: xs.pipe(audio_segments(sample_rate=RATE)))
        assert results.messages == [
            on_next(210, AudioSegment(audio=pcm(2), transcript="Hi.", start=0.0, end=0.2)),
            on_error(230, error),
        ]
        assert xs.subscriptions == [subscribe(200, 230)]

    def test_disposal_unsubscribes_the_source(self) -> None:
        scheduler = TestScheduler()
        xs = scheduler.create_hot_observable(
            on_next(210, Chunk(audio=pcm(2), audio_transcript="Hi.")), on_completed(240)
        )
        results = scheduler.start(lambda: xs.pipe(audio_segments()), disposed=220)
        assert results.messages == []
        assert xs.subscriptions == [subscribe(200, 220)]

    def test_other_items_are_a_type_error(self) -> None:
        failures: list[Exception] = []
        reactivex.of("text").pipe(audio_segments()).subscribe(on_error=failures.append)  # type: ignore[arg-type]
        assert isinstance(failures[0], TypeError)

    def test_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="by"):
            audio_segments(by="word")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="sample_rate"):
            audio_segments(sample_rate=-1)

    def test_with_a_provider_at_24_khz(self) -> None:
        second = pcm(24000)
        llm = rxllm.scripted(
            [
                Chunk(audio_transcript="Good morning."),
                Chunk(audio=second),
                Chunk(audio_transcript=" Lovely day"),
                Chunk(audio=second + second),
                Chunk(audio_transcript=", isn't it?"),
            ],
            delay=0.001,
        )
        segments = list(rxllm.iterate(llm.stream("talk").pipe(audio_segments())))
        assert [(s.transcript, s.start, s.end) for s in segments] == [
            ("Good morning.", 0.0, 1.0),
            ("Lovely day, isn't it?", 1.0, 3.0),
        ]


@st.composite
def spoken(draw: st.DrawFn) -> list[Chunk]:
    transcript = draw(st.text(alphabet=st.sampled_from(list('ab .!?"\n')), max_size=60))
    audio = draw(st.binary(max_size=200))
    t_cuts = sorted(draw(st.sets(st.integers(0, len(transcript)), max_size=10)))
    a_cuts = sorted(draw(st.sets(st.integers(0, len(audio)), max_size=10)))
    texts = [transcript[a:b] for a, b in itertools.pairwise([0, *t_cuts, len(transcript)])]
    audios = [audio[a:b] for a, b in itertools.pairwise([0, *a_cuts, len(audio)])]
    pairs = itertools.zip_longest(texts, audios, fillvalue=None)
    return [Chunk(audio_transcript=t or "", audio=a or b"") for t, a in pairs]


class TestProperties:
    """Nothing is lost, and the segments tile the timeline."""

    @settings(max_examples=300, deadline=None)
    @given(spoken())
    def test_audio_and_words_are_kept_and_times_are_contiguous(self, chunks: list[Chunk]) -> None:
        segments = cut(chunks)
        audio = b"".join(c.audio for c in chunks)
        transcript = "".join(c.audio_transcript for c in chunks)
        assert b"".join(s.audio for s in segments) == audio
        assert " ".join(s.transcript for s in segments).split() == transcript.split()
        assert all(a.end == b.start for a, b in itertools.pairwise(segments))
        if segments:
            assert segments[-1].end == pytest.approx(len(audio) / 2 / RATE)
        assert all(len(s.audio) % 2 == 0 for s in segments[:-1])


def test_segments_follow_the_same_sentence_rule_as_ops_sentences() -> None:
    from rxllm.ops._audio_segments import AudioSegmenter

    segmenter = AudioSegmenter(sample_rate=4)
    first = segmenter.decode(Chunk(audio=b"\x01\x00", audio_transcript="Dr. Smith paid, e.g. "))
    second = segmenter.decode(Chunk(audio=b"\x02\x00", audio_transcript="twice. 你好。再见"))
    assert first == []  # neither "Dr." nor "e.g." ends a sentence
    assert [s.transcript for s in second] == ["Dr. Smith paid, e.g. twice. 你好。"]
    assert [s.transcript for s in segmenter.flush()] == ["再见"]
