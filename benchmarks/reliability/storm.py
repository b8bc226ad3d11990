"""Concurrency: hundreds of asyncio streams at once, with faults and random cancellations.

Every subscription must get exactly one terminal notification (`on_error` or
`on_completed`) and no chunk after it — unless its own `dispose()` came first: a subscriber
that disposes has said it wants nothing more, so from the moment `dispose()` is called it
gets no notification at all, terminal or chunk (API.md: disposing cancels the call; the
bridge reports nothing after a dispose). All of it runs on one event loop, so "after" is
exact: every notification and every dispose takes a number from one counter.

Half the subscriptions go through reactivex's `subscribe` (whose `AutoDetachObserver`
would hide a late notification), half straight to the observable's own subscribe function
(`_subscribe_core`), so the bridge's guarantees are checked without that safety net.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import rxllm
from benchmarks.reliability.common import PROTOCOLS, Section, model_for
from benchmarks.reliability.remote import RemoteServer

__all__ = ["run"]

STALL = 5.0
_WORDS = ["Hel", "lo ", "wörld ", "日本 ", "🎉 "]


def _script(rng: random.Random) -> dict[str, Any]:
    """A random script, as the keyword arguments of a `Script` (for the child's server)."""
    kind = rng.choice(
        ["ok", "ok", "slow", "slow", "status", "drop", "malformed", "error", "hang", "queued"]
    )
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 30))]
    script: dict[str, Any] = {"chunks": words}
    if kind == "slow":
        script["delay"] = rng.uniform(0.001, 0.02)
    elif kind == "status":
        script["status"] = rng.choice([400, 401, 404, 408, 429, 500, 503, 529])
    elif kind == "drop":
        script.update(drop_after=rng.randint(0, len(words)), delay=0.005)
    elif kind == "malformed":
        script.update(malformed_after=rng.randint(0, len(words)), delay=0.005)
    elif kind == "error":
        script.update(delay=0.005, error_event=rng.choice(["server_error", "bad_error"]))
    elif kind == "hang":
        script["hang_after"] = rng.randint(0, len(words))
    elif kind == "queued":
        script["headers_delay"] = rng.uniform(0.05, 0.5)
    return script


@dataclass
class Subscriber:
    """What one subscription received, each notification numbered on the shared counter."""

    counter: Any
    chunks: list[int] = field(default_factory=list)
    terminals: list[tuple[int, str]] = field(default_factory=list)
    disposed_at: int | None = None

    def on_next(self, chunk: Any) -> None:
        self.chunks.append(next(self.counter))

    def on_error(self, error: BaseException) -> None:
        kind = type(error).__name__ if isinstance(error, rxllm.LLMError) else f"untyped {error!r}"
        self.terminals.append((next(self.counter), kind))

    def on_completed(self) -> None:
        self.terminals.append((next(self.counter), "completed"))

    @property
    def settled(self) -> bool:
        return bool(self.terminals) or self.disposed_at is not None

    def problems(self) -> list[str]:
        """What broke the rule of one terminal notification and nothing after it."""
        found: list[str] = []
        if self.disposed_at is not None and not any(
            seq < self.disposed_at for seq, _ in self.terminals
        ):
            late = [seq for seq, _ in self.terminals] + [
                seq for seq in self.chunks if seq > self.disposed_at
            ]
            if late:
                found.append(f"{len(late)} notifications after its own dispose")
            return found
        if len(self.terminals) != 1:
            found.append(f"{len(self.terminals)} terminal notifications: {self.terminals}")
        if self.terminals:
            end = self.terminals[0][0]
            after = [seq for seq in self.chunks if seq > end]
            if after:
                found.append(f"{len(after)} chunks after its terminal notification")
            if self.terminals[0][1].startswith("untyped"):
                found.append(f"an untyped error: {self.terminals[0][1]}")
        return found


class _Observer:
    """A bare observer for `_subscribe_core` (no AutoDetachObserver around it)."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.on_next = subscriber.on_next
        self.on_error = subscriber.on_error
        self.on_completed = subscriber.on_completed


async def _storm(url: str, n: int, rng: random.Random) -> tuple[list[Subscriber], dict[str, Any]]:
    counter = itertools.count()
    llms = {p: model_for(p, url, stall_timeout=STALL) for p in PROTOCOLS}
    loop = asyncio.get_running_loop()
    subscribers: list[Subscriber] = []
    planned = 0
    for i in range(n):
        subscriber = Subscriber(counter)
        subscribers.append(subscriber)
        stream = llms[PROTOCOLS[i % 3]].stream("hi")
        if i % 2:
            disposable = stream.subscribe(
                on_next=subscriber.on_next,
                on_error=subscriber.on_error,
                on_completed=subscriber.on_completed,
            )
        else:
            disposable = stream._subscribe_core(_Observer(subscriber), None)  # type: ignore[arg-type]
        if rng.random() < 0.3:
            planned += 1

            def dispose(s: Subscriber = subscriber, d: Any = disposable) -> None:
                s.disposed_at = next(counter)
                d.dispose()

            loop.call_later(rng.uniform(0.0, 8.0), dispose)
    start = time.monotonic()
    deadline = start + 60
    while not all(s.settled for s in subscribers) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    settled = time.monotonic() - start
    await asyncio.sleep(max(0.0, 8.0 - settled))  # the last planned disposes (no effect)
    await asyncio.sleep(1.5)  # time for any late notification to show
    return subscribers, {"planned": planned, "seconds": settled}


def run(*, small: bool) -> Section:
    """`n` streams at once on one loop (n = 200 small, 500 full)."""
    n = 200 if small else 500
    rng = random.Random(500)
    section = Section("storm", "Concurrency")
    # the server in its own process: 500 connections' threads would share this one's GIL
    with RemoteServer() as server:
        # reused by any request beyond those (a fault, so that no stream is left waiting)
        server.push(*(_script(rng) for _ in range(n + 50)), {"chunks": ["late"], "status": 503})
        subscribers, info = asyncio.run(_storm(server.url, n, rng))
        requests = server.requests(wait=10)
        open_ = sum(1 for left, finished, _ in requests if not (left or finished))
    unsettled = [i for i, s in enumerate(subscribers) if not s.settled]
    section.check(not unsettled, f"{len(unsettled)} subscriptions never ended (no terminal)")
    for i, subscriber in enumerate(subscribers):
        for problem in subscriber.problems():
            section.problems.append(f"subscription {i}: {problem}")
    section.check(open_ == 0, f"{open_} requests still open on the server after the storm")
    outcomes: Counter[str] = Counter()
    cut_by_dispose = late_dispose = mid_stream = 0
    for s in subscribers:
        if s.disposed_at is not None and not any(seq < s.disposed_at for seq, _ in s.terminals):
            cut_by_dispose += 1
            mid_stream += bool(s.chunks)
        else:
            late_dispose += s.disposed_at is not None
            outcomes.update(kind for _, kind in s.terminals[:1])
    chunks = sum(len(s.chunks) for s in subscribers)
    section.figures.update(streams=n, chunks=chunks, disposed=cut_by_dispose)
    section.text += [
        f"{n} streams subscribed at once on one asyncio loop, the three protocols in turn, "
        "against scripts drawn at random: complete (fast or paced), HTTP 400/401/404/408/"
        "429/500/503/529, a drop or a malformed event after k chunks, an error event, a hang "
        f"(`stall_timeout={STALL}`), a queued request (headers after up to 0.5 s). "
        f"{info['planned']} of them (30%) are disposed at a random moment in the first 8 s "
        "(before, during or after their end). "
        f"All {n} had settled {info['seconds']:.1f} s after the last subscription; they were "
        "watched until the last planned dispose and 1.5 s more, for late notifications.",
        "",
        "| result | subscriptions |",
        "| --- | --- |",
        f"| disposed before any terminal notification (then: nothing) | {cut_by_dispose} "
        f"({mid_stream} of them mid-stream, after chunks) |",
        f"| disposed after their terminal notification (no effect) | {late_dispose} |",
        *(f"| {kind} (exactly one terminal) | {count} |" for kind, count in outcomes.most_common()),
        f"| chunks delivered in all | {chunks} |",
        f"| requests the server received / still open after | {len(requests)} / {open_} |",
        "",
        f"Violations of the rule (a second terminal, a chunk after it, anything after the "
        f"subscriber's own dispose, a subscription that never ended, an untyped error): "
        f"**{len(section.problems)}**.",
        "",
    ]
    return section
