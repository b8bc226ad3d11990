"""examples/tui_chat.py driven by Textual's Pilot: type, watch the Markdown grow, press Esc.

Esc must stop the model, not just the screen: with the scripted model the answer stops
growing and ends cut short; with the loopback server, its record shows the HTTP stream
closed mid-answer.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown, Static

import rxllm
from rxllm.testing import Script, Server

pytestmark = pytest.mark.timeout(120)  # a hang fails instead

EXAMPLE = Path(__file__).parents[2] / "examples" / "tui_chat.py"
WORDS = [f"word{i} " for i in range(400)]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tui_chat", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tui_chat"] = module
    spec.loader.exec_module(module)
    return module


tui_chat = _load()


async def until(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds (a generous limit turns a hang into a failure)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


async def ask(pilot: Pilot[Any], question: str) -> None:
    await pilot.press(*question)
    await pilot.press("enter")


def answer(app: Any) -> str:
    return app.query(".assistant").last(Markdown).source  # type: ignore[no-any-return]


def status(app: Any) -> str:
    return str(app.query_one("#status", Static).render())


class TestStreaming:
    """The answer grows as Markdown; Esc stops the model; the status line counts."""

    async def test_markdown_grows_and_esc_stops_the_model(self) -> None:
        llm = rxllm.scripted(WORDS, delay=0.02)
        app = tui_chat.ChatApp(llm)
        async with app.run_test() as pilot:
            await ask(pilot, "Talk to me")
            await until(pilot, lambda: answer(app).startswith("word0 "), "the first words")
            seen = len(answer(app))
            await until(pilot, lambda: len(answer(app)) > seen + 20, "the answer to grow")
            assert "".join(WORDS).startswith(answer(app))
            await until(pilot, lambda: "tokens/s" in status(app), "a speed in the status line")
            await pilot.press("escape")
            await until(pilot, lambda: not app.streaming, "the answer to end")
            response = app.responses[-1]
            assert response.finish_reason is None  # cut short, not finished by the model
            assert 0 < response.chunk_count < len(WORDS)
            shown = answer(app)
            assert shown == response.text
            await pilot.pause(0.3)  # a stream still running would have added 15 words
            assert answer(app) == shown
            line = status(app)
            assert f"{response.chunk_count} tokens" in line
            assert "stopped (the call was cancelled)" in line
            assert line.startswith("scripted scripted · ")

    async def test_the_conversation_is_kept_across_turns(self) -> None:
        llm = rxllm.scripted("First answer.", then=[WORDS, "Third answer."], delay=0.02)
        app = tui_chat.ChatApp(llm, system="Be brief.")
        async with app.run_test() as pilot:
            await ask(pilot, "One?")
            await until(pilot, lambda: len(app.responses) == 1, "the first answer")
            assert "done (stop)" in status(app)
            await ask(pilot, "Two?")
            await until(pilot, lambda: len(answer(app)) > 30, "the second answer")
            await pilot.press("escape")
            await until(pilot, lambda: len(app.responses) == 2, "the second answer to stop")
            await ask(pilot, "Three?")
            await until(pilot, lambda: len(app.responses) == 3, "the third answer")
            assert answer(app) == "Third answer."
        requests = llm._provider.requests  # type: ignore[attr-defined]
        partial = app.responses[1].text
        assert requests[2].system == "Be brief."
        assert [dict(m) for m in requests[2].messages] == [
            {"role": "user", "content": "One?"},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": "Two?"},
            {"role": "assistant", "content": partial},  # the stopped answer, as far as it got
            {"role": "user", "content": "Three?"},
        ]


async def test_esc_closes_the_http_call(server: Server) -> None:
    server.push(Script(WORDS, delay=0.02))
    llm = rxllm.openai("m", base_url=server.url, api_key="sk-tui", max_retries=0)
    app = tui_chat.ChatApp(llm)
    async with app.run_test() as pilot:
        await ask(pilot, "Talk")
        await until(pilot, lambda: len(answer(app)) > 30, "the answer to stream")
        await pilot.press("escape")
        await until(pilot, lambda: not app.streaming, "the answer to end")
        request = server.last
        await request.wait_closed_async(5)
        assert request.client_closed_at is not None
        assert request.chunks_written < len(WORDS)
        assert "stopped" in status(app)
