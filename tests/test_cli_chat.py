"""`rxllm chat`: a conversation in the terminal, against the loopback server.

The interrupt tests run the command as a user does, in a pseudo-terminal (pexpect): the
Ctrl-C typed there is the terminal's own SIGINT to the process. What the server records
proves the call was really cancelled (the client closed the stream mid-answer), and the
next request proves the conversation, partial answer included, was kept.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator

import pexpect
import pytest

from rxllm.cli import chat_llm, main
from rxllm.testing import Script, Server

pytestmark = pytest.mark.timeout(180)  # a hang fails instead

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
WORDS = [f"word{i} " for i in range(400)]
STARTUP = 90  # seconds for Python and the SDKs to start on a loaded machine: only a limit


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update(PYTHONUNBUFFERED="1", TERM="dumb", **extra)
    return env


@pytest.fixture
def chat(server: Server) -> Iterator[pexpect.spawn]:
    """`rxllm chat openai:m` in a terminal, talking to the loopback server."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "rxllm", "chat", "openai:m", "--base-url", server.url],
        env=_env(OPENAI_API_KEY="sk-chat"),
        encoding="utf-8",
        timeout=30,
    )
    try:
        yield child
    finally:
        child.close(force=True)


class TestInTheTerminal:
    """Ctrl-C stops an answer and keeps the conversation; at the prompt it leaves."""

    def test_ctrl_c_stops_the_model_and_keeps_the_partial_answer(
        self, server: Server, chat: pexpect.spawn
    ) -> None:
        server.push(Script(WORDS, delay=0.02))  # 8 s of answer, if nobody stops it
        server.push(Script("Second answer."))
        chat.expect("» ", timeout=STARTUP)
        chat.sendline("Tell me a long story.")
        chat.expect("word5 ")  # the answer is streaming
        chat.sendintr()  # Ctrl-C, as typed
        chat.expect(r"stopped \(the call was cancelled\)")
        first = server.requests[0]
        assert first.wait_closed(10)  # the client left mid-stream...
        assert first.chunks_written < len(WORDS)  # ...and the server stopped writing
        chat.expect("» ")  # the chat goes on
        chat.sendline("Go on.")
        chat.expect("Second answer.")
        chat.expect("» ")
        chat.sendeof()  # Ctrl-D leaves
        chat.expect(pexpect.EOF)
        chat.close()
        assert chat.exitstatus == 0
        messages = server.requests[1].body["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[0]["content"] == "Tell me a long story."
        kept = messages[1]["content"]
        assert kept.startswith("word0 word1 word2 word3 word4 word5 ")
        assert "".join(WORDS).startswith(kept) and len(kept) < len("".join(WORDS))
        assert messages[2]["content"] == "Go on."

    def test_ctrl_c_at_the_prompt_leaves(self, server: Server, chat: pexpect.spawn) -> None:
        server.push(Script("Hello."))
        chat.expect("» ", timeout=STARTUP)
        chat.sendline("Hi")
        chat.expect("Hello.")
        chat.expect(r"\[\d+ tokens")  # the status line: stderr is the terminal
        chat.expect("» ")
        chat.sendintr()
        chat.expect(pexpect.EOF)
        chat.close()
        assert chat.exitstatus == 0
        assert len(server.requests) == 1


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-chat")


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


class TestFromAPipe:
    """Piped lines are the user's turns; each call carries the conversation so far."""

    def test_every_turn_sends_the_history(
        self,
        server: Server,
        keys: None,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        server.push(Script("First answer."))
        server.push(Script("Second answer."))
        _stdin(monkeypatch, "One?\n\nTwo?\n")  # the blank line is not a turn
        code = main(["chat", "openai:m", "--base-url", server.url, "--system", "Be brief."])
        assert code == 0
        out, err = capsys.readouterr()
        assert out == "First answer.\nSecond answer.\n"
        assert err == ""  # no status line: stderr is not a terminal
        assert len(server.requests) == 2
        assert server.requests[1].body["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "One?"},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": "Two?"},
        ]

    def test_a_failed_answer_says_so_and_the_chat_goes_on(
        self,
        server: Server,
        keys: None,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        server.push(Script("", status=400))
        server.push(Script("Fine now."))
        _stdin(monkeypatch, "One?\nTwo?\n")
        assert main(["chat", "openai:m", "--base-url", server.url, "--status"]) == 0
        out, err = capsys.readouterr()
        assert out == "Fine now.\n"
        assert "BadRequestError" in err
        assert "not kept" in err
        assert "finish stop" in err  # --status: the second answer's line
        # the failed question was not kept: the second call has no dangling user turn
        assert server.requests[1].body["messages"] == [{"role": "user", "content": "Two?"}]

    def test_a_missing_key_ends_the_chat(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for name in KEYS:
            monkeypatch.delenv(name, raising=False)
        _stdin(monkeypatch, "One?\nTwo?\n")
        assert main(["chat", "openai:gpt-4o-mini"]) == 1
        err = capsys.readouterr().err
        assert "AuthenticationError" in err and "OPENAI_API_KEY" in err

    def test_a_model_it_does_not_know_is_a_usage_error(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["chat", "cohere:command-r"]) == 2
        err = capsys.readouterr().err
        assert "cohere" in err and "openai" in err  # what is known
        assert "Traceback" not in err

    def test_chat_llm_reads_model_strings(self) -> None:
        assert chat_llm("openai:gpt-4o-mini", base_url="http://127.0.0.1:9/v1").provider == "openai"
        assert chat_llm("anthropic:claude-haiku-4-5").model == "claude-haiku-4-5"
        with pytest.raises(ValueError, match=r"base_url|base-url"):
            chat_llm("local", base_url="http://127.0.0.1:9/v1")
