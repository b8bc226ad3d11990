"""Marble diagrams for the operator pages, drawn from real runs.

Each diagram subscribes the real operator to a real source and records what every stream
did, in order: the chunks a provider call delivered (`rxllm.scripted`, or the loopback
server through the OpenAI SDK), what the operator emitted, completions, errors and
cancellations. Nothing is drawn by hand: change an operator's behaviour and its diagram
changes (`tests/docs/test_marbles.py` fails until the diagrams are regenerated).

Two clocks:

- *virtual time*: sources made with a reactivex `TestScheduler`, for the operators whose
  point is timing (`smooth`, `race`, `batch`, `retry`'s backoff, a Stop button); the top
  axis shows the virtual seconds;
- *steps*: a provider call on its own thread (`rxllm.scripted`, the loopback server); each
  chunk a call delivers is one step, and what the operator emits in reaction is drawn in
  that step's column.

Run from the repository root:

    python docs/marbles.py            # writes docs/marbles/*.svg
    python docs/marbles.py --check    # exit status 1 if a committed diagram is out of date
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reactivex
from pydantic import BaseModel
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler

import rxllm
from rxllm import Chunk, ToolCallDelta, ops

OUT = Path(__file__).parent / "marbles"

PACE = 0.01
"""Seconds between scripted chunks. A real provider's chunks arrive after `subscribe`
returned; with no delay at all a script would be replayed before then, and a stop
(`take_until`) would only reach the call once the whole script was produced."""

# ---------------------------------------------------------------------------------------
# Recording


@dataclass
class Event:
    """One notification of one stream, at one time (virtual seconds, or a step number)."""

    t: float
    kind: str  # "next", "complete", "error", "cancel", "subscribe"
    label: str = ""


@dataclass
class Row:
    """One stream's line in a diagram."""

    name: str
    role: str  # "in" (above the operator), "out" (below it)
    events: list[Event] = field(default_factory=list)
    line: bool = True  # False: not a stream (a callback's calls, a tool's runs)


class Timeline:
    """The clock of one run and the rows recorded on it (thread-safe)."""

    def __init__(self, scheduler: TestScheduler | None = None) -> None:
        self.scheduler = scheduler
        self.step = 0
        self.rows: list[Row] = []
        self.lock = threading.RLock()

    @property
    def virtual(self) -> bool:
        return self.scheduler is not None

    def now(self) -> float:
        if self.scheduler is not None:
            return float(self.scheduler.clock)
        return float(self.step)

    def tick(self) -> None:
        """A new step (step clock only: a virtual clock moves by itself)."""
        if self.scheduler is None:
            with self.lock:
                self.step += 1

    def row(self, name: str, role: str = "in") -> Row:
        with self.lock:
            for row in self.rows:
                if row.name == name:
                    return row
            row = Row(name, role)
            self.rows.append(row)
            return row

    def order(self, *names: str) -> None:
        """Put the rows named `names` first, in that order (the others keep theirs)."""
        with self.lock:
            first = [self.row(name) for name in names]
            self.rows = first + [row for row in self.rows if row not in first]

    def record(self, row: Row, kind: str, label: str = "") -> None:
        with self.lock:
            row.events.append(Event(self.now(), kind, label))


def chunk_label(chunk: Any) -> str:
    """A chunk as a marble: its text, tool-call fragments, audio, finish reason."""
    if not isinstance(chunk, Chunk):
        return short(chunk)
    parts: list[str] = []
    if chunk.content:
        parts.append(quote(chunk.content))
    if chunk.thinking:
        parts.append("think " + quote(chunk.thinking))
    for delta in chunk.tool_calls:
        parts.append(f"{delta.index}:{delta.name or ''}{delta.arguments}")
    if chunk.audio:
        parts.append(f"♪{len(chunk.audio) / 48000:g}s")
    if chunk.audio_transcript:
        parts.append(quote(chunk.audio_transcript))
    if chunk.tool_results:
        parts.append("results: " + ", ".join(short(r.output) for r in chunk.tool_results))
    if chunk.finish_reason:
        parts.append(f"({chunk.finish_reason})")
    if not parts and chunk.usage is not None:
        parts.append("(usage)")
    if not parts and chunk.model:
        parts.append("(meta)")
    return " ".join(parts) or "(empty)"


def quote(text: str) -> str:
    """A text as a marble label: in double quotes, or single ones when it holds a `"`."""
    if '"' in text and "'" not in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def short(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, BaseModel):
        fields = ", ".join(
            f"{name}={value!r}"
            for name, value in value.model_dump().items()
            if value is not None  # a partial's unfilled fields
        )
        return f"{type(value).__name__}({fields})"
    return repr(value)


def probe(
    timeline: Timeline,
    name: str,
    label: Callable[[Any], str] = chunk_label,
    *,
    role: str = "in",
    drives: bool = False,
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    """An operator that passes everything through and records it on row `name`.

    `drives`: on the step clock, each notification of this stream starts a new step.
    A disposal before the stream ended is recorded as a cancellation.
    """
    row = timeline.row(name, role)

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            ended = False

            def step() -> None:
                if drives:
                    timeline.tick()

            def on_next(item: Any) -> None:
                step()
                timeline.record(row, "next", label(item))
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                nonlocal ended
                ended = True
                step()
                timeline.record(row, "error", type(error).__name__)
                observer.on_error(error)

            def on_completed() -> None:
                nonlocal ended
                ended = True
                step()
                timeline.record(row, "complete")
                observer.on_completed()

            timeline.record(row, "subscribe")
            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

            def dispose() -> None:
                if not ended:
                    timeline.record(row, "cancel")
                subscription.dispose()

            return Disposable(dispose)

        return reactivex.create(subscribe)

    return operator


def record_output(
    timeline: Timeline,
    source: reactivex.Observable[Any],
    name: str = "output",
    label: Callable[[Any], str] = chunk_label,
) -> None:
    """Subscribe `source`, record it on an output row, and wait until it ends."""
    row = timeline.row(name, "out")
    done = threading.Event()

    def on_error(error: Exception) -> None:
        timeline.record(row, "error", type(error).__name__)
        done.set()

    def on_completed() -> None:
        timeline.record(row, "complete")
        done.set()

    timeline.record(row, "subscribe")
    source.subscribe(
        lambda item: timeline.record(row, "next", label(item)),
        on_error,
        on_completed,
        scheduler=timeline.scheduler,
    )
    if timeline.scheduler is not None:
        timeline.scheduler.start()
    if not done.wait(10):
        raise TimeoutError(f"{name} did not end within 10 s")


class RecordingProvider:
    """A provider wrapper: every call it makes is recorded on its own row, chunk by chunk.

    It delegates to a real provider (`name`, `model`, `check`, `continuation`,
    `make_call`) and wraps each call's `pump_sync`, so the row shows exactly what the call
    delivered to the bridge: each chunk (one step each), its end, its error, or its
    cancellation.
    """

    def __init__(self, inner: Any, timeline: Timeline, names: list[str]) -> None:
        self._inner = inner
        self._timeline = timeline
        self._names = names
        self._count = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def make_call(self, request: Any) -> Any:
        call = self._inner.make_call(request)
        name = self._names[min(self._count, len(self._names) - 1)]
        if self._count >= len(self._names):
            name = f"{name} {self._count + 1}"
        self._count += 1
        return RecordedCall(call, self._timeline, self._timeline.row(name, "in"))


class RecordedCall:
    """One call of a `RecordingProvider`."""

    def __init__(self, inner: Any, timeline: Timeline, row: Row) -> None:
        self._inner = inner
        self._timeline = timeline
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def pump_sync(self, control: Any, emit: Callable[[Chunk], bool]) -> None:
        timeline, row = self._timeline, self._row
        timeline.record(row, "subscribe")
        received = 0

        def recorded(chunk: Chunk) -> bool:
            nonlocal received
            received += 1
            timeline.tick()
            timeline.record(row, "next", chunk_label(chunk))
            going_on = emit(chunk)
            if not going_on and control.cancelled:
                timeline.record(row, "cancel")
            return going_on

        try:
            self._inner.pump_sync(control, recorded)
        except Exception as error:
            if not control.cancelled:
                timeline.tick()
                mapped = self._inner.map_error(error, received=received)
                timeline.record(row, "error", type(mapped).__name__)
            raise
        if not control.cancelled:
            timeline.tick()
            timeline.record(row, "complete")


def recorded_llm(llm: rxllm.LLM, timeline: Timeline, *names: str) -> rxllm.LLM:
    """`llm` with every call recorded (rows named `names`, in the order calls are made)."""
    # The provider behind an LLM is not public API; this docs tool is its only outside user.
    provider = llm._provider
    return rxllm.LLM(RecordingProvider(provider, timeline, list(names) or ["call"]))


# ---------------------------------------------------------------------------------------
# Diagrams


@dataclass
class Diagram:
    """What one SVG shows."""

    name: str
    operator: str
    timeline: Timeline


def cold(scheduler: TestScheduler, *events: tuple[float, Any]) -> reactivex.Observable[Any]:
    """A cold test observable: `(t, item)`, `(t, "|")` completes, `(t, error)` fails."""
    messages = []
    for t, item in events:
        if isinstance(item, str) and item == "|":
            messages.append(ReactiveTest.on_completed(t))
        elif isinstance(item, Exception):
            messages.append(ReactiveTest.on_error(t, item))
        else:
            messages.append(ReactiveTest.on_next(t, item))
    return scheduler.create_cold_observable(*messages)


def text_label(item: Any) -> str:
    return quote(item)


def snapshot_label(snapshot: Any) -> str:
    return quote(snapshot.text)


def response_label(response: Any) -> str:
    return f"Response({quote(response.text)}, finish={response.finish_reason})"


def accumulate() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted(["Av", "eng", "ers"], delay=PACE), tl, "chunks")
    record_output(tl, llm.stream("hero?").pipe(ops.accumulate()), "snapshots", snapshot_label)
    return Diagram("accumulate", "accumulate()   (label: snapshot.text)", tl)


def take_until() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted("One. Two. Three. Four.", delay=PACE), tl, "call")
    stream = llm.stream("count").pipe(ops.take_until(lambda c: "Two" in c.content))
    record_output(tl, stream)
    return Diagram("take_until", 'take_until(lambda chunk: "Two" in chunk.content)', tl)


def take_until_button() -> Diagram:
    scheduler = TestScheduler()
    tl = Timeline(scheduler)
    words = [
        (0.1 * (i + 1), Chunk(content=w))
        for i, w in enumerate(["One", "two", "three", "four", "five"])
    ]
    chunks = cold(scheduler, *words, (0.6, "|")).pipe(probe(tl, "chunks"))
    stop = cold(scheduler, (0.35, "click")).pipe(probe(tl, "stop", short))
    record_output(tl, chunks.pipe(ops.take_until(stop)))
    return Diagram("take_until_button", "take_until(stop)   (stop: a Stop button's subject)", tl)


def to_response() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted(["Hel", "lo"], delay=PACE), tl, "chunks")
    record_output(tl, llm.stream("hi").pipe(ops.to_response()), "output", response_label)
    return Diagram("to_response", "to_response()", tl)


def text() -> Diagram:
    tl = Timeline()
    script = [
        Chunk(content="Hi"),
        Chunk(usage=rxllm.Usage(input_tokens=3)),
        Chunk(content=" there"),
    ]
    llm = recorded_llm(rxllm.scripted(script, delay=PACE), tl, "chunks")
    record_output(tl, llm.stream("hi").pipe(ops.text()), "output", text_label)
    return Diagram("text", "text()", tl)


def sentences() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(
        rxllm.scripted(["Hi. I'm", " Dr. Rx", ". It costs $3", ".14. Bye"], delay=PACE),
        tl,
        "chunks",
    )
    record_output(tl, llm.stream("hi").pipe(ops.sentences()), "output", text_label)
    return Diagram("sentences", "sentences()", tl)


def smooth() -> Diagram:
    scheduler = TestScheduler()
    tl = Timeline(scheduler)
    chunks = cold(
        scheduler,
        (0.0, Chunk(content="Hello big wo")),
        (0.05, Chunk(content="rld. How")),
        (0.2, Chunk(content=" are you?", finish_reason="stop")),
        (0.2, "|"),
    ).pipe(probe(tl, "chunks"))
    record_output(tl, chunks.pipe(ops.smooth(delay=0.03, scheduler=scheduler)))
    return Diagram("smooth", 'smooth(by="word", delay=0.03)', tl)


class City(BaseModel):
    name: str
    population: int


def partial() -> Diagram:
    tl = Timeline()
    script = ['{"name": "Os', 'lo", "popu', 'lation": 709', "000}"]
    llm = recorded_llm(rxllm.scripted(script, delay=PACE), tl, "chunks")
    record_output(tl, llm.stream("Oslo?").pipe(ops.partial(City)), "output", short)
    return Diagram("partial", "partial(City)", tl)


def _calls_script() -> list[Chunk]:
    return [
        Chunk(content="Checking."),
        Chunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="weather", arguments='{"ci'),)),
        Chunk(tool_calls=(ToolCallDelta(index=0, arguments='ty": "Oslo"}'),)),
        Chunk(tool_calls=(ToolCallDelta(index=1, id="c2", name="time", arguments="{}"),)),
        Chunk(finish_reason="tool_calls"),
    ]


def call_label(call: Any) -> str:
    return f"{call.name}({call.arguments})"


def tool_calls() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted(_calls_script(), delay=PACE), tl, "chunks")
    record_output(tl, llm.stream("hi").pipe(ops.tool_calls()), "output", call_label)
    return Diagram("tool_calls", "tool_calls()", tl)


def result_label(result: Any) -> str:
    if result.error:
        return f"R({result.call.name}: error)"
    return f"R({result.call.name} -> {short(result.output)})"


def weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def tool_results() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted(_calls_script(), delay=PACE), tl, "chunks")
    stream = llm.stream("hi").pipe(
        ops.tool_calls(), probe(tl, "tool calls", call_label), ops.tool_results([weather])
    )
    record_output(tl, stream, "output", result_label)
    tl.order("chunks", "tool calls")
    return Diagram("tool_results", "tool_results([weather])   (time: not a known tool)", tl)


def tool_loop() -> Diagram:
    tl = Timeline()
    call = ToolCallDelta(index=0, id="c1", name="weather", arguments='{"city": "Oslo"}')
    scripted = rxllm.scripted(
        [Chunk(content="Let me check."), Chunk(tool_calls=(call,))],
        then=[["It is ", "sunny."]],
        delay=PACE,
    )
    llm = recorded_llm(scripted, tl, "call 1", "call 2")
    tool_row = tl.row("weather() runs", "in")
    tool_row.line = False

    def recorded_weather(city: str) -> str:
        """The weather in a city."""
        result = weather(city)
        tl.record(tool_row, "next", f"{quote(city)} -> {quote(result)}")
        return result

    recorded_weather.__name__ = "weather"
    stream = llm.stream("Weather in Oslo?", tools=[recorded_weather]).pipe(ops.tool_loop())
    record_output(tl, stream)
    tl.order("call 1", "weather() runs", "call 2")
    return Diagram("tool_loop", "tool_loop()", tl)


def segment_label(segment: Any) -> str:
    return f"{segment.start:g}-{segment.end:g}s {quote(segment.transcript)}"


def audio_segments() -> Diagram:
    tl = Timeline()
    half_a_second = b"\x00\x00" * 12000
    script = [
        Chunk(audio=half_a_second, audio_transcript="Hello there."),
        Chunk(audio=half_a_second, audio_transcript=" How"),
        Chunk(audio=half_a_second * 2, audio_transcript=" are you?"),
    ]
    llm = recorded_llm(rxllm.scripted(script, delay=PACE), tl, "chunks")
    record_output(tl, llm.stream("hi").pipe(ops.audio_segments()), "segments", segment_label)
    return Diagram("audio_segments", "audio_segments()   (24 kHz PCM)", tl)


class _Attempts:
    """A source that fails before any content on its first subscription only."""

    def __init__(self, scheduler: TestScheduler, timeline: Timeline) -> None:
        self.scheduler = scheduler
        self.timeline = timeline
        self.count = 0

    def observable(self) -> reactivex.Observable[Chunk]:
        def make(_: Any) -> reactivex.Observable[Chunk]:
            self.count += 1
            name = f"attempt {self.count}"
            if self.count == 1:
                source = cold(
                    self.scheduler, (0.2, rxllm.ServerError("overloaded", status_code=529))
                )
            else:
                source = cold(
                    self.scheduler,
                    (0.1, Chunk(content="Hello")),
                    (0.2, Chunk(content=" world", finish_reason="stop")),
                    (0.2, "|"),
                )
            return source.pipe(probe(self.timeline, name))

        return reactivex.defer(make)


def retry() -> Diagram:
    scheduler = TestScheduler()
    tl = Timeline(scheduler)
    source = _Attempts(scheduler, tl).observable()
    stream = source.pipe(ops.retry(attempts=3, backoff=lambda attempt: 0.5, scheduler=scheduler))
    record_output(tl, stream)
    return Diagram("retry", "retry(backoff=lambda attempt: 0.5)   (failed before any content)", tl)


def retry_resume() -> Diagram:
    from rxllm.testing import Script, Server

    tl = Timeline()
    with Server() as server:
        server.push(Script(["Hel", "lo ", "wor", "ld, ", "again."], drop_after=2))
        server.push(Script(["wor", "ld, ", "again."]))
        real = rxllm.openai("m", base_url=server.url, api_key="test", max_retries=0)
        llm = recorded_llm(real, tl, "request 1", "request 2")
        stream = llm.stream("hi").pipe(ops.retry(backoff=0))
        record_output(tl, stream)
        continued = server.requests[1].body["messages"][-2]["content"]
    tl.row("request 2").name = f"request 2 (after {quote(continued)})"
    return Diagram("retry_resume", "retry()   (loopback server: connection dropped)", tl)


def fallback() -> Diagram:
    from rxllm.testing import Script, Server

    tl = Timeline()
    with Server() as server:
        server.push(Script(["Hel", "lo ", "wor", "ld."], drop_after=2))
        server.push(Script(["wor", "ld."]))  # what the second provider adds after the prefill
        first = rxllm.openai("m", base_url=server.url, api_key="test", max_retries=0)
        second = rxllm.anthropic("m", base_url=server.url, api_key="test", max_retries=0)
        a = recorded_llm(first, tl, "openai")
        b = recorded_llm(second, tl, "anthropic")
        record_output(tl, rxllm.fallback(a.stream("hi"), b.stream("hi")))
        continued = server.requests[1].body["messages"][-1]["content"]
    tl.row("anthropic").name = f"anthropic (after {quote(continued)})"
    return Diagram("fallback", "fallback(a, b)   (loopback server: connection dropped)", tl)


def finish_label(finish: Any) -> str:
    return f"Finish({finish.outcome}, {quote(finish.response.text)})"


def on_finish() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted(["One. ", "Two. ", "Three."], delay=PACE), tl, "call")
    callback_row = tl.row("callback", "out")
    callback_row.line = False
    stream = llm.stream("count").pipe(
        ops.on_finish(lambda finish: tl.record(callback_row, "next", finish_label(finish))),
        ops.take_until(lambda chunk: "Two" in chunk.content),
    )
    record_output(tl, stream)
    tl.rows.remove(callback_row)
    tl.rows.append(callback_row)
    return Diagram("on_finish", "on_finish(callback), then take_until(...Two...)", tl)


def tee() -> Diagram:
    tl = Timeline()
    llm = recorded_llm(rxllm.scripted(["One call, ", "two views."], delay=PACE), tl, "call")
    whole, pieces = rxllm.tee(llm.stream("hi"))
    row = tl.row("branch 1: text()", "out")
    tl.record(row, "subscribe")
    pieces.pipe(ops.text()).subscribe(
        lambda item: tl.record(row, "next", text_label(item)),
        lambda error: tl.record(row, "error", type(error).__name__),
        lambda: tl.record(row, "complete"),
    )
    record_output(tl, whole.pipe(ops.to_response()), "branch 0: to_response()", response_label)
    tl.rows.remove(row)
    tl.rows.append(row)
    return Diagram("tee", "tee(call, 2)", tl)


def audio_split() -> Diagram:
    tl = Timeline()
    script = [
        Chunk(content="(text)"),
        Chunk(audio=b"\x01\x00" * 12000, audio_transcript="Hi, "),
        Chunk(audio=b"\x01\x00" * 24000, audio_transcript="there."),
    ]
    llm = recorded_llm(rxllm.scripted(script, delay=PACE), tl, "call")
    split = rxllm.audio_split(llm.stream("hi"))
    for name, stream, label in (
        ("text", split.text, text_label),
        ("audio", split.audio, lambda b: f"♪{len(b) / 48000:g}s"),
    ):
        row = tl.row(name, "out")
        tl.record(row, "subscribe")
        stream.subscribe(
            lambda item, row=row, label=label: tl.record(row, "next", label(item)),
            lambda error, row=row: tl.record(row, "error", type(error).__name__),
            lambda row=row: tl.record(row, "complete"),
        )
    record_output(tl, split.transcript, "transcript", text_label)
    return Diagram("audio_split", "audio_split(call)", tl)


def race() -> Diagram:
    scheduler = TestScheduler()
    tl = Timeline(scheduler)
    meta = Chunk(model="m")
    fast = cold(
        scheduler,
        (0.1, meta),
        (0.3, Chunk(content="Fast")),
        (0.4, Chunk(content=" answer.", finish_reason="stop")),
        (0.4, "|"),
    ).pipe(probe(tl, "model A"))
    slow = cold(
        scheduler,
        (0.05, meta),
        (0.5, Chunk(content="Slow")),
        (0.6, Chunk(content=" answer.", finish_reason="stop")),
        (0.6, "|"),
    ).pipe(probe(tl, "model B"))
    record_output(tl, rxllm.race(fast, slow))
    return Diagram("race", "race(a, b)   (model: metadata only, not content)", tl)


def batch() -> Diagram:
    scheduler = TestScheduler()
    tl = Timeline(scheduler)
    answers = {
        "a": [(0.3, Chunk(content="ok", finish_reason="stop")), (0.3, "|")],
        "b": [(0.2, Chunk(content="o")), (0.5, rxllm.RateLimitError("429"))],
        "c": [(0.2, Chunk(content="ok", finish_reason="stop")), (0.2, "|")],
    }

    def pipeline(item: str) -> reactivex.Observable[Chunk]:
        return reactivex.defer(
            lambda _: cold(scheduler, *answers[item]).pipe(probe(tl, f"call {item}"))
        )

    def result_label(result: Any) -> str:
        item, outcome = result
        if isinstance(outcome, Exception):
            return f"({item}, {type(outcome).__name__})"
        return f"({item}, {quote(outcome.text)})"

    results = rxllm.batch(["a", "b", "c"], pipeline, concurrency=2, progress=False)
    record_output(tl, results, "results", result_label)
    return Diagram("batch", 'batch(["a", "b", "c"], pipeline, concurrency=2)', tl)


DIAGRAMS: list[Callable[[], Diagram]] = [
    accumulate,
    take_until,
    take_until_button,
    to_response,
    text,
    sentences,
    smooth,
    partial,
    tool_calls,
    tool_results,
    tool_loop,
    audio_segments,
    retry,
    retry_resume,
    on_finish,
    tee,
    audio_split,
    race,
    fallback,
    batch,
]

# ---------------------------------------------------------------------------------------
# Rendering

CHAR = 7.25  # px per character of 12 px DejaVu Sans Mono (what most systems substitute)
ROW_HEIGHT = 46
GUTTER = 18
PAD = 16
COLORS = {"in": ("#dbe7ff", "#3557b7"), "out": ("#dff3e4", "#2f7d45")}


def text_width(text: str) -> float:
    wide = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return wide * CHAR


def event_width(event: Event) -> float:
    if event.kind == "next":
        return text_width(event.label) + 14
    if event.kind == "error":
        return text_width(event.label) + 26
    if event.kind in ("complete", "cancel"):
        return 14
    return 0.0


def fmt_time(t: float) -> str:
    return f"{t:.2f}".rstrip("0").rstrip(".") + " s"


def render(diagram: Diagram) -> str:
    """The SVG of one diagram: rows of marbles in time columns, the operator between."""
    rows = diagram.timeline.rows
    times = sorted({e.t for row in rows for e in row.events})
    column = {t: i for i, t in enumerate(times)}
    widths = [
        text_width(fmt_time(t)) + 4 if diagram.timeline.virtual else 24.0 for t in times
    ]  # room for the time labels on top (a column is its width plus a 12 px gap)
    for row in rows:
        for t in times:
            at = [e for e in row.events if e.t == t and e.kind != "subscribe"]
            if at:
                widths[column[t]] = max(widths[column[t]], sum(event_width(e) + 6 for e in at))
    name_width = max(text_width(row.name) for row in rows) + 20
    x0 = PAD + name_width + GUTTER
    xs = [x0]
    for w in widths:
        xs.append(xs[-1] + w + 12)
    width = max(xs[-1] + PAD + 20, text_width(diagram.operator) + 4 * PAD)
    inputs = [r for r in rows if r.role == "in"]
    outputs = [r for r in rows if r.role == "out"]
    top = 30 if diagram.timeline.virtual else 12
    box_height = 34
    height = top + ROW_HEIGHT * len(rows) + box_height + 20
    parts: list[str] = []
    add = parts.append
    add(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" '
        f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">'
    )
    add(f"<title>{html.escape(diagram.operator)}</title>")
    add(f"<desc>{html.escape(describe(diagram))}</desc>")
    add(f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>')
    if diagram.timeline.virtual:
        for t in times:
            x = xs[column[t]]
            add(f'<text x="{x:.1f}" y="16" fill="#888">{fmt_time(t)}</text>')
            add(
                f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 8:.0f}" '
                'stroke="#eee" stroke-dasharray="2,3"/>'
            )
    y = top
    for group, after in ((inputs, True), (outputs, False)):
        for row in group:
            y += ROW_HEIGHT
            draw_row(add, row, y - ROW_HEIGHT / 2, xs, column, width)
        if after:
            add(
                f'<rect x="{PAD}" y="{y + 6}" width="{width - 2 * PAD:.0f}" '
                f'height="{box_height - 12}" rx="4" fill="#f4f4f4" stroke="#999"/>'
            )
            add(
                f'<text x="{width / 2:.0f}" y="{y + box_height / 2 + 4:.0f}" '
                f'text-anchor="middle" fill="#222">{html.escape(diagram.operator)}</text>'
            )
            y += box_height
    add("</svg>")
    return "\n".join(parts) + "\n"


def draw_row(  # noqa: PLR0917 - one row of one drawing, all of it needed
    add: Callable[[str], None],
    row: Row,
    y: float,
    xs: list[float],
    column: dict[float, int],
    width: float,
) -> None:
    fill, stroke = COLORS[row.role]
    add(
        f'<text x="{xs[0] - GUTTER:.1f}" y="{y + 4:.1f}" text-anchor="end" '
        f'fill="#444">{html.escape(row.name)}</text>'
    )
    visible = [e for e in row.events if e.kind != "subscribe"]
    starts = [e.t for e in row.events if e.kind == "subscribe"]
    first = min([column[e.t] for e in visible] + [column[t] for t in starts], default=0)
    terminal = next((e for e in visible if e.kind in ("complete", "error", "cancel")), None)
    x_start = xs[first] - 8
    placed: list[tuple[float, Event]] = []
    cursor: dict[int, float] = {}
    for event in visible:
        c = column[event.t]
        x = cursor.get(c, xs[c])
        placed.append((x, event))
        cursor[c] = x + event_width(event) + 6
    x_end = width - PAD - 6
    if not row.line:
        pass
    elif terminal is not None:
        x_end = next(x for x, e in placed if e is terminal) + (4 if terminal.kind != "error" else 8)
    if row.line:
        add(
            f'<line x1="{x_start:.1f}" y1="{y:.1f}" x2="{x_end:.1f}" y2="{y:.1f}" '
            'stroke="#555" stroke-width="1.5"/>'
        )
    if row.line and terminal is None:
        add(f'<path d="M{x_end:.1f},{y:.1f} l-7,-4 v8 z" fill="#555"/>')
    for x, event in placed:
        if event.kind == "next":
            w = event_width(event)
            add(
                f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="{w:.1f}" height="22" rx="11" '
                f'fill="{fill}" stroke="{stroke}"/>'
            )
            add(
                f'<text x="{x + 7:.1f}" y="{y + 4:.1f}" fill="#111" xml:space="preserve">'
                f"{html.escape(event.label)}</text>"
            )
        elif event.kind == "complete":
            add(
                f'<line x1="{x + 4:.1f}" y1="{y - 12:.1f}" x2="{x + 4:.1f}" y2="{y + 12:.1f}" '
                'stroke="#111" stroke-width="2.5"/>'
            )
        elif event.kind == "cancel":
            add(
                f'<line x1="{x:.1f}" y1="{y - 10:.1f}" x2="{x + 8:.1f}" y2="{y + 10:.1f}" '
                'stroke="#b06000" stroke-width="2.5"/>'
            )
            add(
                f'<text x="{x + 12:.1f}" y="{y - 13:.1f}" fill="#b06000" font-size="10">'
                "cancelled</text>"
            )
        elif event.kind == "error":
            add(
                f'<path d="M{x + 2:.1f},{y - 8:.1f} l12,16 M{x + 14:.1f},{y - 8:.1f} l-12,16" '
                'stroke="#c0262d" stroke-width="2.5"/>'
            )
            add(
                f'<text x="{x + 20:.1f}" y="{y + 4:.1f}" fill="#c0262d">'
                f"{html.escape(event.label)}</text>"
            )


def describe(diagram: Diagram) -> str:
    """The diagram as text (the SVG's description, for screen readers and diffs)."""
    lines = []
    rows = diagram.timeline.rows
    for row in [r for r in rows if r.role == "in"] + [r for r in rows if r.role == "out"]:
        events = []
        for e in row.events:
            if e.kind == "subscribe":
                continue
            when = fmt_time(e.t) if diagram.timeline.virtual else f"step {e.t:g}"
            what = {"next": e.label, "complete": "completes", "cancel": "cancelled"}.get(
                e.kind, f"fails: {e.label}"
            )
            events.append(f"{when} {what}")
        lines.append(f"{row.name}: " + "; ".join(events))
    return f"{diagram.operator}. " + ". ".join(lines)


def build() -> dict[str, str]:
    """Run every diagram; their SVGs by file name."""
    return {f"{d.name}.svg": render(d) for d in (make() for make in DIAGRAMS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    svgs = build()
    stale = []
    for name, svg in svgs.items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != svg:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(svg)
    if stale:
        print("out of date (run python docs/marbles.py):", ", ".join(stale), file=sys.stderr)
        return 1
    print(f"{len(svgs)} diagrams {'up to date' if args.check else 'written to ' + str(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
