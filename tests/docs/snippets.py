"""Reads the Python snippets of a documentation page, the way `test_snippets.py` runs them.

The conventions a page follows (docs/index.md of the site says the same for authors):

- every ```` ```python ```` block runs, in page order, in one namespace per page (like a
  doctest session), so a later block may use what an earlier one defined;
- an ```` ```text title="Output" ```` block right after a Python block holds what that
  block prints; the test compares them (`...` matches anything, as with doctest's
  ELLIPSIS);
- `<!-- setup` … `-->`: an HTML comment holding Python blocks that run but are not shown
  (Markdown hides comments), for what a reader need not see: starting a loopback server,
  pointing the SDK's environment variables at it, queuing its answers;
- `<!-- skip: why -->` on the line before a block: not run (another library's code on a
  migration page, a JavaScript snippet is not Python anyway).

A block that only includes a file (`--8<-- "examples/x.py"`, pymdownx.snippets) is not run
here: the cookbook's files are run by `tests/examples/test_cookbook.py`. Fences may be
indented (inside content tabs, grids or collapsible blocks); their content is dedented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>.*)$")
SKIP = re.compile(r"^\s*<!--\s*skip:\s*(?P<why>\S.*?)\s*-->\s*$")


@dataclass
class Block:
    """One fenced block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    title: str
    code: str
    hidden: bool = False  # inside a <!-- setup --> comment
    skip: str | None = None  # the reason given in <!-- skip: ... -->
    output: str | None = None  # the Output block that follows, if any

    @property
    def runs(self) -> bool:
        return (
            self.language in ("python", "py")
            and self.skip is None
            and not self.code.lstrip().startswith("--8<--")  # an included file, run elsewhere
        )

    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, with their Output blocks attached to the code before."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    in_setup = False
    pending_skip: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("<!-- setup"):
            in_setup = True
            i += 1
            continue
        if in_setup and stripped == "-->":
            in_setup = False
            i += 1
            continue
        skip = SKIP.match(line)
        if skip:
            pending_skip = skip.group("why")
            i += 1
            continue
        match = FENCE.match(line)
        if match and match.group("fence")[0] == "`" and "`" in match.group("info"):
            match = None  # inline code such as ```` ```json ````, not a fence (CommonMark)
        if not match:
            if stripped:
                pending_skip = None
            i += 1
            continue
        indent, fence, info = match.group("indent", "fence", "info")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and lines[i].strip().strip(fence[0]) == ""
        ):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        language = info.strip().split(" ")[0].strip("{}.") if info.strip() else ""
        title_match = re.search(r'title="([^"]*)"', info)
        block = Block(
            page=page,
            line=start + 1,
            language=language,
            title=title_match.group(1) if title_match else "",
            code="\n".join(body) + "\n",
            hidden=in_setup,
            skip=pending_skip,
        )
        pending_skip = None
        if block.title == "Output" and blocks and blocks[-1].runs:
            blocks[-1].output = block.code
            continue
        blocks.append(block)
    return blocks
