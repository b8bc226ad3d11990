"""The asyncio tests of the HTTP providers run on both HTTP transports of the async clients
rxllm makes: httpx2 (the SDKs' default) and aiohttp (`rxllm[aiohttp]`).

A test that runs an asyncio call (its source names asyncio, `acollect`, `aiterate` or an
`"async"` mode), or takes the `transport` fixture, runs once per transport; its `"sync"`
variants run once (the sync clients always send with httpx2).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from rxllm.providers import sdk_provider

TRANSPORTS = ("httpx", "aiohttp")
_ASYNCIO = ("asyncio", "acollect", "aiterate", '"async"')


def _runs_asyncio(function: object) -> bool:
    try:
        source = inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return any(word in source for word in _ASYNCIO)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wants = "transport" in inspect.signature(metafunc.function).parameters
    if wants or _runs_asyncio(metafunc.function):
        metafunc.parametrize("transport", TRANSPORTS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("transport") == "aiohttp" and params.get("mode") == "sync":
            dropped.append(item)  # the same test as its httpx variant
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The transport of the async clients rxllm makes in this test (httpx2 in the tests
    that make no asyncio call)."""
    name: str = getattr(request, "param", "httpx")
    if name == "aiohttp":
        pytest.importorskip("aiohttp")
    monkeypatch.setattr(sdk_provider, "_default_transport", name)
    yield name
