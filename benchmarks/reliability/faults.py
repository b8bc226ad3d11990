"""The fault matrix: every way a stream can fail x three protocols x sync and asyncio.

For each cell the call goes through the real SDK against the loopback server, and the
error rxllm delivers is checked against what the contract (`API.md`, "Errors") says: its
exact class, `retryable`, and that `partial.text` is exactly the text the server sent
before the fault, no more, no less (nothing sent: no partial at all).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rxllm
from benchmarks.reliability.common import (
    PROTOCOLS,
    Section,
    Settled,
    body_bytes,
    model_for,
    ms,
    settle_async,
    settle_sync,
)
from rxllm.testing import Script, Server

__all__ = ["FAULTS", "Fault", "run"]

# Multi-byte characters in every chunk but the first, so a partial cut inside one shows.
TEXT = ("Hel", "lo, ", "wörld ", "— 日本語 ", "🎉 done.")
STALL = 0.5
"""The `stall_timeout` of every call of the matrix (seconds)."""
CALL_TIMEOUT = 10.0
"""A call that has not ended after this long is a hang (a failed cell)."""


@dataclass(frozen=True)
class Expect:
    """What a cell must end with: an error class (None: a completed response), retryable,
    and the exact text received before the end."""

    error: type[rxllm.LLMError] | None
    retryable: bool | None
    text: str
    check: Callable[[Any], str | None] | None = None
    """An extra check of the error (e.g. `retry_after`): a problem, or None."""
    nothing: bool = False
    """Nothing was streamed (a fault before the stream): `partial` must be None."""


@dataclass(frozen=True)
class Fault:
    """One row of the matrix: the script for a protocol, and what it must end with."""

    name: str
    script: Callable[[str], Script]
    expect: Callable[[str], Expect]
    stall_timeout: float | None = STALL
    notes: dict[str, str] = field(default_factory=dict)


def _status(code: int) -> Fault:
    classes: dict[int, tuple[type[rxllm.LLMError], bool]] = {
        400: (rxllm.BadRequestError, False),
        401: (rxllm.AuthenticationError, False),
        403: (rxllm.PermissionDeniedError, False),
        404: (rxllm.NotFoundError, False),
        408: (rxllm.APIStatusError, True),
        409: (rxllm.APIStatusError, True),
        429: (rxllm.RateLimitError, True),
    }
    cls, retryable = classes.get(code, (rxllm.ServerError, True))
    headers = {"retry-after": "2"} if code == 429 else {}

    def check(error: Any) -> str | None:
        if getattr(error, "status_code", None) != code:
            return f"status_code {getattr(error, 'status_code', None)}, not {code}"
        if code == 429 and error.retry_after != 2.0:
            return f"retry_after {error.retry_after!r}, not 2.0 (retry-after: 2)"
        return None

    return Fault(
        f"HTTP {code}",
        lambda protocol: Script(list(TEXT), status=code, headers=headers),
        lambda protocol: Expect(cls, retryable, "", check, nothing=True),
    )


_SERVER_ERROR = {
    "chat": "server_error",
    "responses": "server_error",
    "anthropic": "overloaded_error",
}
_REQUEST_ERROR = "invalid_request_error"


def _text(k: int) -> str:
    return "".join(TEXT[:k])


def _pieces(protocol: str, *, cut_in: int | None) -> list[bytes]:
    """The body of `TEXT` cut inside every multi-byte character (each piece one write); with
    `cut_in`, only up to the middle of the first multi-byte character of chunk `cut_in`."""
    body = body_bytes(Script(list(TEXT)), protocol)
    end = len(body)
    if cut_in is not None:
        start = body.find(TEXT[cut_in].encode())
        multibyte = next(i for i, c in enumerate(TEXT[cut_in]) if len(c.encode()) > 1)
        end = start + len(TEXT[cut_in][:multibyte].encode()) + 1  # one byte into it
    cuts = [0]
    position = 0
    for char in body.decode():
        size = len(char.encode())
        if size > 1 and position + 1 < end:
            cuts.append(position + 1)  # after the character's first byte
        position += size
    cuts.append(end)
    return [body[a:b] for a, b in itertools.pairwise(cuts) if b > a]


def _utf8_split() -> Fault:
    return Fault(
        "UTF-8 split across writes",
        lambda protocol: Script(raw_events=_pieces(protocol, cut_in=None), delay=0.002),
        lambda protocol: Expect(None, None, _text(len(TEXT))),
        notes={"what": "every multi-byte character cut after its first byte, one write each"},
    )


def _utf8_cut() -> Fault:
    def script(protocol: str) -> Script:
        pieces = _pieces(protocol, cut_in=3)
        return Script(raw_events=pieces, delay=0.002, drop_after=len(pieces))

    return Fault(
        "dropped mid-character",
        script,
        lambda protocol: Expect(rxllm.StreamInterrupted, True, _text(3)),
    )


def _error_event(kind: str, cls: type[rxllm.LLMError], retryable: bool) -> Fault:
    def script(protocol: str) -> Script:
        error = _SERVER_ERROR[protocol] if kind == "server" else _REQUEST_ERROR
        return Script(list(TEXT[:3]), error_event=error)

    return Fault(
        f"error event ({kind}) after 3",
        script,
        lambda protocol: Expect(cls, retryable, _text(3)),
    )


FAULTS: tuple[Fault, ...] = (
    *(_status(code) for code in (400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504, 529)),
    _error_event("server", rxllm.ServerStreamError, True),
    _error_event("request", rxllm.StreamError, False),
    Fault(
        "malformed event after 2",
        lambda protocol: Script(list(TEXT), malformed_after=2),
        lambda protocol: Expect(rxllm.StreamError, True, _text(2)),
    ),
    *(
        Fault(
            f"dropped after {k}",
            lambda protocol, k=k: Script(list(TEXT), drop_after=k),
            lambda protocol, k=k: Expect(rxllm.StreamInterrupted, True, _text(k)),
        )
        for k in (0, 1, 4)
    ),
    Fault(
        "hang after 2 (pings every 0.1 s)",
        lambda protocol: Script(list(TEXT), hang_after=2, ping_every=0.1),
        lambda protocol: Expect(rxllm.StreamTimeout, True, _text(2)),
    ),
    Fault(
        "no headers for 2 s",
        lambda protocol: Script(list(TEXT), headers_delay=2.0),
        lambda protocol: Expect(rxllm.StreamTimeout, True, "", nothing=True),
    ),
    Fault(
        "slow drip (0.15 s per chunk)",
        lambda protocol: Script(list(TEXT), delay=0.15),
        lambda protocol: Expect(None, None, _text(len(TEXT))),
    ),
    _utf8_split(),
    _utf8_cut(),
)


@dataclass
class Cell:
    """The outcome of one fault x protocol x mode, over its repetitions."""

    outcome: str = ""
    retryable: str = ""
    partial_ok: bool = True
    seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _judge(settled: Settled, expect: Expect) -> tuple[str, str, bool, list[str]]:
    """(outcome, retryable, partial exact, problems) of one call against `expect`."""
    problems: list[str] = []
    if settled.timed_out:
        return "hang", "", False, [f"no end within {CALL_TIMEOUT} s"]
    error = settled.error
    if error is None:
        assert settled.response is not None
        text = settled.response.text
        if expect.error is not None:
            problems.append(f"completed, expected {expect.error.__name__}")
        exact = text == expect.text
        if not exact:
            problems.append(f"text {text!r}, expected {expect.text!r}")
        return "completed", "", exact, problems
    outcome = type(error).__name__
    if not isinstance(error, rxllm.LLMError):
        return outcome, "", False, [f"untyped exception {error!r}"]
    if expect.error is None:
        problems.append(f"{error!r}, expected a completed response")
    elif type(error) is not expect.error:
        problems.append(f"{outcome}, expected {expect.error.__name__}: {error}")
    if expect.retryable is not None and error.retryable != expect.retryable:
        problems.append(f"retryable={error.retryable}, expected {expect.retryable}")
    partial = error.partial
    received = partial.text if partial is not None else ""
    exact = received == expect.text and (partial is None or not expect.nothing)
    if not exact:
        problems.append(
            f"partial {received!r} (None: {partial is None}), expected "
            + ("None" if expect.nothing else repr(expect.text))
        )
    if expect.check is not None and (extra := expect.check(error)):
        problems.append(extra)
    return outcome, str(error.retryable), exact, problems


def _record(cell: Cell, settled: Settled, expect: Expect) -> None:
    outcome, retryable, exact, problems = _judge(settled, expect)
    cell.outcome = cell.outcome or outcome
    if outcome != cell.outcome:
        problems.append(f"{outcome} this time, {cell.outcome} before")
    cell.retryable = cell.retryable or retryable
    cell.partial_ok = cell.partial_ok and exact
    cell.seconds.append(settled.seconds)
    cell.problems.extend(problems)


def _stream(server: Server, fault: Fault, protocol: str) -> Any:
    server.push(fault.script(protocol))
    llm = model_for(protocol, server.url, stall_timeout=fault.stall_timeout)
    return llm.stream("hi")


def _run_sync(server: Server, repetitions: int) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for fault in FAULTS:
        for protocol in PROTOCOLS:
            cell = cells[fault.name, protocol] = Cell()
            for _ in range(repetitions):
                settled = settle_sync(_stream(server, fault, protocol), CALL_TIMEOUT)
                _record(cell, settled, fault.expect(protocol))
    return cells


async def _run_async(server: Server, repetitions: int) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for fault in FAULTS:
        for protocol in PROTOCOLS:
            cell = cells[fault.name, protocol] = Cell()
            for _ in range(repetitions):
                settled = await settle_async(_stream(server, fault, protocol), CALL_TIMEOUT)
                _record(cell, settled, fault.expect(protocol))
    return cells


_NAMES = {"chat": "OpenAI Chat", "responses": "OpenAI Responses", "anthropic": "Anthropic"}


def run(*, small: bool) -> Section:
    """Run the matrix (once per cell when `small`, else 5 times) and build its section."""
    repetitions = 1 if small else 5
    section = Section("faults", "Fault matrix")
    with Server() as server:
        modes = {
            "sync": _run_sync(server, repetitions),
            "asyncio": asyncio.run(_run_async(server, repetitions)),
        }
    section.text += [
        f"Each fault is scripted on the loopback server and read through the real SDK by "
        f"`rxllm.collect` (sync) or `await rxllm.acollect` (asyncio), SDK retries off "
        f"(`max_retries=0`), `stall_timeout={STALL}`; {repetitions} call(s) per cell. The "
        "text sent is `" + "` `".join(TEXT) + "` (multi-byte characters from the third "
        "chunk on). A cell shows the error class (or *completed*), `retryable`, whether "
        "`partial.text` is exactly the text sent before the fault (✓; a fault before the "
        "stream must leave `partial` None; after the stream began, the partial of a fault "
        'before any text may hold the id, model and usage already reported, with text `""`), '
        "and the time from the call to its end "
        f"({'one call' if repetitions == 1 else 'median [max]'}). **Every cell is checked** "
        "against the contract: a wrong class, `retryable` or partial is listed under the "
        "table and fails the CI test.",
        "",
    ]
    for mode, cells in modes.items():
        section.text += [
            f"#### {mode}",
            "",
            "| fault | " + " | ".join(_NAMES[p] for p in PROTOCOLS) + " |",
        ]
        section.text.append("| --- |" + " --- |" * len(PROTOCOLS))
        for fault in FAULTS:
            row = [fault.name]
            for protocol in PROTOCOLS:
                cell = cells[fault.name, protocol]
                timing = (
                    ms(cell.seconds[0])
                    if len(cell.seconds) == 1
                    else f"{ms(statistics.median(cell.seconds))} [{ms(max(cell.seconds))}]"
                )
                mark = "✓" if cell.partial_ok else "✗"
                retry = f", retryable={cell.retryable}" if cell.retryable else ""
                flag = " **WRONG**" if cell.problems else ""
                row.append(f"{cell.outcome}{retry}, partial {mark}, {timing}{flag}")
                for problem in dict.fromkeys(cell.problems):
                    section.problems.append(f"{mode} / {protocol} / {fault.name}: {problem}")
            section.text.append("| " + " | ".join(row) + " |")
        section.text.append("")
    section.figures["cells"] = sum(len(cells) for cells in modes.values())
    section.figures["calls"] = section.figures["cells"] * repetitions
    return section
