"""A provider that replays a script of chunks: for tests, demos and docs. No network.

It goes through the same bridge as the real providers, so cancellation, threads vs.
asyncio, `stall_timeout` and errors with `partial` behave exactly as they do there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from rxllm import errors
from rxllm.bridge import CallControl, IteratorCall
from rxllm.llm import LLM
from rxllm.models import Chunk, Usage
from rxllm.providers.in_process import InProcessCodec
from rxllm.request import Request

__all__ = ["ScriptedProvider", "scripted", "split_text"]

PROVIDER = "scripted"
_PIECES = re.compile(r"\S+\s*|\s+")


class _Auto:
    """The default finish reason: "tool_calls" for a script with tool calls, else "stop"."""


_AUTO = _Auto()


def split_text(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to it.

    >>> split_text("Hello there, world.")
    ['Hello ', 'there, ', 'world.']
    """
    return _PIECES.findall(text)


class ScriptedProvider:
    """Replays the same script for every call (or, with `then`, a script per call, in the
    order the calls are made); records each call's `Request`."""

    name = PROVIDER

    def __init__(
        self,
        script: Sequence[Chunk | str] | str,
        *,
        delay: float = 0.0,
        error: BaseException | None = None,
        model: str = "scripted",
        finish_reason: str | _Auto | None = _AUTO,
        usage: Usage | None = None,
        then: Sequence[Sequence[Chunk | str] | str] = (),
    ) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, not {delay}")
        if isinstance(then, str) or not isinstance(then, Sequence):
            raise ValueError(
                "then= takes a list of scripts, one per later call (each a text or a list of "
                f"chunks/strings), not {type(then).__name__}: e.g. then=['The answer is 3.']"
            )
        self.model = model
        self.delay = delay
        self.error = error
        self.scripts: tuple[tuple[Chunk, ...], ...] = tuple(
            self._chunks(item, model, finish_reason, usage, error if i == len(then) else None)
            for i, item in enumerate((script, *then))
        )
        """The script of each call in turn; the last one is replayed from then on."""
        self.chunks: tuple[Chunk, ...] = self.scripts[0]
        """The chunks of the first call (of every call, without `then`)."""
        self.requests: list[Request] = []
        """Every call's request, in order (for assertions in tests)."""
        self._calls = 0
        self._last: tuple[Chunk, ...] = self.chunks

    @staticmethod
    def _chunks(
        script: Sequence[Chunk | str] | str,
        model: str,
        finish_reason: str | _Auto | None,
        usage: Usage | None,
        error: BaseException | None,
    ) -> tuple[Chunk, ...]:
        if isinstance(script, str):
            items: list[Chunk | str] = list(split_text(script))
        elif isinstance(script, Sequence):
            items = list(script)
        else:
            raise ValueError(
                f"rxllm.scripted() takes a text or a list of chunks/strings, not "
                f"{type(script).__name__}"
            )
        chunks = [
            item if isinstance(item, Chunk) else Chunk(content=str(item), provider=PROVIDER)
            for item in items
        ]
        chunks = [c if c.model else c.model_copy(update={"model": model}) for c in chunks]
        if isinstance(finish_reason, _Auto):
            finish_reason = "tool_calls" if any(c.tool_calls for c in chunks) else "stop"
        if error is None and chunks and not any(c.finish_reason for c in chunks):
            chunks[-1] = chunks[-1].model_copy(
                update={"finish_reason": finish_reason, "usage": chunks[-1].usage or usage}
            )
        return tuple(chunks)

    def check(self, request: Request) -> None:
        """Any arguments are fine for a script."""

    def codec(self, request: Request) -> ScriptedCodec:
        """The codec of a replay (the same for every call)."""
        return _CODEC

    def make_call(self, request: Request) -> ScriptedCall:
        """One replay of the next script (the rest of the last one, for a continuation)."""
        self.requests.append(request)
        last = request.messages[-1] if request.messages else {}
        content = last.get("content")
        skip = len(content) if last.get("role") == "assistant" and isinstance(content, str) else 0
        if not skip:  # a new call, not the continuation of the last one
            self._last = self.scripts[min(self._calls, len(self.scripts) - 1)]
            self._calls += 1
        return ScriptedCall(self, self._last, request.stall_timeout, skip)


class ScriptedCodec(InProcessCodec):
    """A replay's codec: an answer continues after the text already delivered."""

    def continuation(self, request: Request, text: str) -> Request:
        """Continue after `text`: the replay skips that much of the script's text."""
        messages = (*request.messages, {"role": "assistant", "content": text})
        return dataclasses.replace(request, messages=messages)


_CODEC = ScriptedCodec()


class ScriptedCall(IteratorCall):
    """One replay: the chunks, each after `delay` seconds, then `error` if any."""

    provider = PROVIDER
    codec = _CODEC

    def __init__(
        self,
        script: ScriptedProvider,
        chunks: Sequence[Chunk],
        stall_timeout: float | None,
        skip: int = 0,
    ) -> None:
        self._script = script
        self.stall_timeout = stall_timeout
        self._chunks = _skip_text(chunks, skip)
        self._last_script = chunks is script.scripts[-1]

    def iter_sync(self, control: CallControl) -> Iterator[Chunk]:
        """Replay on the calling (background) thread; a cancel wakes a pending delay."""
        delay = self._script.delay
        for chunk in self._chunks:
            if delay and control.wait(delay):
                return
            yield chunk
        self._fail()

    async def iter_async(self, control: CallControl) -> AsyncIterator[Chunk]:
        """Replay on the running loop."""
        delay = self._script.delay
        for chunk in self._chunks:
            if delay:
                await asyncio.sleep(delay)
            yield chunk
        self._fail()

    def _fail(self) -> None:
        error = self._script.error
        if error is None or not self._last_script:
            return
        if isinstance(error, errors.LLMError) and error.provider is None:
            error.provider = PROVIDER
        raise error

    def map_error(self, error: BaseException, *, received: int) -> errors.LLMError:
        """A non-rxllm exception in a script becomes an `LLMError` with it as cause."""
        mapped = errors.LLMError(f"scripted: {type(error).__name__}: {error}", provider=PROVIDER)
        mapped.__cause__ = error
        return mapped


def _skip_text(chunks: Sequence[Chunk], skip: int) -> tuple[Chunk, ...]:
    """The chunks after the first `skip` characters of text (a chunk may be cut)."""
    if not skip:
        return tuple(chunks)
    rest: list[Chunk] = []
    for chunk in chunks:
        if skip >= len(chunk.content) and chunk.content:
            skip -= len(chunk.content)
            continue
        if skip:
            rest.append(chunk.model_copy(update={"content": chunk.content[skip:]}))
            skip = 0
        else:
            rest.append(chunk)
    return tuple(rest)


def scripted(
    chunks_or_text: Sequence[Chunk | str] | str,
    *,
    delay: float = 0.0,
    error: BaseException | None = None,
    **kw: Any,
) -> LLM:
    """An `LLM` that replays `chunks_or_text` (a text is split into word-sized chunks).

    Options: `delay` seconds before each chunk; `error` raised after the script; `model`,
    `finish_reason` (set on the last chunk when no chunk has one; default "stop", or
    "tool_calls" for a script with tool calls) and `usage`; `then`, the scripts of the
    next calls in the order they are made (the last one is replayed from then on; `error`
    follows only that one), e.g. the answer after a tool call; any other keyword is a
    default request parameter (recorded, not used).

    >>> import rxllm
    >>> rxllm.collect(rxllm.scripted(["Hel", "lo"]).stream("hi")).text
    'Hello'
    >>> llm = rxllm.scripted("First.", then=["Second."])
    >>> [rxllm.collect(llm.stream("hi")).text for _ in range(3)]
    ['First.', 'Second.', 'Second.']
    """
    options = {k: kw.pop(k) for k in ("model", "finish_reason", "usage", "then") if k in kw}
    provider = ScriptedProvider(chunks_or_text, delay=delay, error=error, **options)
    return LLM(provider, **kw)
