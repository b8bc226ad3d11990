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
from rxllm.calls import CallControl, IteratorCall
from rxllm.llm import LLM, Request
from rxllm.models import Chunk, Usage

__all__ = ["ScriptedProvider", "scripted", "split_text"]

PROVIDER = "scripted"
_PIECES = re.compile(r"\S+\s*|\s+")


def split_text(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to it.

    >>> split_text("Hello there, world.")
    ['Hello ', 'there, ', 'world.']
    """
    return _PIECES.findall(text)


class ScriptedProvider:
    """Replays the same script for every call; records each call's `Request`."""

    name = PROVIDER

    def __init__(
        self,
        script: Sequence[Chunk | str] | str,
        *,
        delay: float = 0.0,
        error: BaseException | None = None,
        model: str = "scripted",
        finish_reason: str | None = "stop",
        usage: Usage | None = None,
    ) -> None:
        if isinstance(script, str):
            items: list[Chunk | str] = list(split_text(script))
        elif isinstance(script, Sequence):
            items = list(script)
        else:
            raise ValueError(
                f"rxllm.scripted() takes a text or a list of chunks/strings, not "
                f"{type(script).__name__}"
            )
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, not {delay}")
        chunks = [
            item if isinstance(item, Chunk) else Chunk(content=str(item), provider=PROVIDER)
            for item in items
        ]
        chunks = [c if c.model else c.model_copy(update={"model": model}) for c in chunks]
        if error is None and chunks and not any(c.finish_reason for c in chunks):
            chunks[-1] = chunks[-1].model_copy(
                update={"finish_reason": finish_reason, "usage": chunks[-1].usage or usage}
            )
        self.model = model
        self.chunks: tuple[Chunk, ...] = tuple(chunks)
        """The chunks every call replays."""
        self.delay = delay
        self.error = error
        self.requests: list[Request] = []
        """Every call's request, in order (for assertions in tests)."""

    def check(self, request: Request) -> None:
        """Any arguments are fine for a script."""

    def continuation(self, request: Request, text: str) -> Request:
        """Continue after `text`: the replay skips that much of the script's text."""
        messages = (*request.messages, {"role": "assistant", "content": text})
        return dataclasses.replace(request, messages=messages)

    def make_call(self, request: Request) -> ScriptedCall:
        """One replay of the script (the rest of it, for a continuation)."""
        self.requests.append(request)
        last = request.messages[-1] if request.messages else {}
        skip = len(last.get("content") or "") if last.get("role") == "assistant" else 0
        return ScriptedCall(self, request.stall_timeout, skip)


class ScriptedCall(IteratorCall):
    """One replay: the chunks, each after `delay` seconds, then `error` if any."""

    provider = PROVIDER

    def __init__(
        self, script: ScriptedProvider, stall_timeout: float | None, skip: int = 0
    ) -> None:
        self._script = script
        self.stall_timeout = stall_timeout
        self._chunks = _skip_text(script.chunks, skip)

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
        if error is None:
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
    `finish_reason` (set on the last chunk when no chunk has one; default "stop") and
    `usage`; any other keyword is a default request parameter (recorded, not used).

    >>> import rxllm
    >>> rxllm.collect(rxllm.scripted(["Hel", "lo"]).stream("hi")).text
    'Hello'
    """
    options = {k: kw.pop(k) for k in ("model", "finish_reason", "usage") if k in kw}
    provider = ScriptedProvider(chunks_or_text, delay=delay, error=error, **options)
    return LLM(provider, **kw)
