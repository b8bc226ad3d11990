"""The terminals: `collect`/`acollect` (a Response, or the error), `iterate`/`aiterate`
(leaving early cancels), `write_wav` (16-bit PCM into a valid WAV, also on failure)."""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from pathlib import Path

import pytest
import reactivex
from reactivex import operators as rx_ops

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


def test_breaking_out_of_iterate_cancels() -> None:
    finished = threading.Event()
    llm = rxllm.scripted(["a"] * 100, delay=0.01)
    stream = llm.stream("x").pipe(rx_ops.finally_action(finished.set))
    for index, _chunk in enumerate(rxllm.iterate(stream)):
        if index == 2:
            break
    assert finished.wait(1)


def test_iterate_reads_a_source_that_emits_while_subscribed_whole() -> None:
    # from_iterable (or a replay of a finished answer) emits everything on the loop's own
    # thread while being subscribed: nobody can make room, and it used to deadlock.
    assert list(rxllm.iterate(reactivex.from_iterable(range(1025)))) == list(range(1025))
    assert list(rxllm.iterate(reactivex.from_iterable(range(3)), buffer=2)) == [0, 1, 2]
    replay: reactivex.subject.ReplaySubject[Chunk] = reactivex.subject.ReplaySubject()
    rxllm.scripted(["a"] * 1500).stream("x").subscribe(replay)
    assert rxllm.collect(replay).text == "a" * 1500
    assert len(list(rxllm.iterate(replay))) == 1500


def test_iterate_makes_a_producer_on_another_thread_wait_for_the_loop() -> None:
    # A slow reader slows a fast stream down instead of buffering it all.
    produced: list[int] = []
    source = reactivex.from_iterable(range(50)).pipe(
        rx_ops.do_action(produced.append),
        rx_ops.subscribe_on(reactivex.scheduler.NewThreadScheduler()),
    )
    seen = []
    for item in rxllm.iterate(source, buffer=4):
        seen.append(item)
        time.sleep(0.005)
        assert len(produced) <= len(seen) + 4 + 1  # the buffer, plus one waiting to go in
    assert seen == list(range(50))


@pytest.mark.parametrize("buffer", [0, -1, 2.5, "8"])
def test_iterate_buffer_must_be_a_positive_int(buffer: object) -> None:
    with pytest.raises(ValueError, match="buffer"):
        rxllm.iterate(reactivex.empty(), buffer=buffer)  # type: ignore[arg-type]


async def test_breaking_out_of_aiterate_cancels() -> None:
    finished = asyncio.Event()
    stream = (
        rxllm.scripted(["a"] * 100, delay=0.01)
        .stream("x")
        .pipe(rx_ops.finally_action(finished.set))
    )
    count = 0
    async for _chunk in rxllm.aiterate(stream):
        count += 1
        if count == 3:
            break
    await asyncio.wait_for(finished.wait(), 1)


def test_collect_raises_a_subscriber_side_error() -> None:
    stream = rxllm.scripted(["a", "b"]).stream("x").pipe(rx_ops.map(lambda c: 1 / 0))
    with pytest.raises(ZeroDivisionError):
        rxllm.collect(stream)


def test_collect_timeout_cancels_and_raises_builtin_timeout() -> None:
    finished = threading.Event()
    stream = (
        rxllm.scripted(["a"] * 100, delay=0.05)
        .stream("x")
        .pipe(rx_ops.finally_action(finished.set))
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        rxllm.collect(stream, timeout=0.1)
    assert time.monotonic() - started < 1
    assert finished.wait(1)


async def test_collect_inside_a_running_loop_says_to_use_acollect() -> None:
    with pytest.raises(RuntimeError, match="acollect"):
        rxllm.collect(rxllm.scripted("x").stream("x"))
