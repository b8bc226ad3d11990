"""Shared fixtures: a loopback server per test, and clean API-key environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def server() -> Iterator[object]:
    """A fresh `rxllm.testing.Server` on 127.0.0.1 for one test."""
    from rxllm.testing import Server

    with Server() as running:
        yield running


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider API key in the environment."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
