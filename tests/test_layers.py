"""The package is a pyramid: every module imports only from its own layer or below, and no
two modules import each other (at run time: imports under `if TYPE_CHECKING:` are for the
type checker only and do not count).

A new module goes into `LAYERS` where `docs/architecture.md` puts it; this test says so
when it is missing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "rxllm"

LAYERS: list[tuple[str, ...]] = [
    # what everything may use: argument checks, threads and loops, the SSE decoder, tool
    # schemas, conversation formats and prices (they read the models' fields by name only),
    # input parts (images, audio, PDFs) and their forms in each protocol, messages in the
    # OpenTelemetry GenAI conventions' JSON
    (
        "rxllm._checks",
        "rxllm._loops",
        "rxllm.sse",
        "rxllm.tools",
        "rxllm.messages",
        "rxllm.cost",
        "rxllm.parts",
        "rxllm._genai",
    ),
    ("rxllm.models",),  # the data: Chunk, Response, Usage, ToolCall, ToolResult
    ("rxllm.errors",),  # the error tree (an error carries a partial Response)
    ("rxllm.accumulator",),  # chunks -> the response so far
    ("rxllm.limits",),  # usage limits, counted over a loop's or a batch's calls
    ("rxllm.request",),  # one call's validated arguments
    # the provider contract; a call -> an Observable; a call's OpenTelemetry span
    ("rxllm.codec", "rxllm.bridge", "rxllm.telemetry"),
    ("rxllm.llm",),  # LLM.stream -> CallStream
    ("rxllm.providers",),  # codecs and providers (openai, anthropic, local, scripted)
    ("rxllm.ops",),  # operators
    # functions over observables, and terminals
    ("rxllm.tee", "rxllm.race", "rxllm.terminals", "rxllm.batch", "rxllm.fallback"),
    # what users reach from the outside: the package itself, its faces and tools
    (
        "rxllm.registry",
        "rxllm.testing",
        "rxllm.cli",
        "rxllm.__main__",
        "rxllm.web",
        "rxllm.ray",
        "rxllm.notebook",
        "rxllm",
    ),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "rxllm"):
            return level
    if module == "rxllm":
        return len(LAYERS) - 1
    raise AssertionError(
        f"{module} is in no layer of tests/test_layers.py: add it to LAYERS where "
        "docs/architecture.md puts it"
    )


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(module: str) -> set[str]:
    """The rxllm modules `module` imports when it runs (deferred imports included)."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "rxllm")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "rxllm"
        ):
            for alias in node.names:  # `from rxllm import errors` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else str(node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    # a package's own __init__ is imported with any of its modules: not an arrow of its own
    return {name for name in found if not (module.startswith(name + ".") and name != "rxllm")}


GRAPH = {module: _runtime_imports(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_higher_layer(module: str) -> None:
    upward = sorted(dep for dep in GRAPH[module] if _layer(dep) > _layer(module))
    assert not upward, (
        f"{module} (layer {_layer(module)}) imports {upward} from above it: move the shared "
        "piece down, or the importing code up"
    )


def test_there_is_no_import_cycle() -> None:
    done: set[str] = set()
    path: list[str] = []

    def walk(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
        if module in done:
            return
        path.append(module)
        for dep in sorted(GRAPH.get(module, ())):
            walk(dep)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        walk(module)


def test_the_check_sees_an_upward_import() -> None:
    """The walk itself works: models really imports messages, and messages would be above
    it if it were placed there."""
    assert "rxllm.messages" in GRAPH["rxllm.models"]
    assert _layer("rxllm.messages") < _layer("rxllm.models")
    assert "rxllm.models" not in GRAPH["rxllm.messages"]  # only for the type checker
