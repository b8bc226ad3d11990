"""Spoken audio to a WAV file, with a transcript aligned to it (captions), from ONE call.

Shows `rxllm.tee` feeding two consumers of one audio answer: `rxllm.write_wav` writes the
16-bit PCM to a WAV file as it arrives, and `ops.audio_segments()` cuts the same stream
into sentences with their start and end times, written as an SRT subtitle file. The answer
is scripted (`rxllm.scripted`) with generated tones — one pitch per sentence — standing in
for what OpenAI's audio output streams (`chunk.audio`, `chunk.audio_transcript`); with a real
model it is `rxllm.openai("gpt-4o-audio-preview", modalities=["text", "audio"],
audio={"voice": "alloy", "format": "pcm16"})`.

Run:  python examples/audio_to_wav.py [--out DIR]     (writes answer.wav and answer.srt)
"""

from __future__ import annotations

import argparse
import math
import struct
import tempfile
import wave
from pathlib import Path

import rxllm
from rxllm import Chunk, ops

RATE = 24000
SENTENCES = [
    ("Hello there.", 440.0, 1.0),
    (" This audio was streamed in pieces.", 523.3, 1.5),
    (" Each sentence has its own pitch.", 659.3, 1.25),
]


def tone(frequency: float, seconds: float) -> bytes:
    """16-bit mono PCM of a sine tone."""
    count = int(RATE * seconds)
    return struct.pack(
        f"<{count}h",
        *(int(8000 * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(count)),
    )


def script() -> list[Chunk]:
    """Each sentence's transcript, then its audio in 0.25 s pieces (providers send the
    transcript a little ahead of the audio it describes)."""
    chunks = []
    step = RATE // 4 * 2  # bytes in 0.25 s
    for text, frequency, seconds in SENTENCES:
        chunks.append(Chunk(audio_transcript=text))
        audio = tone(frequency, seconds)
        chunks += [Chunk(audio=audio[i : i + step]) for i in range(0, len(audio), step)]
    return chunks


def srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temp one)")
    out = parser.parse_args().out or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)

    llm = rxllm.scripted(script(), delay=0.005)
    call = llm.stream("Say three sentences.", audio={"voice": "alloy", "format": "pcm16"})
    for_captions, for_file = rxllm.tee(call)
    segments: list[rxllm.AudioSegment] = []
    for_captions.pipe(ops.audio_segments(sample_rate=RATE)).subscribe(segments.append)
    wav_path = rxllm.write_wav(for_file, out / "answer.wav", sample_rate=RATE)  # starts the call

    srt_path = out / "answer.srt"
    srt_path.write_text(
        "\n".join(
            f"{n}\n{srt_time(s.start)} --> {srt_time(s.end)}\n{s.transcript}\n"
            for n, s in enumerate(segments, start=1)
        )
    )
    with wave.open(str(wav_path)) as wav:
        duration = wav.getnframes() / wav.getframerate()
    print(f"{wav_path.name}: {duration:.2f} s of audio at {RATE} Hz")
    for segment in segments:
        print(f"  {segment.start:5.2f} - {segment.end:5.2f} s  {segment.transcript}")
    print(
        f"{srt_path.name}: {len(segments)} captions; audio of all segments = "
        f"{sum(s.duration for s in segments):.2f} s"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
