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
