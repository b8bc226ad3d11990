"""Every `>>>` example in the package's docstrings runs and says what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import rxllm

SKIP = {"rxllm.cli", "rxllm.__main__", "rxllm.providers.local"}  # need the local model
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(rxllm.__path__, "rxllm.") if info.name not in SKIP
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
