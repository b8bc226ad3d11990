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


class SpanRecorder:
    """Records the spans started and ended while a test holds the `spans` fixture.

    Fed by a `SpanProcessor` of the one process-wide SDK tracer provider the suite sets (the
    OpenTelemetry API takes a global provider once): it counts `on_end` per span, so a span
    ended twice or never is seen, and ignores spans of calls started before the test.
    """

    def __init__(self) -> None:
        import threading
        from collections import Counter

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.active = False
        self.started: dict[int, object] = {}
        self.ends: Counter[int] = Counter()
        self.finished: list[object] = []

    # --- fed by the SpanProcessor -------------------------------------------------------

    def on_start(self, span: object, parent_context: object = None) -> None:
        with self._lock:
            if self.active:
                self.started[span.context.span_id] = span  # type: ignore[attr-defined]

    def on_end(self, span: object) -> None:
        with self._changed:
            span_id = span.context.span_id  # type: ignore[attr-defined]
            if self.active and span_id in self.started:
                self.ends[span_id] += 1
                self.finished.append(span)
                self._changed.notify_all()

    # --- for the tests -----------------------------------------------------------------

    def reset(self, *, active: bool) -> None:
        with self._lock:
            self.active = active
            self.started.clear()
            self.ends.clear()
            self.finished.clear()

    def open(self) -> list[object]:
        """The spans started during the test and not ended (yet)."""
        with self._lock:
            return [span for sid, span in self.started.items() if sid not in self.ends]

    def wait(self, predicate: object, timeout: float = 10.0) -> list[object]:
        """The finished spans once `predicate(finished)` holds (a hang turned into a
        failure after `timeout` s; spans of cancelled calls end on the call's thread, just
        after the subscriber heard of the stop)."""
        with self._changed:
            ok = self._changed.wait_for(lambda: predicate(list(self.finished)), timeout)  # type: ignore[operator]
            assert ok, f"spans never got there; finished: {[s.name for s in self.finished]}"  # type: ignore[attr-defined]
            return list(self.finished)

    def settled(self, count: int, timeout: float = 10.0) -> list[object]:
        """The finished spans, once `count` have ended and none is open."""
        return self.wait(lambda done: len(done) >= count and not self.open(), timeout)


_RECORDER: SpanRecorder | None = None


@pytest.fixture
def spans() -> Iterator[SpanRecorder]:
    """The spans of this test, from an OpenTelemetry SDK tracer provider set for the
    whole process (`opentelemetry-sdk`, in the dev extra)."""
    global _RECORDER
    if _RECORDER is None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        from opentelemetry.sdk.trace import SpanProcessor

        recorder = _RECORDER = SpanRecorder()

        class Processor(SpanProcessor):
            def on_start(self, span: object, parent_context: object = None) -> None:
                recorder.on_start(span)

            def on_end(self, span: object) -> None:
                recorder.on_end(span)

        provider.add_span_processor(Processor())  # type: ignore[arg-type]
    _RECORDER.reset(active=True)
    try:
        yield _RECORDER
    finally:
        _RECORDER.reset(active=False)
