"""`rxllm._loops.at_loop_end`: work awaited on a loop as the loop ends (the async clients
rxllm makes close their connections so)."""

from __future__ import annotations

import asyncio
import gc

from rxllm._loops import at_loop_end


def test_the_close_runs_on_the_loop_as_asyncio_run_ends() -> None:
    seen: list[tuple[str, bool]] = []
    handles = []

    async def close() -> None:
        await asyncio.sleep(0)  # a real await: the loop still runs
        seen.append(("closed", asyncio.get_running_loop().is_running()))

    async def main() -> None:
        handles.append(at_loop_end(close))
        assert asyncio.current_task() in asyncio.all_tasks()
        assert len(asyncio.all_tasks()) == 1  # it is no task: nothing waits for it
        seen.append(("main done", True))

    asyncio.run(main())
    assert seen == [("main done", True), ("closed", True)]


def test_a_dropped_handle_closes_while_the_loop_runs() -> None:
    closed = asyncio.Event()

    async def close() -> None:
        closed.set()

    async def main() -> bool:
        at_loop_end(close)  # the handle is dropped at once
        gc.collect()
        await asyncio.wait_for(closed.wait(), 5)
        return closed.is_set()

    assert asyncio.run(main())


def test_a_loop_closed_without_its_runner_drops_the_close_quietly() -> None:
    calls: list[str] = []

    async def close() -> None:
        calls.append("closed")

    loop = asyncio.new_event_loop()

    async def main() -> object:
        return at_loop_end(close)

    handle = loop.run_until_complete(main())
    loop.close()  # no shutdown_asyncgens(): nobody is left to run it
    del handle
    gc.collect()
    assert calls == []
