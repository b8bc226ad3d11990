"""write_wav: a blocking sink that keeps what arrived, also when the stream fails."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

import rxllm
from rxllm.models import Chunk


def frames(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        return wav.readframes(wav.getnframes())


def test_writes_the_audio_branch_of_audio_split(tmp_path: Path) -> None:
    pcm = bytes(range(256)) * 4
    llm = rxllm.scripted([Chunk(audio=pcm[:301]), Chunk(audio=pcm[301:])], delay=0.001)
    split = rxllm.audio_split(llm.stream("x"))  # only the audio is used: nothing waits
    out = rxllm.write_wav(split.audio, tmp_path / "a.wav", sample_rate=16000, timeout=10)
    assert out == tmp_path / "a.wav"
    assert frames(out) == pcm  # an odd split across chunks loses no byte


def test_takes_a_chunk_stream_directly(tmp_path: Path) -> None:
    llm = rxllm.scripted([Chunk(audio=b"\x05\x00" * 4, content="hi")])
    out = rxllm.write_wav(llm.stream("x"), tmp_path / "d.wav", sample_rate=16000, timeout=10)
    assert frames(out) == b"\x05\x00" * 4


def test_a_failing_stream_keeps_what_arrived_and_raises(tmp_path: Path) -> None:
    llm = rxllm.scripted([Chunk(audio=b"\x01\x00" * 8)], error=rxllm.StreamInterrupted("cut"))
    with pytest.raises(rxllm.StreamInterrupted):
        rxllm.write_wav(llm.stream("x"), tmp_path / "b.wav", sample_rate=16000, timeout=10)
    assert frames(tmp_path / "b.wav") == b"\x01\x00" * 8


def test_bad_sample_rate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        rxllm.write_wav(rxllm.scripted("x").stream("x"), tmp_path / "c.wav", sample_rate=0)
