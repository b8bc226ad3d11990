"""The web chat example's server: its routes, its answers to bad requests, its --model flag."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from starlette.testclient import TestClient

import rxllm
from rxllm.testing import Script, Server

from .conftest import ui_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_chat", ROOT / "examples/web_chat/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_routes(example: ModuleType) -> None:
    client = TestClient(example.create_app(rxllm.scripted("Hi there.")))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="stop"' in page.text and 'id="tokens"' in page.text
    assert client.get("/api/info").json() == {"provider": "scripted", "model": "scripted"}
    body = {"messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]}
    answer = client.post("/api/chat", json=body)
    deltas = [e["delta"] for e in ui_events(answer.content) if e["type"] == "text-delta"]
    assert "".join(deltas) == "Hi there."


def test_system_prompt_goes_with_every_call(example: ModuleType, server: Server) -> None:
    server.push(Script("Bonjour."))
    llm = rxllm.openai("gpt-test", base_url=server.url, api_key="x", max_retries=0)
    client = TestClient(example.create_app(llm, system="Answer in French."))
    body = {"messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]}
    assert client.post("/api/chat", json=body).status_code == 200
    assert server.last.body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
    ]


@pytest.mark.parametrize("body", [b"not json", b'{"messages": "hi"}', b"[1]"])
def test_bad_request_is_a_400_that_says_why(example: ModuleType, body: bytes) -> None:
    client = TestClient(example.create_app(rxllm.scripted("Hi.")))
    answer = client.post("/api/chat", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]


def test_model_flag(example: ModuleType) -> None:
    assert example.model_from("scripted").provider == "scripted"
    llm = example.model_from("openai:qwen2.5", base_url="http://127.0.0.1:9/v1")
    assert (llm.provider, llm.model) == ("openai", "qwen2.5")
    if not hasattr(rxllm, "model"):
        assert example.model_from("anthropic:claude-x").provider == "anthropic"
        with pytest.raises(SystemExit, match="--model 'bogus'"):
            example.model_from("bogus")
