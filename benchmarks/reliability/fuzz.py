"""Fuzz: generated SSE bodies through each codec must end typed, never hang or crash.

A body starts as what the loopback server sends for a random script (texts with any
characters, thinking, a tool call, refusals, usage, every finish reason) in one protocol;
hypothesis then breaks it: a field replaced by a value of another type or removed, an
event dropped, repeated or replaced by random JSON, random bytes inserted, the body cut
and followed by garbage; and it cuts the result into random pieces (inside lines, inside
multi-byte characters). Each body goes

- **directly** through the codec's event mapper, rxllm's SSE decoder and the HTTP call's
  JSON parsing and event delivery (`rxllm.providers.http_call`), fast, many examples; and
- **over the loopback server** (`Script(raw_events=pieces)`) through the real SDK and
  rxllm's bridge, sync and asyncio, fewer examples.

Every run must end in a completed `Response` whose fields have their types (and whose
`raw` can be read), or in a typed `rxllm.LLMError` (a subclass: a bare `LLMError` is what
the bridge makes of an exception nobody expected), within a bounded time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rxllm
from benchmarks.reliability.common import (
    PROTOCOLS,
    Section,
    body_bytes,
    model_for,
    settle_async,
    settle_sync,
)
from rxllm.accumulator import Accumulator
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.providers.http_call import HTTPCall, _deliver
from rxllm.sse import SSEDecoder
from rxllm.testing import Script, Server

__all__ = ["check_outcome", "direct", "run"]

DIRECT_LIMIT = 2.0
"""Seconds one body may take directly through a codec (far more than any needs)."""
LOOPBACK_LIMIT = 10.0
"""Seconds one body may take over the loopback server before it counts as a hang."""

_EVENT = re.compile(rb"(?s).*?(?:\r\n\r\n|\n\n|\r\r)|.+")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def scripts(draw: st.DrawFn, protocol: str) -> Script:
    """A valid script: text pieces (any characters), maybe thinking, a refusal, a tool call."""
    items: list[str | Chunk] = []
    if draw(st.booleans()):
        items.append(Chunk(thinking=draw(st.text(min_size=1, max_size=12))))
    items += draw(st.lists(st.text(min_size=1, max_size=10), max_size=6))
    if protocol != "anthropic" and draw(st.booleans()):
        items.append(Chunk(refusal=draw(st.text(min_size=1, max_size=8))))
    if draw(st.booleans()):
        name = draw(st.sampled_from(["lookup", "get_weather"]))
        arguments = json.dumps({"q": draw(st.text(max_size=8))}, ensure_ascii=False)
        cut = draw(st.integers(0, len(arguments)))
        for i, fragment in enumerate((arguments[:cut], arguments[cut:])):
            call = ToolCallDelta(
                index=0,
                id="call_1" if i == 0 else None,
                name=name if i == 0 else None,
                arguments=fragment,
            )
            items.append(Chunk(tool_calls=(call,)))
    finish = draw(st.sampled_from([None, "stop", "length", "content_filter", "tool_calls"]))
    if finish is not None:
        items.append(Chunk(finish_reason=finish))
    usage = Usage(input_tokens=draw(st.integers(0, 50)), output_tokens=draw(st.integers(0, 50)))
    return Script(items, usage=usage)


def _mutate_json(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one field somewhere replaced by another value, or removed."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        copy = dict(value)
        action = draw(st.sampled_from(["descend", "replace", "remove"]))
        if action == "remove":
            del copy[key]
        elif action == "replace":
            copy[key] = draw(json_values)
        else:
            copy[key] = _mutate_json(draw, copy[key])
        return copy
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        copy = list(value)
        copy[i] = _mutate_json(draw, copy[i]) if draw(st.booleans()) else draw(json_values)
        return copy
    return draw(json_values)


def _mutate_event(draw: st.DrawFn, event: bytes) -> bytes:
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data: ") and line[6:7] in (b"{", b"["):
            try:
                data = json.loads(line[6:])
            except ValueError:
                return event
            mutated = _mutate_json(draw, data)
            lines[i] = b"data: " + json.dumps(mutated, ensure_ascii=False).encode()
            return b"\n".join(lines)
    return event


@st.composite
def bodies(draw: st.DrawFn, protocol: str) -> list[bytes]:
    """A broken body of `protocol`, cut into pieces."""
    events = _EVENT.findall(body_bytes(draw(scripts(protocol)), protocol))
    for _ in range(draw(st.integers(0, 3))):
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1))
        kind = draw(st.sampled_from(["field", "field", "field", "drop", "repeat", "json", "bytes"]))
        if kind == "field":
            events[i] = _mutate_event(draw, events[i])
        elif kind == "drop":
            del events[i]
        elif kind == "repeat":
            events.insert(i, events[i])
        elif kind == "json":
            name = re.match(rb"event: ([^\n]*)\n", events[i])
            head = name.group(0) if name else b""
            data = json.dumps(draw(json_values), ensure_ascii=False).encode()
            events[i] = head + b"data: " + data + b"\n\n"
        else:
            at = draw(st.integers(0, len(events[i])))
            noise = draw(st.binary(min_size=1, max_size=12))
            events[i] = events[i][:at] + noise + events[i][at:]
    body = b"".join(events)
    if draw(st.integers(0, 4)) == 0:  # a valid prefix, then garbage
        body = body[: draw(st.integers(0, len(body)))] + draw(st.binary(max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    bounds = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _codec(protocol: str) -> Any:
    stream: Any = model_for(protocol, "http://127.0.0.1:9").stream("hi")
    return stream.provider.codec(stream.request)


def direct(protocol: str, pieces: list[bytes]) -> rxllm.Response | BaseException:
    """The body through the codec, the SSE decoder and the HTTP call's parsing and event
    delivery, as `HTTPCall` reads a body (without a socket): a Response or the exception."""
    mapper = _codec(protocol).events()
    decoder = SSEDecoder()
    received = Accumulator()

    def emit(chunk: Chunk) -> bool:
        received.push(chunk)
        return True

    owner = SimpleNamespace(provider=protocol)

    def parse(data: bytes) -> Any:
        return HTTPCall._parse(owner, data)  # type: ignore[arg-type]

    try:
        for piece in pieces:
            _deliver(decoder.feed(piece), mapper, parse, emit)
            if mapper.done:
                break
        else:
            _deliver(decoder.flush(), mapper, parse, emit)
        mapper.end()
    except BaseException as exc:
        return exc
    return received.response()


def check_outcome(outcome: rxllm.Response | BaseException | None) -> str | None:
    """What is wrong with how a fuzzed call ended (None: a typed end)."""
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, rxllm.LLMError):
            return f"untyped exception {type(outcome).__name__}: {outcome!r}"
        if type(outcome) is rxllm.LLMError:
            cause = outcome.__cause__
            return f"bare LLMError (an unexpected exception inside rxllm): {outcome} <- {cause!r}"
        if outcome.partial is not None:
            return check_outcome(outcome.partial)
        return None
    if outcome is None:
        return "no outcome"
    response = outcome
    for name in ("text", "thinking", "refusal", "audio_transcript"):
        if not isinstance(getattr(response, name), str):
            return f"Response.{name} is {type(getattr(response, name)).__name__}, not str"
    for name in ("finish_reason", "model", "id"):
        value = getattr(response, name)
        if value is not None and not isinstance(value, str):
            return f"Response.{name} is {value!r}, not a str or None"
    for call in response.tool_calls:
        if not isinstance(call.arguments, str) or not isinstance(call.name, str | None):
            return f"a tool call of the wrong types: {call!r}"
    if response.usage is not None:
        counts = response.usage.model_dump()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts.values()):
            return f"usage of the wrong types: {counts}"
    try:
        _ = response.raw
    except Exception as exc:
        return f"reading Response.raw raised {type(exc).__name__}: {exc}"
    return None


def _kind(outcome: Any) -> str:
    return type(outcome).__name__ if isinstance(outcome, BaseException) else "completed"


def _run_property(
    name: str,
    strategy: Any,
    body: Callable[[Any], None],
    examples: int,
    derandomize: bool,
) -> str | None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(strategy)
    def prop(value: Any) -> None:
        body(value)

    try:
        prop()
    except Exception as exc:  # hypothesis re-raises the (shrunk) failure
        notes = "\n".join(getattr(exc, "__notes__", []))
        return f"{name}: {exc}\n{notes}"
    return None


def run(*, small: bool) -> Section:
    """Fuzz every codec directly and over the loopback server."""
    section = Section("fuzz", "Fuzz")
    direct_examples = 150 if small else 3000
    loop_examples = 15 if small else 200
    counts: dict[str, Counter[str]] = {}
    slowest: dict[str, float] = {}

    def record(where: str, outcome: Any, seconds: float, limit: float) -> None:
        counts.setdefault(where, Counter())[_kind(outcome)] += 1
        slowest[where] = max(slowest.get(where, 0.0), seconds)
        problem = check_outcome(outcome)
        if seconds > limit:
            problem = f"took {seconds:.1f} s (limit {limit} s)"
        if problem:
            raise AssertionError(problem)

    for protocol in PROTOCOLS:
        # first calls import and build what later ones reuse: not part of any run's time
        direct(protocol, [body_bytes(Script("warm up"), protocol)])

        def direct_body(pieces: list[bytes], protocol: str = protocol) -> None:
            start = time.perf_counter()
            outcome = direct(protocol, pieces)
            record(f"{protocol} direct", outcome, time.perf_counter() - start, DIRECT_LIMIT)

        failure = _run_property(
            f"{protocol} direct", bodies(protocol), direct_body, direct_examples, small
        )
        if failure:
            section.problems.append(failure)

    with Server() as server:
        for protocol in PROTOCOLS:

            def over_http(value: tuple[list[bytes], bool], protocol: str = protocol) -> None:
                pieces, asynchronous = value
                server.push(Script(raw_events=pieces, delay=0.001 if len(pieces) < 8 else 0.0))
                source = model_for(protocol, server.url, stall_timeout=5.0).stream("hi")
                if asynchronous:
                    settled = asyncio.run(settle_async(source, LOOPBACK_LIMIT))
                else:
                    settled = settle_sync(source, LOOPBACK_LIMIT)
                where = f"{protocol} loopback {'asyncio' if asynchronous else 'sync'}"
                if settled.timed_out:
                    raise AssertionError(f"{where}: no end within {LOOPBACK_LIMIT} s (a hang)")
                outcome = settled.error if settled.error is not None else settled.response
                record(where, outcome, settled.seconds, LOOPBACK_LIMIT)

            failure = _run_property(
                f"{protocol} loopback",
                st.tuples(bodies(protocol), st.booleans()),
                over_http,
                loop_examples,
                small,
            )
            if failure:
                section.problems.append(failure)

    section.text += [
        "Bodies generated by hypothesis (see `benchmarks/reliability/fuzz.py`): a valid "
        "stream of a random script in the protocol, then up to three breakages (a field "
        "replaced by a value of another JSON type or removed, at any depth; an event dropped, "
        "repeated, or replaced by random JSON; random bytes inserted) and, one time in five, "
        "the body cut anywhere and followed by random bytes; the result is cut into up to "
        "nine pieces at random offsets. **Directly**: the codec's event mapper behind "
        "rxllm's SSE decoder and the HTTP call's JSON parsing and event delivery. "
        "**Loopback**: the pieces written by the loopback server, read by the real SDK "
        "through rxllm, sync or asyncio at random. Each run must end in a completed "
        "`Response` with well-typed fields (and a readable `raw`) or in a typed "
        f"`rxllm.LLMError` subclass, within {DIRECT_LIMIT} s directly and "
        f"{LOOPBACK_LIMIT} s over HTTP. "
        + ("Small mode: a fixed seed (`derandomize`)." if small else "Random seed."),
        "",
        "| path | runs | outcomes | slowest run |",
        "| --- | --- | --- | --- |",
    ]
    for where, counter in counts.items():
        outcomes = ", ".join(f"{kind} {n}" for kind, n in counter.most_common())
        runs = sum(counter.values())
        section.text.append(f"| {where} | {runs} | {outcomes} | {slowest[where] * 1000:.1f} ms |")
    section.text.append("")
    section.figures["runs"] = sum(sum(c.values()) for c in counts.values())
    return section
