"""A tool that raises SystemExit or KeyboardInterrupt ends the stream with it, never a hang.

Tools run on the call's thread, on worker threads or in tasks; there such an exception would
kill the thread silently (the stream never ending) or take the event loop down. It reaches
the reader instead, who gets it raised again where the stream is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import rxllm
from rxllm import Chunk, ToolCallDelta, ops


def exits() -> str:
    """Calls sys.exit."""
    raise SystemExit(3)


def interrupted() -> str:
    """Interrupted."""
    raise KeyboardInterrupt


async def exits_async() -> str:
    """Calls sys.exit, from a coroutine."""
    raise SystemExit(4)


TOOLS = [exits, interrupted, exits_async]
RAISES: dict[Callable[..., Any], type[BaseException]] = {
    exits: SystemExit,
    interrupted: KeyboardInterrupt,
    exits_async: SystemExit,
}


def loop_calling(tool: Callable[..., Any], concurrency: int) -> Any:
    call = ToolCallDelta(index=0, id="c1", name=tool.__name__, arguments="{}")
    llm = rxllm.scripted([Chunk(tool_calls=(call,))], then=["never reached"])
    return llm, llm.stream("go", tools=[tool]).pipe(ops.tool_loop(concurrency=concurrency))


@pytest.mark.parametrize("concurrency", [1, 2], ids=["on-the-call-thread", "on-workers"])
@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.__name__)
def test_collect_raises_it_again(tool: Callable[..., Any], concurrency: int) -> None:
    llm, stream = loop_calling(tool, concurrency)
    with pytest.raises(RAISES[tool]):
        rxllm.collect(stream, timeout=10)  # a hang would be a TimeoutError
    assert len(llm._provider.requests) == 1  # type: ignore[attr-defined]  # no next call


@pytest.mark.parametrize("concurrency", [1, 2], ids=["on-the-loop", "on-workers"])
@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.__name__)
async def test_acollect_raises_it_again_and_the_loop_lives_on(
    tool: Callable[..., Any], concurrency: int
) -> None:
    _, stream = loop_calling(tool, concurrency)
    with pytest.raises(RAISES[tool]):
        await rxllm.acollect(stream, timeout=10)
    answer = await rxllm.acollect(rxllm.scripted("still here").stream("x"))
    assert answer.text == "still here"


def test_tool_results_alone_ends_with_it_too() -> None:
    call = ToolCallDelta(index=0, id="c1", name="exits", arguments="{}")
    calls = rxllm.scripted([Chunk(tool_calls=(call,))]).stream("go").pipe(ops.tool_calls())
    with pytest.raises(SystemExit) as caught:
        list(rxllm.iterate(calls.pipe(ops.tool_results([exits]))))
    assert caught.value.code == 3
