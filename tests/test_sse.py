"""The SSE decoder yields the same events for any split of the body into pieces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxllm.sse import SSEDecoder

BODY = (
    b'event: message_start\ndata: {"a": 1}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"b":\n'
    b"data: 2}\n\n"
    b"event: ping\r\ndata: {}\r\n\r\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("message_start", b'{"a": 1}'),
    (None, b'{"b":\n2}'),
    ("ping", b"{}"),
    (None, b"[DONE]"),
]


def decode(pieces: list[bytes]) -> list[tuple[str | None, bytes]]:
    decoder = SSEDecoder()
    events = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.flush())
    return events


def test_whole_body() -> None:
    assert decode([BODY]) == EXPECTED


def test_byte_by_byte() -> None:
    assert decode([BODY[i : i + 1] for i in range(len(BODY))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(BODY)), max_size=12))
def test_any_split(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [BODY[a:b] for a, b in zip([0, *points], [*points, len(BODY)], strict=True)]
    assert decode(pieces) == EXPECTED


def test_cr_only_line_endings_and_crlf_split_across_pieces() -> None:
    assert decode([b"data: x\r", b"\r", b"data: y\r\n", b"\r\n"]) == [(None, b"x"), (None, b"y")]


def test_unterminated_last_event_is_flushed() -> None:
    assert decode([b"data: tail"]) == [(None, b"tail")]


def test_comments_and_unknown_fields_produce_nothing() -> None:
    assert decode([b": ping\n\nid: 3\nretry: 10\n\n"]) == []


def reference(body: bytes) -> list[tuple[str | None, bytes]]:
    """The SSE spec's line-by-line algorithm, on the whole body at once."""
    events: list[tuple[str | None, bytes]] = []
    data: bytes | None = None
    event: str | None = None
    lines = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    for line in [*lines, b""]:
        if not line:
            if data is not None:
                events.append((event, data))
            data, event = None, None
        elif line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            data = value if data is None else data + b"\n" + value
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    return events


LINES = st.sampled_from(
    [
        b'data: {"x": 1}',
        b"data:[DONE]",
        b"data: ",
        b"event: content_block_delta",
        b"event:ping",
        b": keep-alive",
        b"id: 7",
        b"retry: 10",
        b"",
    ]
)


@given(
    st.lists(LINES, max_size=20),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_any_body_decodes_as_the_spec_says(
    lines: list[bytes], newline: bytes, cuts: list[int]
) -> None:
    body = b"".join(line + newline for line in lines)
    points = sorted({min(c, len(body)) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert decode(pieces) == reference(body)


def test_a_leading_byte_order_mark_is_no_part_of_the_first_field() -> None:
    # The first event was lost: its field name read "\ufeffdata".
    decoder = SSEDecoder()
    events = decoder.feed(b'\xef\xbb\xbfdata: {"a": 1}\n\ndata: 2\n\n')
    assert [data for _, data in events] == [b'{"a": 1}', b"2"]


@pytest.mark.parametrize(
    ("head", "verdict"),
    [
        (b"", None),
        (b"\n\n", None),
        (b"da", None),  # could still become "data:"
        (b"data: {", True),
        (b": keep-alive", True),
        (b"\xef\xbb\xbfevent: x", True),
        (b"{", False),
        (b"<html>", False),
        (b"dat!", False),
    ],
)
def test_a_body_labelled_a_document_is_judged_by_its_first_bytes(
    head: bytes, verdict: bool | None
) -> None:
    from rxllm.providers.http_call import _starts_like_sse

    assert _starts_like_sse(head) is verdict
