"""The reliability harness at its small size (`python -m benchmarks.reliability --small`):
every section must find nothing wrong. The checks themselves are tested first, on outcomes
that break the rules, so that a section passing means something."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import rxllm
from benchmarks.reliability import faults, fuzz, run, storm
from benchmarks.reliability.common import Settled

# The checks catch what they must catch.


def test_the_fault_check_catches_a_partial_that_is_not_exact() -> None:
    expect = faults.Expect(rxllm.StreamInterrupted, True, "Hello")
    partial = rxllm.Response(text="Hell")
    error = rxllm.StreamInterrupted("broke", partial=partial)
    _, _, exact, problems = faults._judge(Settled(error=error), expect)
    assert not exact and any("partial 'Hell'" in p for p in problems)


def test_the_fault_check_catches_a_wrong_class_and_retryable() -> None:
    expect = faults.Expect(rxllm.StreamInterrupted, True, "")
    error = rxllm.APIConnectionError("no", retryable=False)
    _, _, _, problems = faults._judge(Settled(error=error), expect)
    assert any("expected StreamInterrupted" in p for p in problems)
    assert any("retryable=False" in p for p in problems)


def test_the_fault_check_catches_a_hang_and_an_untyped_exception() -> None:
    expect = faults.Expect(None, None, "x")
    assert faults._judge(Settled(timed_out=True), expect)[3]
    assert faults._judge(Settled(error=KeyError("x")), expect)[3]


def test_the_fuzz_check_catches_a_bare_error_and_a_badly_typed_response() -> None:
    assert fuzz.check_outcome(rxllm.LLMError("openai: KeyError: 'x'"))
    assert fuzz.check_outcome(TypeError("unhashable"))
    bad = rxllm.Response.model_construct(text="x", model={"a": 1})
    assert fuzz.check_outcome(bad)
    assert fuzz.check_outcome(rxllm.StreamError("ok")) is None


def test_the_storm_check_catches_two_terminals_and_a_chunk_after_a_dispose() -> None:
    counter = itertools.count()
    twice = storm.Subscriber(counter)
    twice.on_completed()
    twice.on_error(rxllm.StreamError("late"))
    assert twice.problems()
    disposed = storm.Subscriber(counter)
    disposed.disposed_at = next(counter)
    disposed.on_next(object())
    assert disposed.problems()
    fine = storm.Subscriber(counter)
    fine.on_next(object())
    fine.on_completed()
    assert fine.problems() == []


# The small run.


@pytest.mark.slow
@pytest.mark.parametrize("name", list(run.SECTIONS))
def test_the_small_run_finds_nothing_wrong(name: str) -> None:
    (section,) = run.run(small=True, only=[name])
    assert section.problems == []
    assert section.text  # its table for the report
    if name == "faults":
        assert section.figures["cells"] == len(faults.FAULTS) * 3 * 2
    if name == "leaks":
        growth = section.figures["growth"]
        assert growth["threads"] <= 0 and growth["fds"] <= 0
    if name == "storm":
        assert section.figures["streams"] == 200 and section.figures["chunks"] > 0


def test_the_report_replaces_its_block_and_keeps_the_guide(tmp_path: Path) -> None:
    from benchmarks.reliability.common import Section
    from benchmarks.reliability.report import write

    out = tmp_path / "reliability.md"
    out.write_text("# Reliability: retry and fallback\n\nThe guide, by hand.\n")
    good = Section("faults", "Fault matrix", text=["| a | b |"])
    bad = Section("leaks", "Leaks", problems=["3 more threads"])
    write(out, [good, bad], small=True, seconds=61.0, command="python -m benchmarks.reliability")
    write(out, [good], small=True, seconds=61.0, command="python -m benchmarks.reliability")
    text = out.read_text()
    assert text.startswith("# Reliability: retry and fallback\n\nThe guide, by hand.\n")
    assert text.count("### Fault matrix") == 1 and "| a | b |" in text
    assert "3 more threads" not in text  # the first run's block was replaced
    assert "### Machine" in text and "anthropic " in text
