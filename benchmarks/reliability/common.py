"""What every section shares: the three protocols as rxllm models, a result type, timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rxllm
from rxllm.testing import Script
from rxllm.testing._encode import Protocol, plan

__all__ = [
    "PROTOCOLS",
    "Section",
    "Settled",
    "body_bytes",
    "model_for",
    "settle_async",
    "settle_sync",
]

PROTOCOLS: tuple[str, ...] = ("chat", "responses", "anthropic")
"""OpenAI Chat Completions, OpenAI Responses, Anthropic Messages."""

WIRE: dict[str, Protocol] = {
    "chat": "openai",
    "responses": "openai-responses",
    "anthropic": "anthropic",
}

KEY = "sk-reliability-0123456789abcdef"
"""The key the fault matrix sends (the secrets section uses its own)."""


def model_for(protocol: str, url: str, *, api_key: str = KEY, **defaults: Any) -> rxllm.LLM:
    """An `LLM` of `protocol` talking to the loopback server at `url`, SDK retries off (a
    fault must reach rxllm, not be retried away by the SDK)."""
    defaults.setdefault("max_retries", 0)
    if protocol == "chat":
        return rxllm.openai("test-model", base_url=url, api_key=api_key, **defaults)
    if protocol == "responses":
        return rxllm.openai(
            "test-model", api="responses", base_url=url, api_key=api_key, **defaults
        )
    return rxllm.anthropic("test-model", base_url=url, api_key=api_key, **defaults)


def body_bytes(script: Script, protocol: str) -> bytes:
    """The exact body the loopback server streams for `script` in `protocol`."""
    request = {"messages": [{"role": "user", "content": "hi"}]}
    if protocol == "chat":
        request["stream_options"] = {"include_usage": True}  # type: ignore[assignment]
    encoded = plan(script, WIRE[protocol], request, response_id="fixed-id")
    return b"".join(frame.data for frame in encoded.frames)


@dataclass
class Settled:
    """How one call ended: a `Response`, an exception, or a hang (`timed_out`)."""

    response: rxllm.Response | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    timed_out: bool = False


def settle_sync(source: Any, timeout: float) -> Settled:
    """`rxllm.collect` the call, timing it; a hang is cut at `timeout` (and reported)."""
    start = time.perf_counter()
    try:
        response = rxllm.collect(source, timeout=timeout)
    except TimeoutError as exc:
        return Settled(error=exc, seconds=time.perf_counter() - start, timed_out=True)
    except BaseException as exc:
        return Settled(error=exc, seconds=time.perf_counter() - start)
    return Settled(response=response, seconds=time.perf_counter() - start)


async def settle_async(source: Any, timeout: float) -> Settled:
    """`await rxllm.acollect` the call on the running loop, timed like `settle_sync`."""
    start = time.perf_counter()
    try:
        response = await asyncio.wait_for(rxllm.acollect(source), timeout)
    except TimeoutError as exc:
        return Settled(error=exc, seconds=time.perf_counter() - start, timed_out=True)
    except BaseException as exc:
        return Settled(error=exc, seconds=time.perf_counter() - start)
    return Settled(response=response, seconds=time.perf_counter() - start)


@dataclass
class Section:
    """One part of the report: its title, what it shows (markdown), and what was wrong."""

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    """The markdown of the section: an introduction, tables, notes."""
    problems: list[str] = field(default_factory=list)
    """Everything that broke a promise; empty when the section passed."""
    figures: dict[str, Any] = field(default_factory=dict)
    """The section's numbers, for the CI test to assert on."""

    def check(self, ok: bool, problem: str | Callable[[], str]) -> bool:
        """Record `problem` unless `ok`; return `ok`."""
        if not ok:
            self.problems.append(problem() if callable(problem) else problem)
        return ok


def ms(seconds: float) -> str:
    """Milliseconds for a table cell."""
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
