"""The operator pages' marble diagrams are drawn from real runs and are up to date."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).parents[2] / "docs"


def load_marbles() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rxllm_docs_marbles", DOCS / "marbles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def drawn() -> dict[str, str]:
    return load_marbles().build()


@pytest.mark.slow
def test_committed_diagrams_are_what_a_run_draws_now(drawn: dict[str, str]) -> None:
    stale = [
        name
        for name, svg in drawn.items()
        if not (DOCS / "marbles" / name).exists() or (DOCS / "marbles" / name).read_text() != svg
    ]
    assert not stale, f"regenerate with `python docs/marbles.py`: {stale}"


@pytest.mark.slow
def test_every_diagram_is_shown_and_every_shown_one_exists(drawn: dict[str, str]) -> None:
    pages = {path: path.read_text() for path in (DOCS / "operators").glob("*.md")}
    shown = {name for text in pages.values() for name in re.findall(r"marbles/(\w+\.svg)", text)}
    assert shown == set(drawn), (set(drawn) - shown, shown - set(drawn))
    committed = {path.name for path in (DOCS / "marbles").glob("*.svg")}
    assert committed == set(drawn), committed ^ set(drawn)


def test_a_stop_is_drawn_where_it_happened() -> None:
    """The recording is real: the call row ends with a cancellation at the matching chunk."""
    marbles = load_marbles()
    diagram = marbles.take_until()
    rows = {row.name: row for row in diagram.timeline.rows}
    call = [(e.kind, e.label) for e in rows["call"].events if e.kind != "subscribe"]
    assert call == [("next", '"One. "'), ("next", '"Two. "'), ("cancel", "")]
    output = [(e.kind, e.label) for e in rows["output"].events if e.kind != "subscribe"]
    assert output == [("next", '"One. "'), ("next", '"Two. "'), ("complete", "")]
