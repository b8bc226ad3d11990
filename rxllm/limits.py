"""`UsageLimits`: a budget of requests, tokens and dollars for a tool loop or a batch.

A tool loop that keeps asking for tools, or a batch over a million rows, can spend without
bound. With limits, no request starts once a limit is reached (`>=`), and a stream whose
usage crosses one (`>`) is stopped — its HTTP call closed — with `UsageLimitExceeded`.

What is counted is what the providers report (`Chunk.usage`): most report a call's output
tokens with its last chunk, so an output limit stops the calls after the one that crossed
it, and a call that reports no usage cannot be held to a token limit. A cost is priced per
call with `rxllm.cost.price` for the provider and model that served it; a cost limit on a
call whose price `genai-prices` does not know stops that call (a budget that cannot be
kept is not silently dropped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

from rxllm.accumulator import Snapshot
from rxllm.cost import price
from rxllm.errors import UsageLimitExceeded
from rxllm.models import Chunk, Response, Usage

__all__ = ["StreamTally", "UsageLimits", "UsageMeter"]

_Count = Annotated[int, Strict(), Field(ge=0)]
_TOKENS = ("input_tokens", "output_tokens", "total_tokens")


class UsageLimits(BaseModel, frozen=True):
    """Limits on what a tool loop (`ops.tool_loop(limits=...)`) or a batch
    (`rxllm.batch(limits=...)`) may use, over all its calls; None: no limit.

    >>> import rxllm
    >>> limits = rxllm.UsageLimits(requests=10, output_tokens=20_000, cost=0.50)
    >>> limits.cost
    Decimal('0.5')
    """

    model_config = ConfigDict(extra="forbid")

    requests: _Count | None = None
    """Calls started: none starts once this many did."""
    input_tokens: _Count | None = None
    """Prompt tokens (cached ones included) over all calls."""
    output_tokens: _Count | None = None
    """Generated tokens (reasoning included) over all calls."""
    total_tokens: _Count | None = None
    """Input plus output tokens over all calls."""
    cost: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None = None
    """US dollars over all calls, priced with `genai-prices` (a float is taken as a decimal)."""


class UsageMeter:
    """What the calls of one tool loop or one batch used, against its `UsageLimits`.

    Thread-safe: a batch's streams report from their own threads. `start()` before each
    request; the `StreamTally` it returns is fed the stream's items and says when a limit was
    crossed, and the tallies of the other streams still running are stopped then too (their
    further tokens would only add to a budget already spent).
    """

    def __init__(self, limits: UsageLimits) -> None:
        self.limits = limits
        self.lock = threading.Lock()
        """Guards the counts, the tallies' too (a batch's streams report from their threads)."""
        self.requests = 0
        """Calls started."""
        self._ended = Usage()  # of the streams that ended
        self._ended_cost = Decimal(0)
        self._running: list[StreamTally] = []

    def _totals(self) -> tuple[Usage, Decimal | None]:
        usage, cost = self._ended, self._ended_cost
        total: Decimal | None = cost
        for tally in self._running:
            usage = usage + tally.usage
            tally_cost = tally.cost
            total = None if total is None or tally_cost is None else total + tally_cost
        return usage, total

    def refused(self) -> UsageLimitExceeded | None:
        """The error for a request that may not start (a limit is reached), or None."""
        with self.lock:
            return self._check(">=")

    def start(
        self,
        *,
        requested_model: str | None = None,
        on_stop: Callable[[UsageLimitExceeded], None] | None = None,
    ) -> StreamTally | UsageLimitExceeded:
        """Count a request that starts and return its tally; or the error when a limit is
        already reached (then nothing is counted and no request must start).

        `requested_model` prices the stream when its chunks name no model; `on_stop` stops
        it when another stream crossed a limit.
        """
        with self.lock:
            refused = self._check(">=")
            if refused is not None:
                return refused
            self.requests += 1
            tally = StreamTally(self, requested_model, on_stop)
            self._running.append(tally)
            return tally

    def _check(self, kind: str) -> UsageLimitExceeded | None:
        """The error if a limit is reached (`>=`, for a start) or crossed (`>`)."""
        limits = self.limits
        usage, cost = self._totals()
        if kind == ">=" and limits.requests is not None and self.requests >= limits.requests:
            return self._error(
                "requests", limits.requests, self.requests, usage=usage, cost=cost, kind=kind
            )
        for name in _TOKENS:
            limit = getattr(limits, name)
            used = getattr(usage, name)
            if limit is not None and (used >= limit if kind == ">=" else used > limit):
                return self._error(name, limit, used, usage=usage, cost=cost, kind=kind)
        if limits.cost is not None:
            if cost is None:
                unknown = next(t for t in self._running if t.cost is None)
                return UsageLimitExceeded(
                    f"the cost limit (${limits.cost}) cannot be kept: genai-prices has no "
                    f"price for {unknown.provider!r} model {unknown.model!r}; limit tokens "
                    "instead (UsageLimits(total_tokens=...))",
                    limit="cost",
                    usage=usage,
                    cost=None,
                    provider=unknown.provider,
                )
            if cost >= limits.cost if kind == ">=" else cost > limits.cost:
                return self._error("cost", limits.cost, cost, usage=usage, cost=cost, kind=kind)
        return None

    def _error(
        self,
        name: str,
        limit: object,
        used: object,
        *,
        usage: Usage,
        cost: Decimal | None,
        kind: str,
    ) -> UsageLimitExceeded:
        if self.limits.cost is None:
            cost = None  # not priced without a cost limit
        unit = "$" if name == "cost" else ""
        what = (
            "reached: no further request starts"
            if kind == ">="
            else "crossed: the stream was stopped"
        )
        return UsageLimitExceeded(
            f"usage limit {name}={unit}{limit} {what} ({unit}{used} used over "
            f"{self.requests} request{'s' if self.requests != 1 else ''})",
            limit=name,
            usage=usage,
            cost=cost,
        )

    def _see(self, tally: StreamTally) -> UsageLimitExceeded | None:
        """After `tally` counted more: the error if a limit is now crossed; the other running
        streams are stopped then too."""
        with self.lock:
            error = self._check(">")
            others = [t for t in self._running if t is not tally] if error is not None else []
        for other in others:
            assert error is not None
            other.stop(error)
        return error

    def _end(self, tally: StreamTally) -> None:
        with self.lock:
            if tally not in self._running:
                return
            self._running.remove(tally)
            self._ended = self._ended + tally.usage
            cost = tally.cost
            self._ended_cost += cost if cost is not None else Decimal(0)


class StreamTally:
    """The usage of one running stream: one call, or the calls of a tool loop's steps (each
    step's usage starts over after the chunk carrying its `tool_results`)."""

    def __init__(
        self,
        meter: UsageMeter,
        requested_model: str | None,
        on_stop: Callable[[UsageLimitExceeded], None] | None,
    ) -> None:
        self._meter = meter
        self._requested = requested_model
        self._on_stop = on_stop
        self._steps = Usage()  # the finished steps'
        self._steps_cost: Decimal | None = Decimal(0)
        self._current: Usage | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self._stopped = False

    @property
    def usage(self) -> Usage:
        """This stream's usage so far."""
        current = self._current
        return self._steps if current is None else self._steps + current

    @property
    def cost(self) -> Decimal | None:
        """This stream's cost so far, None when unknown (0 before any usage)."""
        steps = self._steps_cost
        if steps is None or self._current is None:
            return steps
        current = self._price(self._current)
        return None if current is None else steps + current

    def _price(self, usage: Usage) -> Decimal | None:
        if not self._meter.limits.cost:  # no cost limit: never priced
            return Decimal(0)
        provider = self.provider or ""
        cost = price(usage, self.model or self._requested, provider)
        if cost is None and self.model and self._requested:
            cost = price(usage, self._requested, provider)
        return cost

    def see(self, item: Any) -> UsageLimitExceeded | None:
        """Count what `item` (a `Chunk`, `Snapshot` or `Response`) reports; the error when a
        limit is now crossed (the stream must then be stopped)."""
        if isinstance(item, Snapshot):
            item = item.delta
        if isinstance(item, Chunk):
            if item.usage is None and not item.tool_results:
                return None  # the hot path: nothing to count
            with self._meter.lock:
                self.provider = item.provider
                if item.model:
                    self.model = item.model
                if item.usage is not None:
                    self._current = item.usage
                if item.tool_results:  # a tool loop's step ended: the next call starts over
                    self._end_step()
        elif isinstance(item, Response):  # a pipeline that ends in to_response(): all at once
            with self._meter.lock:
                self._steps, self._steps_cost, self._current = Usage(), Decimal(0), None
                for call in (*item.steps, item):
                    self.provider, self.model = call.provider, call.model or self.model
                    self._current = call.usage
                    self._end_step()
        else:
            return None
        return self._meter._see(self)  # pyright: ignore[reportPrivateUsage]

    def _end_step(self) -> None:
        current = self._current
        if current is None:
            return
        cost = self._price(current)
        self._steps = self._steps + current
        self._steps_cost = (
            None if cost is None or self._steps_cost is None else self._steps_cost + cost
        )
        self._current = None

    def end(self) -> None:
        """The stream ended (completed, failed or stopped): its usage stays counted."""
        self._meter._end(self)  # pyright: ignore[reportPrivateUsage]

    def stop(self, crossed: UsageLimitExceeded) -> None:
        """Another stream crossed a limit (`crossed`): stop this one too (once)."""
        if self._stopped or self._on_stop is None:
            return
        self._stopped = True
        self._on_stop(
            UsageLimitExceeded(
                f"{crossed.message}; this stream, still running, was stopped too",
                limit=crossed.limit,
                usage=crossed.usage,
                cost=crossed.cost,
                provider=self.provider,
            )
        )
