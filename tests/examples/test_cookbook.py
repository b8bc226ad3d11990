"""Every cookbook example runs offline and shows what its docstring says it shows.

Each example is run as a user would run it (`python examples/NAME.py`, in a subprocess);
the test checks the facts it prints — a closed connection, nothing written after a stop,
one request for three consumers, no duplicate after a resume — not just the exit status.
"""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


def run(name: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for key in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_says_what_it_shows_and_how_to_run_it() -> None:
    for path in sorted(EXAMPLES.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path.name} has no module docstring"
        assert f"python examples/{path.name}" in doc, f"{path.name}: say how to run it"
        summary, _, body = doc.partition("\n\n")
        assert summary.strip() and body.strip(), f"{path.name}: say what it shows"


def test_every_example_is_tested_and_listed_in_the_cookbook() -> None:
    tested = set(re.findall(r'run\("(\w+\.py)"', Path(__file__).read_text()))
    present = {path.name for path in EXAMPLES.glob("*.py")}
    assert tested == present, (present - tested, tested - present)
    cookbook = (ROOT / "docs" / "cookbook.md").read_text()
    assert {n for n in present if f"examples/{n}" not in cookbook} == set()


def test_quickstart() -> None:
    out = run("quickstart.py")
    assert "finish_reason=None" in out


def test_stop_on_predicate_closes_the_call() -> None:
    out = run("stop_on_predicate.py")
    assert "client closed the connection: True" in out
    written, total, after = map(
        int, re.search(r"wrote (\d+) of (\d+) chunks, (\d+) after", out).groups()
    )
    assert written < total / 10 and after == 0


@pytest.mark.slow
def test_stop_on_predicate_on_the_local_model() -> None:
    out = run("stop_on_predicate.py", "--local", timeout=300)
    tokens = int(re.search(r"(\d+) tokens generated", out).group(1))
    assert "finish_reason=None" in out and tokens < 200


def test_stop_button() -> None:
    out = run("stop_button.py")
    assert "stopped by the button: disposed" in out
    assert "client closed the connection: True" in out
    written, total, after = map(
        int, re.search(r"wrote (\d+) of (\d+) chunks, (\d+) after", out).groups()
    )
    assert written < total / 10 and after == 0


def test_tee_ui_log_tts_makes_one_request() -> None:
    out = run("tee_ui_log_tts.py")
    assert out.count("[speaking]") == 4
    assert '"outcome": "completed"' in out
    assert "requests made: 1" in out


@pytest.mark.slow
def test_tee_ui_log_tts_on_the_local_model() -> None:
    out = run("tee_ui_log_tts.py", "--local", timeout=300)
    assert "[speaking]" in out and '"outcome": "completed"' in out


def test_typeahead_cancels_stale_calls() -> None:
    out = run("typeahead.py")
    assert "the screen ends with the suggestion for 'rxllm'" in out
    row = (
        r"'Complete: (\w+)'\s+(closed by the client|ran to the end)\s+"
        r"after\s+(\d+) of (\d+) chunks \((\d+) after"
    )
    rows = re.findall(row, out)
    assert [r[0] for r in rows][-1] == "rxllm" and len(rows) == 5
    *stale, last = rows
    assert all(
        state == "closed by the client" and int(n) < int(total) for _, state, n, total, _ in stale
    )
    assert last[1] == "ran to the end"
    assert all(after == "0" for *_, after in rows)


def test_hedged_race_cancels_the_loser() -> None:
    out = run("hedged_race.py")
    assert "winner: anthropic ('Paris.')" in out
    assert "chunks it wrote: 0" in out
    assert "closed by the client: False" not in out


def test_live_table_fills_in_then_validates() -> None:
    out = run("live_table.py")
    updates = int(re.search(r"Planets after (\d+) updates", out).group(1))
    assert updates > 6  # rows fill in field by field, not once per row
    assert "PartialPlanet(name='Mercury', moons=None" in out or "moons=None" in out
    assert re.search(r"Saturn\s+146\s+yes", out)


def test_tool_loop_with_two_tools() -> None:
    out = run("tool_loop.py")
    assert "[weather({'city': 'Oslo'}) -> 'light snow, -3 °C']" in out
    assert "[local_time({'city': 'Oslo'}) -> '14:05']" in out
    assert "steps: 2; usage of both calls: 310 in, 65 out" in out
    assert re.search(r"assistant weather, local_time\n\s+tool\s+call_w\n\s+tool\s+call_t", out)


def test_audio_to_wav_with_aligned_captions(tmp_path: Path) -> None:
    out = run("audio_to_wav.py", "--out", str(tmp_path))
    assert "answer.wav: 3.75 s of audio at 24000 Hz" in out
    assert "0.00 -  1.00 s  Hello there." in out
    srt = (tmp_path / "answer.srt").read_text()
    assert "00:00:01,000 --> 00:00:02,500\nThis audio was streamed in pieces." in srt
    import wave

    with wave.open(str(tmp_path / "answer.wav")) as wav:
        assert wav.getnframes() == 90000 and wav.getsampwidth() == 2


def test_retry_resumes_without_duplicates() -> None:
    out = run("retry_resume.py")
    assert "without retry: StreamInterrupted" in out
    assert "every word once: True" in out
    assert "continued after: 'Rivers begin as rain, gather'" in out


def test_batch_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    out = run("batch_checkpoint.py", "--checkpoint", str(tmp_path / "run.jsonl"))
    assert "first run: stopped after 400 results" in out
    assert re.search(
        r"second run: 1000 results, \d+ calls made \(= 1000 prompts - \d+ done: True\)", out
    )
    assert "RateLimitError" not in out.split("labels:")[1].splitlines()[0]


def test_tui_chat_streams_and_esc_stops_it(tmp_path: Path) -> None:
    """The Textual chat as a user runs it, on Textual's headless driver: type a question,
    Enter, Esc a moment later; the screenshot Textual saves shows the stopped answer.
    (tests/examples/test_tui_chat.py drives the app with Pilot, also over the loopback
    server.)"""
    textual = {
        "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver",
        "TEXTUAL_PRESS": "w,h,y,question_mark,enter,wait:1200,escape",
        "TEXTUAL_SCREENSHOT": "4",  # seconds; then the app exits
        "TEXTUAL_SCREENSHOT_LOCATION": str(tmp_path),
        "TEXTUAL_SCREENSHOT_FILENAME": "chat.svg",
    }
    run("tui_chat.py", "--model", "scripted", env=textual)
    svg = (tmp_path / "chat.svg").read_text()
    screen = html.unescape(" ".join(re.findall(r"<text[^>]*>(.*?)</text>", svg)))
    screen = re.sub(r"\s+", " ", screen)
    assert "why?" in screen and "Reactive streams" in screen  # the question, the answer
    assert "· stopped (the call was" in screen  # the status line (cut at 80 columns)
    tokens = int(re.search(r"(\d+) tokens ·", screen).group(1))
    assert 0 < tokens < 200  # the demo answer has over 200 words: it was cut short


def test_fallback_continues_on_the_next_provider() -> None:
    out = run("fallback.py")
    assert "OpenAI answered 503; served by anthropic" in out
    part2 = out.split("2. in the middle")[1].split("3. when")[0]
    providers = re.findall(r"^\s+(openai|anthropic): '", part2, flags=re.MULTILINE)
    assert providers == ["openai"] * 5 + ["anthropic"] * 9  # first one, then the other
    assert "every word once: True" in part2
    assert "OpenAI wrote 5 chunks" in part2
    assert "continue after: 'Rivers begin as rain, gather'" in part2
    assert "attempts: ServerError (openai), ServerError (anthropic)" in out


def test_cost_and_limits() -> None:
    out = run("cost_and_limits.py")
    # 2000 uncached input + 10000 cached + 400 output tokens of gpt-4o-mini
    assert "cost: $0.00129 (gpt-4o-mini-2024-07-18)" in out
    assert "limit: requests;" in out and "requests the server received: 3" in out
    assert "8 answered for $0.0048; calls made: 9 of 10" in out
    assert "'Label item 8': usage limit cost=$0.005 crossed" in out
    assert "'Label item 9': usage limit cost=$0.005 reached" in out


def test_web_chat_stop_closes_the_model_call() -> None:
    """examples/web_chat/app.py as a user runs it (uvicorn), on a model behind the loopback
    server: the chat endpoint streams the UI message stream; a client that leaves mid-answer
    (what the page's Stop button does: it aborts the fetch) closes the model's HTTP call.
    tests/web/test_browser.py does the same from the page in headless Chromium."""
    import json
    import socket

    import httpx

    from rxllm.testing import Script, Server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    words = [f"word{i} " for i in range(300)]
    with Server(Script(words, delay=0.02)) as server:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test"}
        app = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLES / "web_chat" / "app.py"),
                *("--model", "openai:gpt-4o-mini", "--base-url", server.url),
                *("--port", str(port)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            assert app.stdout is not None
            assert "web chat on http://127.0.0.1" in app.stdout.readline()
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):  # uvicorn prints before it listens
                try:
                    page = httpx.get(url + "/", timeout=5)
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            assert 'id="stop"' in page.text
            body = {
                "messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]
            }
            deltas = []
            with httpx.stream("POST", url + "/api/chat", json=body, timeout=30) as answer:
                assert answer.headers["x-vercel-ai-ui-message-stream"] == "v1"
                for line in answer.iter_lines():
                    if line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if event["type"] == "text-delta":
                            deltas.append(event["delta"])
                            if len(deltas) == 5:
                                break  # leaving closes the connection: the Stop button
            assert "".join(deltas) == "".join(words[:5])
            assert server.last.wait_closed(5), "the model's HTTP call was not closed"
            assert server.last.chunks_written < len(words) / 2
        finally:
            app.terminate()
            app.wait(10)


def test_otel_console_traces_calls_and_tool_runs() -> None:
    out = run("otel_console.py")
    # a span prints when it ends, which for a stopped call may be a moment after the stop
    part1 = out.split("2. a call stopped early")[0]
    chats = re.findall(r"span 'chat gpt-4o-mini' \(parent: handle request\) UNSET (.*)", part1)
    assert len(chats) == 2
    assert "('tool_calls',)" in chats[0] and "('stop',)" in chats[1]
    assert "span 'execute_tool weather' (parent: chat gpt-4o-mini) UNSET" in part1
    assert "span 'handle request' (parent: -)" in part1
    cancelled = re.findall(
        r"span 'chat gpt-4o-mini' \(parent: -\) UNSET .*'rxllm.cancelled': True", out
    )
    assert len(cancelled) == 1
    assert "the server saw the client leave: True" in out
    failed = r"span 'chat gpt-4o-mini' \(parent: -\) ERROR .*'error.type': 'ServerStreamError'"
    assert len(re.findall(failed, out)) == 1
