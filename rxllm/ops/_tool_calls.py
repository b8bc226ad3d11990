"""`tool_calls()`: each tool call once, as soon as its arguments are complete.

Providers stream a call's arguments in fragments tagged with the call's `index`, one call
after the other. So a call is complete when a later call starts, when a finish reason
arrives, or when the stream completes. `ToolCallDecoder` (`decode(chunk) -> list`,
`flush() -> list`) does the bookkeeping without Rx.
"""

from __future__ import annotations

from collections.abc import Callable

import reactivex

from rxllm.accumulator import ToolCallParts
from rxllm.errors import OutputValidationError
from rxllm.models import Chunk, ToolCall
from rxllm.ops._chunk_input import chunk_for
from rxllm.ops._decoder import decoding

__all__ = ["ToolCallDecoder", "tool_calls"]


class ToolCallDecoder:
    """Puts tool-call fragments together; hands each call out once it is complete.

    >>> from rxllm.models import ToolCallDelta
    >>> decoder = ToolCallDecoder()
    >>> decoder.decode(Chunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="f"),)))
    []
    >>> decoder.decode(Chunk(tool_calls=(ToolCallDelta(index=0, arguments='{"x": 1}'),)))
    []
    >>> decoder.decode(Chunk(tool_calls=(ToolCallDelta(index=1, id="c2", name="g"),)))
    [ToolCall(id='c1', name='f', arguments='{"x": 1}')]
    >>> decoder.decode(Chunk(tool_calls=(ToolCallDelta(index=1, arguments='{"y": '),)))
    []
    >>> decoder.flush()  # the stream ended without a finish reason: g was cut off
    []
    """

    __slots__ = ("_done", "_pending", "failure")

    def __init__(self) -> None:
        self._pending: dict[int, ToolCallParts] = {}
        self._done: set[int] = set()
        self.failure: Exception | None = None
        """Set when a call was cut off at max_tokens: the stream fails after the calls
        `decode` returned (a call with half its arguments must not run)."""

    def decode(self, chunk: Chunk) -> list[ToolCall]:
        """Add a chunk's fragments; the calls this chunk completed, in index order.

        Raises `ValueError` for a fragment of a call that was already complete (a provider
        that interleaves calls): handing out a call with arguments missing would be worse.
        """
        if chunk.tool_results:  # a tool loop's next step: its calls count from 0 again
            released = self._release()
            self._done.clear()
            return released
        complete: list[ToolCall] = []
        for delta in chunk.tool_calls:
            index = delta.index
            if index in self._done:
                if not (delta.id or delta.name or delta.arguments):
                    continue
                raise ValueError(
                    f"tool call {index} received a fragment after it was complete (a later "
                    "call had started): this provider interleaves tool calls, which "
                    "tool_calls() does not support; use accumulate() and read "
                    "snapshot.tool_calls at the end instead"
                )
            complete += self._release(before=index)
            parts = self._pending.get(index)
            if parts is None:
                parts = self._pending[index] = ToolCallParts()
            parts.add(delta)
        if chunk.finish_reason is not None:
            released = self._release()
            if chunk.finish_reason == "length":
                released = self._cut_off(released)
            complete += released
        return complete

    def _cut_off(self, released: list[ToolCall]) -> list[ToolCall]:
        """The calls of an answer cut at max_tokens that are whole; `failure` for the last
        one (the call being written when the tokens ran out) unless its arguments are a
        complete JSON object."""
        if not released:
            return released
        *whole, last = released
        if _whole(last):
            return released
        self.failure = OutputValidationError(
            f"tool_calls(): the answer was cut off at max_tokens (finish_reason='length') "
            f"inside tool call {last.name!r} (id {last.id!r}), whose arguments are "
            f"incomplete: {last.arguments[-60:]!r}; raise max_tokens",
            retryable=False,
        )
        return whole

    def flush(self) -> list[ToolCall]:
        """The stream ended without a finish reason (it was stopped, e.g. by `take_until`):
        the calls not handed out yet whose arguments are a complete JSON object, in index
        order. A call cut off while its arguments were being written is dropped: it must
        not run with half of them, or with none."""
        return [call for call in self._release() if _whole(call)]

    def _release(self, before: int | None = None) -> list[ToolCall]:
        pending = self._pending
        indexes = sorted(i for i in pending if before is None or i < before)
        released: list[ToolCall] = []
        for index in indexes:
            self._done.add(index)
            released.append(pending.pop(index).call())
        return released


def _whole(call: ToolCall) -> bool:
    """Whether the call's arguments are a complete JSON object (nothing can follow it)."""
    if not call.arguments.strip():
        return False
    try:
        call.args  # noqa: B018 - parsing is the check: a JSON object, or ValueError
    except ValueError:
        return False
    return True


def tool_calls() -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[ToolCall]]:
    """Each tool call once its arguments are complete, in index order.

    A call is complete when a call with a higher index starts or when a chunk carries a
    finish reason. `arguments` is the concatenation of the call's fragments; `id` and
    `name` come from whichever fragments carried them. When the source completes without
    a finish reason (a Stop: `take_until` cut the answer), the last call is emitted only if
    its arguments are a complete JSON object; a call cut off while its arguments were
    being written is dropped, so `tool_results` never runs it with half of them (or with
    its defaults). On an error from the source, calls not yet complete are dropped and the
    error passes through. A fragment for a call already emitted (calls interleaved) fails the
    stream with `ValueError`. The call being written when the answer was cut off at
    max_tokens (`finish_reason="length"`, its arguments empty or not a complete JSON object)
    is not emitted: the stream fails with `OutputValidationError` after the calls that were
    whole. On the stream of `ops.tool_loop`, each step's calls come out in turn (their
    indexes start at 0 again after the chunk that carries a step's `tool_results`).

        chunks:  -[0:"f" '{"a"']--[0:': 1}']--[1:"g" '{}']---|
        tool_calls()
        output:  -------------------f({"a": 1})--------------g({})|

    >>> import rxllm
    >>> from rxllm import Chunk, ToolCallDelta, ops
    >>> llm = rxllm.scripted([
    ...     Chunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="weather", arguments='{"ci'),)),
    ...     Chunk(tool_calls=(ToolCallDelta(index=0, arguments='ty": "Oslo"}'),)),
    ... ])
    >>> [(c.name, c.args) for c in rxllm.iterate(llm.stream("hi").pipe(ops.tool_calls()))]
    [('weather', {'city': 'Oslo'})]
    """

    return decoding(ToolCallDecoder, chunk_for("tool_calls"))
