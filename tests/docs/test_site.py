"""The documentation site builds with `mkdocs build --strict`, and its API reference covers
every public name."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rxllm

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"


def documented() -> set[str]:
    """Every object a reference page renders with `::: name`."""
    names: set[str] = set()
    for page in REFERENCE.glob("*.md"):
        names |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.MULTILINE))
    return names


def public_names() -> set[str]:
    """`rxllm.__all__`, and the `__all__` of its public modules (`ops`, `web`, `testing`,
    `ray`)."""
    names = {f"rxllm.{name}" for name in rxllm.__all__}
    for module in ("rxllm.ops", "rxllm.web", "rxllm.testing", "rxllm.ray"):
        names |= {f"{module}.{name}" for name in importlib.import_module(module).__all__}
    return names


def test_every_public_name_is_in_the_reference() -> None:
    missing = public_names() - documented()
    assert not missing, f"add `::: name` lines to docs/reference/*.md for: {sorted(missing)}"


def test_the_reference_names_only_public_paths() -> None:
    """Pages reference `rxllm.X` / `rxllm.ops.X` (or a public module), never a private module
    path that the package may rename."""
    private = {
        name for name in documented() if any(part.startswith("_") for part in name.split("."))
    }
    assert not private, private
    for name in documented():
        try:
            importlib.import_module(name)  # a public module: rxllm.errors, rxllm.testing
            continue
        except ImportError:
            pass
        module, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), f"{name} does not exist"


def test_docstring_examples_render_as_console_sessions() -> None:
    spec = importlib.util.spec_from_file_location("rxllm_docs_pycon", DOCS / "_tools" / "pycon.py")
    assert spec is not None and spec.loader is not None
    pycon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pycon)
    text = "Adds.\n\n>>> 1 + 1  # doctest: +ELLIPSIS\n2\n\n    marble: -a-|\n"
    assert pycon.fence_examples(text).splitlines() == [
        "Adds.",
        "",
        "```pycon",
        ">>> 1 + 1",
        "2",
        "```",
        "",
        "    marble: -a-|",
    ]


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    listed = set(re.findall(r"([\w/.-]+\.md)", nav))
    assert pages == listed, (pages - listed, listed - pages)


@pytest.mark.slow
def test_the_site_builds_strict_and_shows_every_public_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            "PATH": str(Path(sys.executable).parent),
            "PYTHONPATH": str(ROOT),
            "NO_MKDOCS_2_WARNING": "1",
        },
    )
    assert done.returncode == 0, done.stderr[-4000:]
    html = "".join(p.read_text() for p in (site / "reference").rglob("*.html"))
    anchors = set(re.findall(r'id="(rxllm[\w.]*)"', html))
    assert not public_names() - anchors, sorted(public_names() - anchors)
    # docstring examples are rendered as highlighted console sessions, not as blockquotes
    assert 'class="language-pycon' in html or "highlight" in html
    assert "&gt;&gt;&gt;" in html and "<blockquote>\n<blockquote>" not in html
    # every marble diagram is shipped with the site
    assert len(list((site / "marbles").glob("*.svg"))) == len(
        list((DOCS / "marbles").glob("*.svg"))
    )
