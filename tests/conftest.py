"""Shared fixtures: a loopback server per test, and clean API-key environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def server() -> Iterator[object]:
    """A fresh `rxllm.testing.Server` on 127.0.0.1 for one test."""
    from rxllm.testing import Server

    with Server() as running:
        yield running


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider API key in the environment."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


class Media:
    """Small real files of each kind the input parts take, made here (Pillow for the
    images, the standard library for the rest): `png`, `jpeg`, `gif`, `webp`, `bmp`,
    `wav`, `mp3`, `ogg`, `pdf` (bytes)."""

    def __init__(self) -> None:
        import io
        import wave

        from PIL import Image

        picture = Image.new("RGB", (3, 2), (200, 30, 40))
        for name in ("png", "jpeg", "gif", "webp", "bmp"):
            out = io.BytesIO()
            picture.save(out, format=name.upper())
            setattr(self, name, out.getvalue())
        out = io.BytesIO()
        with wave.open(out, "wb") as sound:  # 10 ms of silence, 8 kHz mono 16-bit
            sound.setnchannels(1)
            sound.setsampwidth(2)
            sound.setframerate(8000)
            sound.writeframes(b"\x00\x00" * 80)
        self.wav: bytes = out.getvalue()
        # an ID3v2 tag, then one MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz: 417 bytes)
        self.mp3: bytes = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(413)
        # an Ogg page header (capture pattern, version 0, beginning of stream)
        self.ogg: bytes = b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis" + bytes(23)
        self.pdf: bytes = _one_page_pdf()

    png: bytes
    jpeg: bytes
    gif: bytes
    webp: bytes
    bmp: bytes


def _one_page_pdf() -> bytes:
    """A valid one-page PDF saying "Hello" (its cross-reference offsets computed)."""
    stream = b"BT /F1 12 Tf 20 20 Td (Hello) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 50] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


@pytest.fixture(scope="session")
def media() -> Media:
    """Small real PNG, JPEG, GIF, WebP, BMP, WAV, MP3, Ogg and PDF files (as bytes)."""
    return Media()
