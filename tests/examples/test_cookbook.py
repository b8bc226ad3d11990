"""Every cookbook example runs offline and shows what its docstring says it shows.

Each example is run as a user would run it (`python examples/NAME.py`, in a subprocess);
the test checks the facts it prints — a closed connection, nothing written after a stop,
one request for three consumers, no duplicate after a resume — not just the exit status.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


def run(name: str, *args: str, timeout: float = 120) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
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
