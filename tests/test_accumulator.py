"""Accumulation: exact text for any chunking, immutable snapshots, O(chunk) per add."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

import rxllm
from rxllm.accumulator import Accumulator, _Joined
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.providers.in_process import InProcessCodec


@given(st.lists(st.text(max_size=8), max_size=40))
def test_concatenation_of_deltas_is_the_text(pieces: list[str]) -> None:
    acc = Accumulator()
    snapshots = [acc.add(Chunk(content=p)) for p in pieces]
    assert acc.response().text == "".join(pieces)
    assert acc.response().chunk_count == len(pieces)
    if snapshots:
        assert snapshots[-1].text == "".join(pieces)


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=20))
def test_old_snapshots_keep_their_own_text(pieces: list[str]) -> None:
    acc = Accumulator()
    snapshots = [acc.add(Chunk(content=p)) for p in pieces]
    # read newest first, then oldest: each still says what it said
    for i in reversed(range(len(pieces))):
        assert snapshots[i].text == "".join(pieces[: i + 1])
    for i, snapshot in enumerate(snapshots):
        assert snapshot.text == "".join(pieces[: i + 1])
        assert snapshot.index == i
        assert snapshot.delta.content == pieces[i]


def test_declarai_style_running_text() -> None:
    acc = Accumulator()
    texts = [acc.add(Chunk(content=p)).text for p in ["Av", "eng", "ers"]]
    assert texts == ["Av", "Aveng", "Avengers"]


def test_adding_does_not_join_text(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    joins = []
    original = _Joined.upto

    def counting(self, chunks, n, base=0):  # type: ignore[no-untyped-def]
        joins.append(n)
        return original(self, chunks, n, base)

    monkeypatch.setattr(_Joined, "upto", counting)
    acc = Accumulator()
    for i in range(1000):
        acc.add(Chunk(content=str(i)))
    assert joins == []  # nobody read .text, nobody paid for it
    assert acc.response().text.startswith("0123")
    assert joins  # reading it does


def test_sequential_reads_join_only_the_new_part() -> None:
    acc = Accumulator()
    for i in range(100):
        snapshot = acc.add(Chunk(content="x"))
        assert snapshot.text == "x" * (i + 1)
    joined = acc._joined
    assert joined.count == 100


def test_it_keeps_no_chunk_objects_alive() -> None:
    """Chunks with raw bytes are not retained: nothing per chunk for the GC to scan."""
    import gc
    import weakref

    from rxllm.providers.openai_chat import ChatCodec
    from rxllm.request import Request

    mapper = ChatCodec(Request(messages=({"role": "user", "content": "hi"},)), model="m").events()
    acc = Accumulator()
    refs = []
    for i in range(50):
        payload = b'{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"%d"}}]}' % i
        chunk = mapper.map(None, json.loads(payload), payload)
        assert chunk is not None
        refs.append(weakref.ref(chunk))
        acc.add(chunk)
    del chunk
    gc.collect()
    assert all(ref() is None for ref in refs[:-1])  # the last one is the latest snapshot's
    assert not any(gc.is_tracked(item) for item in acc._raws)
    response = acc.response()
    assert response.text == "".join(str(i) for i in range(50))
    assert response.raw.choices[0].message.content == response.text  # rebuilt from the bytes


def test_tool_calls_usage_finish_and_metadata() -> None:
    acc = Accumulator()
    acc.add(Chunk(id="r1", model="m", provider="openai", usage=Usage(input_tokens=5)))
    delta = ToolCallDelta
    acc.add(
        Chunk(tool_calls=(delta(index=0, id="a", name="f", arguments='{"x"'),), provider="openai")
    )
    middle = acc.add(Chunk(tool_calls=(delta(index=1, id="b", name="g"),), provider="openai"))
    acc.add(Chunk(tool_calls=(delta(index=0, arguments=": 1}"),), provider="openai"))
    acc.add(Chunk(tool_calls=(delta(index=1, arguments="{}"),), provider="openai"))
    last = acc.add(
        Chunk(
            finish_reason="tool_calls",
            usage=Usage(input_tokens=5, output_tokens=9, total_tokens=14),
            provider="openai",
        )
    )
    assert [(c.id, c.name, c.arguments) for c in middle.tool_calls] == [
        ("a", "f", '{"x"'),
        ("b", "g", ""),
    ]
    response = last.response()
    assert [(c.name, c.args) for c in response.tool_calls] == [("f", {"x": 1}), ("g", {})]
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=5, output_tokens=9, total_tokens=14)
    assert (response.id, response.model, response.provider) == ("r1", "m", "openai")
    assert middle.finish_reason is None and middle.response().finish_reason is None


def test_an_answer_served_by_two_providers_names_the_last_and_has_no_raw() -> None:
    """After a fallback went on with another provider, the response is that provider's (as
    its model is), and no native object stands for the whole."""

    class Native(InProcessCodec):
        def raw_response(self, events: object, response: rxllm.Response) -> str:
            return f"native {response.text}"

    acc = Accumulator()
    hel = Chunk.unchecked("Hel", model="m1", provider="first-provider", codec=Native())
    alone = acc.add(hel)
    lo = Chunk.unchecked("lo", model="m2", provider="second-provider", codec=Native())
    handed_over = acc.add(lo)
    assert alone.response().raw == "native Hel"
    response = handed_over.response()
    assert (response.text, response.provider, response.model) == ("Hello", "second-provider", "m2")
    assert response.raw is None


def test_thinking_refusal_audio_and_transcript() -> None:
    acc = Accumulator()
    acc.add(Chunk(thinking="hmm ", audio=b"\x01\x02", audio_transcript="he"))
    acc.add(Chunk(thinking="ok", refusal="no", audio=b"\x03", audio_transcript="llo"))
    response = acc.response()
    assert (response.thinking, response.refusal) == ("hmm ok", "no")
    assert (response.audio, response.audio_transcript) == (b"\x01\x02\x03", "hello")


def test_snapshot_of_the_latest_chunk_without_rx() -> None:
    acc = Accumulator()
    assert acc.snapshot() is None
    acc.add(Chunk(content="a"))
    acc.add(Chunk(content="b", finish_reason="stop"))
    latest = acc.snapshot()
    assert latest is not None
    assert (latest.text, latest.index, latest.finish_reason) == ("ab", 1, "stop")
    assert len(acc) == 2


# --- every snapshot, read in any order, says what its prefix of chunks says -----------------

_CHUNKS = st.builds(
    Chunk,
    content=st.sampled_from(["", "a", "bc", "é "]),
    thinking=st.sampled_from(["", "", "t"]),
    refusal=st.sampled_from(["", "", "", "no"]),
    audio=st.sampled_from([b"", b"", b"\x01\x02"]),
    audio_transcript=st.sampled_from(["", "", "hi"]),
    tool_calls=st.sampled_from(
        [
            (),
            (),
            (ToolCallDelta(index=0, id="c", name="f", arguments='{"a"'),),
            (ToolCallDelta(index=0, arguments=": 1}"),),
            (ToolCallDelta(index=1, name="g"),),
        ]
    ),
    finish_reason=st.sampled_from([None, None, "stop"]),
    usage=st.sampled_from([None, None, Usage(input_tokens=1, output_tokens=2, total_tokens=3)]),
    model=st.sampled_from([None, "m1", "m2"]),
    id=st.sampled_from([None, "r1", "r2"]),
)


def _reference(chunks: list[Chunk]) -> dict[str, object]:
    """What a prefix of chunks says, computed the obvious way."""
    calls: dict[int, list[str | None]] = {}
    for chunk in chunks:
        for delta in chunk.tool_calls:
            call = calls.setdefault(delta.index, [None, "", ""])
            call[0] = delta.id or call[0]
            call[1] = delta.name or call[1]
            call[2] = (call[2] or "") + delta.arguments
    last = lambda field: next(  # noqa: E731
        (getattr(c, field) for c in reversed(chunks) if getattr(c, field)), None
    )
    return {
        "text": "".join(c.content for c in chunks),
        "thinking": "".join(c.thinking for c in chunks),
        "refusal": "".join(c.refusal for c in chunks),
        "audio": b"".join(c.audio for c in chunks),
        "audio_transcript": "".join(c.audio_transcript for c in chunks),
        "tool_calls": [tuple(calls[i]) for i in sorted(calls)],
        "finish_reason": last("finish_reason"),
        "usage": last("usage"),
        "model": last("model"),
        "id": last("id"),
        "chunk_count": len(chunks),
    }


def _said(response: object) -> dict[str, object]:
    said = {
        key: getattr(response, key)
        for key in (
            "text",
            "thinking",
            "refusal",
            "audio",
            "audio_transcript",
            "finish_reason",
            "usage",
            "model",
            "id",
            "chunk_count",
        )
    }
    said["tool_calls"] = [(c.id, c.name, c.arguments) for c in response.tool_calls]  # type: ignore[attr-defined]
    return said


@given(st.lists(_CHUNKS, max_size=25), st.randoms(use_true_random=False))
def test_any_snapshot_read_in_any_order_says_what_its_prefix_says(
    chunks: list[Chunk], random: object
) -> None:
    acc = Accumulator()
    snapshots = [acc.add(chunk) for chunk in chunks]
    order = list(range(len(snapshots)))
    random.shuffle(order)  # type: ignore[attr-defined]
    for i in order:  # old snapshots read after newer ones, and the other way round
        assert _said(snapshots[i].response()) == _reference(chunks[: i + 1])
        assert snapshots[i].text == _reference(chunks[: i + 1])["text"]
    if chunks:
        assert _said(acc.response()) == _reference(chunks)
