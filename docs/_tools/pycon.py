"""A griffe extension for the API reference: `>>>` examples become `pycon` code blocks.

rxllm's docstrings are plain text with doctest examples (run by `tests/test_docstrings.py`).
Rendered as Markdown, a `>>>` line would be a nested blockquote; this fences each example
(its `>>>`/`...` lines and the output up to a blank line) as a highlighted console session.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_FLAGS = re.compile(r"\s*# doctest:.*$")


def fence_examples(text: str) -> str:
    """Wrap every doctest example of `text` in a ```` ```pycon ```` fence.

    >>> fence_examples("Adds.\\n\\n>>> 1 + 1  # doctest: +ELLIPSIS\\n2\\n\\nDone.").splitlines()
    ['Adds.', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'Done.']
    """
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        out.append("```pycon")
        while i < len(lines) and lines[i].strip():
            example = lines[i]
            if example.startswith((">>>", "...")):
                example = _FLAGS.sub("", example)
            out.append(example)
            i += 1
        out.append("```")
    return "\n".join(out)


class PyconExamples(griffe.Extension):
    """Fences the doctest examples of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite `obj`'s docstring (modules, classes, functions, attributes alike)."""
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_examples(obj.docstring.value)
