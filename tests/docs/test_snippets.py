"""Every Python snippet on the documentation pages runs, and prints what the page says.

Conventions: `tests/docs/snippets.py`. The snippets run offline: against `rxllm.scripted`,
or against the loopback server (`rxllm.testing.Server`) that a hidden setup block starts
and points the SDKs' `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` at, so a visible
`rxllm.openai("gpt-4o-mini")` goes through the real SDK.
"""

from __future__ import annotations

import contextlib
import doctest
import io
from pathlib import Path
from typing import Any

import pytest

from .snippets import Block, read_blocks

DOCS = Path(__file__).parents[2] / "docs"
PAGES = sorted(
    path for path in DOCS.rglob("*.md") if any(block.runs for block in read_blocks(path))
)


def _same(expected: str, got: str) -> bool:
    def norm(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    want, have = norm(expected), norm(got)
    if "..." in want:
        return doctest._ellipsis_match(want, have)  # type: ignore[attr-defined]
    return want == have


def run_page(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with contextlib.ExitStack() as stack:
        namespace: dict[str, Any] = {
            "__name__": f"docs_page_{page.stem}",
            "docs_exit_stack": stack,
            "docs_env": monkeypatch.setenv,
        }
        for block in read_blocks(page):
            if not block.runs:
                continue
            run_block(block, namespace)


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    out = io.StringIO()
    code = compile(block.code, block.where(), "exec", dont_inherit=True)  # not our __future__
    with contextlib.redirect_stdout(out):
        try:
            exec(code, namespace)
        except Exception as error:
            raise AssertionError(f"{block.where()} failed:\n{block.code}") from error
    if block.output is not None:
        assert _same(block.output, out.getvalue()), (
            f"{block.where()} printed\n{out.getvalue()}\nbut the page says\n{block.output}"
        )


SLOW = {"ray.md"}  # starts a local Ray instance


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p for p in PAGES],
    ids=[str(p.relative_to(DOCS)) for p in PAGES],
)
def test_page_snippets_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    run_page(page, monkeypatch)


def test_migration_pages_skip_only_other_libraries_code() -> None:
    """A skipped block on a migration page is never rxllm's side of a row."""
    for page in sorted((DOCS / "migration").glob("*.md")):
        for block in read_blocks(page):
            if block.skip is not None:
                assert "rxllm" not in block.code, f"{block.where()} is rxllm code and skipped"


def test_conventions_are_read_as_documented(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- setup\n```python\nx = 1\n```\n-->\n\n"
        '```python\nprint(x)\n```\n\n```text title="Output"\n1\n```\n\n'
        "<!-- skip: not Python we run -->\n```python\nimport declarai\n```\n\n"
        '=== "tab"\n\n    ```python\n    print(x + 1)\n    ```\n'
    )
    blocks = read_blocks(page)
    assert [(b.hidden, b.runs, b.output) for b in blocks] == [
        (True, True, None),
        (False, True, "1\n"),
        (False, False, None),
        (False, True, None),
    ]
    assert blocks[3].code == "print(x + 1)\n"
    assert blocks[2].skip == "not Python we run"
