"""Items an operator sends when its source completes (the `Response`, the last sentence, the
final model, the matching chunk) obey the bridge's rule: a subscriber's `on_next` raising on
one of them reaches that subscriber's `on_error`, never the producer's thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from pydantic import BaseModel

import rxllm
from rxllm import ops


class City(BaseModel):
    name: str


def _cases() -> dict[str, tuple[reactivex.Observable[Any], Callable[[Any], bool]]]:
    text = rxllm.scripted("One. Two. Three")
    return {
        "to_response": (text.stream("q").pipe(ops.to_response()), lambda _: True),
        "sentences": (text.stream("q").pipe(ops.sentences()), lambda s: s == "Three"),
        "partial": (
            rxllm.scripted(['{"name": "Os', 'lo"}']).stream("q").pipe(ops.partial(City)),
            lambda m: m.name == "Oslo",
        ),
        "take_until": (
            text.stream("q").pipe(ops.take_until(lambda c: "Two" in c.content)),
            lambda c: "Two" in c.content,
        ),
        "tool_calls": (
            rxllm.scripted(
                [
                    rxllm.Chunk(
                        tool_calls=(
                            rxllm.ToolCallDelta(index=0, id="t", name="f", arguments='{"a":'),
                        )
                    ),
                    rxllm.Chunk(tool_calls=(rxllm.ToolCallDelta(index=0, arguments="1}"),)),
                ]
            )
            .stream("q")
            .pipe(ops.tool_calls()),
            lambda _: True,
        ),
    }


CASES = list(_cases())


@pytest.mark.parametrize("case", CASES)
def test_sync(case: str) -> None:
    source, fatal = _cases()[case]
    ended = threading.Event()
    seen: list[object] = []

    def on_next(item: object) -> None:
        if fatal(item):
            raise RuntimeError("boom")

    source.subscribe(
        on_next,
        lambda error: (seen.append(error), ended.set()),
        lambda: (seen.append("completed"), ended.set()),
    )
    assert ended.wait(5), "no terminal notification"
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)


@pytest.mark.parametrize("case", CASES)
def test_asyncio(case: str) -> None:
    async def main() -> list[object]:
        source, fatal = _cases()[case]
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[list[object]] = loop.create_future()
        seen: list[object] = []

        def on_next(item: object) -> None:
            if fatal(item):
                raise RuntimeError("boom")

        def end(what: object) -> None:
            seen.append(what)
            if not ended.done():
                ended.set_result(seen)

        source.subscribe(on_next, end, lambda: end("completed"))
        return await asyncio.wait_for(ended, 5)

    seen = asyncio.run(main())
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)
