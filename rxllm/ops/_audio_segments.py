"""`audio_segments()`: spoken audio cut into sentences, each with its transcript and times.

Alignment is by arrival: providers stream the transcript and the audio side by side, the
transcript usually ahead of the audio it describes, and say nothing about which bytes
speak which words. So a segment is the audio received since the previous segment up to
the moment the transcript completed a sentence. Segments are contiguous and lose nothing
(their audio concatenates to all the audio), but a segment's audio may end a little
before or after its sentence does. A sentence whose transcript completes before any of
its audio arrived waits for that audio (it gets the audio received until the next
sentence completes); sentences still waiting at the end share the rest of the audio in
proportion to their length, with the unfinished last one. Cuts fall on
whole 16-bit samples. `AudioSegmenter` (`decode(chunk) -> list`, `flush() -> list`) does
the work without Rx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import reactivex
from pydantic import BaseModel

from rxllm._checks import is_int
from rxllm.models import Chunk
from rxllm.ops._chunk_input import chunk_for
from rxllm.ops._decoder import decoding
from rxllm.ops._sentences import SentenceDecoder

__all__ = ["AudioSegment", "AudioSegmenter", "audio_segments"]

_BYTES_PER_SAMPLE = 2  # 16-bit PCM, mono


class AudioSegment(BaseModel, frozen=True):
    """A stretch of spoken audio with the transcript said in it, and where it lies in time.

    >>> segment = AudioSegment(audio=b"\\x00\\x00" * 12000, transcript="Hi.", start=0.0, end=0.5)
    >>> segment.duration
    0.5
    """

    audio: bytes
    """16-bit PCM mono samples, as the provider sent them."""
    transcript: str
    """The text of the segment (one or more sentences, stripped of surrounding space)."""
    start: float
    """Where the segment starts in the response's audio, in seconds."""
    end: float
    """Where it ends, in seconds (`start` + its own duration)."""

    @property
    def duration(self) -> float:
        """`end - start`, in seconds."""
        return self.end - self.start


class AudioSegmenter:
    """Collects audio and transcript deltas; cuts a segment whenever a sentence completes.

    >>> segmenter = AudioSegmenter(sample_rate=4)
    >>> segmenter.decode(Chunk(audio=b"\\x01\\x00" * 2, audio_transcript="Hi. Th"))
    [AudioSegment(audio=b'\\x01\\x00\\x01\\x00', transcript='Hi.', start=0.0, end=0.5)]
    >>> segmenter.decode(Chunk(audio=b"\\x02\\x00", audio_transcript="ere."))
    []
    >>> segmenter.flush()
    [AudioSegment(audio=b'\\x02\\x00', transcript='There.', start=0.5, end=0.75)]
    """

    __slots__ = ("_audio", "_emitted_bytes", "_held", "_sample_rate", "_sentences")
    failure: Exception | None = None  # never fails after decoding (see Decoder)

    def __init__(self, sample_rate: int = 24000) -> None:
        if not is_int(sample_rate) or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive int of Hz, not {sample_rate!r}")
        self._sample_rate = sample_rate
        self._audio = bytearray()
        self._sentences = SentenceDecoder()  # the same sentence rule as ops.sentences()
        self._emitted_bytes = 0
        # Sentences complete whose audio had not started when they completed: they wait
        # for it (the transcript often runs ahead of the audio).
        self._held: list[str] = []

    def decode(self, chunk: Chunk) -> list[AudioSegment]:
        """Add a chunk's audio and transcript; the segment it completed, if any."""
        if chunk.audio:
            self._audio += chunk.audio
        if not chunk.audio_transcript:
            return []
        said = self._sentences.decode(chunk.audio_transcript)
        if not said:
            return []
        whole_samples = len(self._audio) - len(self._audio) % _BYTES_PER_SAMPLE
        if not whole_samples:
            self._held.append(" ".join(said))  # none of its audio yet: wait for it
            return []
        if self._held:
            # The audio so far is the held sentences'; the new one waits for its own.
            segment = self._segment(" ".join(self._held), whole_samples)
            self._held = [" ".join(said)]
            return [segment]
        return [self._segment(" ".join(said), whole_samples)]

    def flush(self) -> list[AudioSegment]:
        """What remains (audio, transcript or both) as the last segments; `[]` if nothing.

        Held sentences (and the unfinished rest) share the remaining audio in proportion
        to their length: all a transcript that ran ahead of the audio allows.
        """
        parts = [*self._held, " ".join(self._sentences.flush())]
        self._held = []
        if not parts[-1]:
            parts.pop()
        if not self._audio and not parts:
            return []
        if len(parts) <= 1:
            return [self._segment(parts[0] if parts else "", len(self._audio))]
        samples = len(self._audio) // _BYTES_PER_SAMPLE
        total = sum(len(part) for part in parts)
        segments: list[AudioSegment] = []
        counted = cut = 0  # characters so far; audio bytes cut off so far
        for part in parts[:-1]:
            counted += len(part)
            end = samples * counted // total * _BYTES_PER_SAMPLE
            segments.append(self._segment(part, end - cut))
            cut = end
        segments.append(self._segment(parts[-1], len(self._audio)))
        return segments

    def _segment(self, said: str, size: int) -> AudioSegment:
        audio = bytes(self._audio[:size])
        del self._audio[:size]
        start = self._emitted_bytes
        self._emitted_bytes += size
        per_second = _BYTES_PER_SAMPLE * self._sample_rate
        return AudioSegment(
            audio=audio,
            transcript=said.strip(),
            start=start / per_second,
            end=self._emitted_bytes / per_second,
        )


def audio_segments(
    *, sample_rate: int = 24000, by: Literal["sentence"] = "sentence"
) -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[AudioSegment]]:
    """Audio aligned with its transcript: one `AudioSegment` per completed sentence.

    A sentence completes when the transcript has a terminator (`.`, `!`, `?`, with closing
    quotes or brackets) followed by whitespace; sentences completed by the same chunk
    share one segment. Each segment holds the audio received since the previous one
    (16-bit PCM mono at `sample_rate` Hz; `start`/`end` in seconds are computed from byte
    counts). On completion the rest is flushed as a last segment. Alignment is by arrival
    (see the module docstring): good for captions and per-sentence playback, not
    word-exact. On an error from the source the unfinished segment is dropped. `by`
    names the unit of a segment; "sentence" is the only one so far.

        chunks:  -a1 "Hi."--a2 " Bye"--a3-|
        audio_segments()
        output:  -----------S(a1 a2, "Hi.")----S(a3, "Bye")|

    >>> import rxllm
    >>> from rxllm import Chunk, ops
    >>> half_a_second = b"\\x00\\x00" * 12000
    >>> llm = rxllm.scripted([
    ...     Chunk(audio=half_a_second, audio_transcript="Hello there."),
    ...     Chunk(audio=half_a_second, audio_transcript=" How"),
    ...     Chunk(audio=half_a_second * 2, audio_transcript=" are you?"),
    ... ])
    >>> for s in rxllm.iterate(llm.stream("hi").pipe(ops.audio_segments())):
    ...     print(s.transcript, s.start, s.end)
    Hello there. 0.0 1.0
    How are you? 1.0 2.0
    """
    if by != "sentence":
        raise ValueError(f"audio_segments(by=...) supports 'sentence', not {by!r}")
    AudioSegmenter(sample_rate)  # a bad sample_rate fails here, at the call

    return decoding(lambda: AudioSegmenter(sample_rate), chunk_for("audio_segments"))
