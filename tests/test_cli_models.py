"""The command line takes the same model strings as `rxllm.model` (`--model groq:...`),
through `cli.llm_from_string`; run in-process against the loopback server."""

from __future__ import annotations

import json

import pytest

from rxllm import cli
from rxllm.cli import main
from rxllm.testing import Script, Server


@pytest.fixture(autouse=True)
def no_service_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GROQ_API_KEY", "OPENAI_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_a_model_string_streams_from_its_service(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.push(Script("Hello from the terminal."))
    code = main(["--model", "ollama:qwen2.5:0.5b", "--base-url", server.url, "--json", "hi"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["text"], data["provider"]) == ("Hello from the terminal.", "ollama")
    assert server.last.body["model"] == "qwen2.5:0.5b"


def test_a_services_missing_key_is_named(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model", "groq:llama-3.3-70b", "--base-url", server.url, "hi"]) == 1
    error = capsys.readouterr().err
    assert "GROQ_API_KEY" in error and "OPENAI_API_KEY" not in error
    assert server.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "vllm:m", "hi"], "base_url"),
        (["--model", "grok:llama", "hi"], "unknown provider 'grok'"),
        (["--provider", "openai", "--model", "groq:m", "hi"], "disagree"),
        (["demo", "--model", "groq:m"], "local model"),
    ],
)
def test_what_cannot_work_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_helper_turns_errors_into_usage_errors() -> None:
    assert cli.llm_from_string("llamacpp:smollm2", base_url="http://127.0.0.1:1/v1").provider == (
        "llamacpp"
    )
    with pytest.raises(cli.UsageError, match="known are"):
        cli.llm_from_string("nope:x")
