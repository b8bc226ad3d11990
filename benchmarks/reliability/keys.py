"""Secrets: a key given any way never shows in an error, a repr, a log record or a partial.

Each case gives rxllm a fresh key one way (`api_key=`, an environment variable, a client's
key, auth token or default header, a model string's provider variable); the loopback
server then *echoes that key* — in a 401's error body, in a 500's HTML page, in an error
event mid-stream, in a malformed event, in an event of the wrong shape — and everything a
user could print or log is searched for it: `str`/`repr` of the error and of every
exception chained to it (the whole formatted traceback), the provider's error object and
event bytes kept on it (`body`, `event`), the partial `Response` (its repr, JSON and
`raw`), `repr` of the `LLM` and of the call, and every log record of the `rxllm`, `openai`,
`anthropic`, `httpx2`/`httpcore2` (and `httpx`/`httpcore`) loggers at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import secrets
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai

import rxllm
from benchmarks.reliability.common import Section, settle_async, settle_sync
from rxllm.testing import Script, Server
from rxllm.testing._encode import error_response

__all__ = ["run"]

_LOGGERS = ("rxllm", "openai", "anthropic", "httpx", "httpcore", "httpx2", "httpcore2")


@dataclass(frozen=True)
class Case:
    """One way of giving the key: the protocol spoken and how the `LLM` is made."""

    name: str
    protocol: str
    make: Callable[[str, str], rxllm.LLM]  # (url, key) -> LLM
    env: str | None = None  # the variable the key is put in, if any
    prefix: str = ""  # the key's first characters ("sk-": shaped like a key)


def _chat(url: str, key: str, **kw: Any) -> rxllm.LLM:
    return rxllm.openai("test-model", base_url=url, max_retries=0, **kw)


def _claude(url: str, key: str, **kw: Any) -> rxllm.LLM:
    return rxllm.anthropic("test-model", base_url=url, max_retries=0, **kw)


CASES: tuple[Case, ...] = (
    Case("openai api_key= (sk- shaped)", "chat", lambda u, k: _chat(u, k, api_key=k), prefix="sk-"),
    Case("openai api_key=", "chat", lambda u, k: _chat(u, k, api_key=k)),
    Case("OPENAI_API_KEY", "chat", _chat, env="OPENAI_API_KEY"),
    Case(
        "openai client=OpenAI(api_key=)",
        "chat",
        lambda u, k: rxllm.openai("m", client=openai.OpenAI(api_key=k, base_url=u, max_retries=0)),
    ),
    Case(
        "openai client default_headers api-key",
        "chat",
        lambda u, k: rxllm.openai(
            "m",
            client=openai.OpenAI(
                api_key="placeholder", base_url=u, max_retries=0, default_headers={"api-key": k}
            ),
        ),
    ),
    Case(
        "responses api_key=",
        "responses",
        lambda u, k: rxllm.openai("m", api="responses", base_url=u, api_key=k, max_retries=0),
    ),
    *(  # model strings come with the provider registry (another branch)
        [
            Case(
                "rxllm.model('groq:...'), GROQ_API_KEY",
                "chat",
                lambda u, k: rxllm.model("groq:m", base_url=u, max_retries=0),  # type: ignore[attr-defined]
                env="GROQ_API_KEY",
            )
        ]
        if hasattr(rxllm, "model")
        else []
    ),
    Case("anthropic api_key=", "anthropic", lambda u, k: _claude(u, k, api_key=k)),
    Case("ANTHROPIC_API_KEY", "anthropic", _claude, env="ANTHROPIC_API_KEY"),
    Case("ANTHROPIC_AUTH_TOKEN", "anthropic", _claude, env="ANTHROPIC_AUTH_TOKEN"),
    Case(
        "anthropic client=Anthropic(auth_token=)",
        "anthropic",
        lambda u, k: rxllm.anthropic(
            "m", client=anthropic.Anthropic(auth_token=k, base_url=u, max_retries=0)
        ),
    ),
    Case(
        "anthropic client default_headers x-api-key",
        "anthropic",
        lambda u, k: rxllm.anthropic(
            "m",
            client=anthropic.Anthropic(
                api_key=None, base_url=u, max_retries=0, default_headers={"x-api-key": k}
            ),
        ),
    ),
)

_WIRE = {"chat": "openai", "responses": "openai-responses", "anthropic": "anthropic"}


def _faults(protocol: str, key: str) -> dict[str, Script]:
    """Scripts that echo `key` back, by name."""
    said = f"Incorrect API key provided: {key}. Your key {key} is not valid."
    kind = "authentication_error" if protocol == "anthropic" else "invalid_request_error"
    return {
        "401 body": Script(
            status=401,
            error_body=error_response(_WIRE[protocol], kind, said, "invalid_api_key"),  # type: ignore[arg-type]
        ),
        "500 page": Script(
            status=500,
            headers={"content-type": "text/html"},
            error_body=f"<html><body>upstream saw Authorization: {key} ({key})</body></html>",
        ),
        "error event": Script(["Hel", "lo"], error_event={"type": "server_error", "message": said}),
        "malformed": Script(raw_events=f'data: {{"echo": "{key}" oops\n\n'),
        "wrong shape": Script(
            raw_events=f'event: message_start\ndata: {{"type":"message_start","message":"{key}",'
            f'"choices":"{key}","delta":"{key}","item":"{key}","response":7}}\n\n'
        ),
        "drop": Script(["Hel", "lo"], drop_after=1),
    }


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _capture_logs() -> Iterator[_Records]:
    handler = _Records()
    saved = {name: logging.getLogger(name).level for name in _LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _environment(name: str | None, value: str) -> Iterator[None]:
    names = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GROQ_API_KEY")
    saved = {n: os.environ.pop(n, None) for n in names}
    if name is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        for n in names:
            os.environ.pop(n, None)
            if saved[n] is not None:
                os.environ[n] = saved[n]  # type: ignore[assignment]


def _places(error: BaseException | None, llm: rxllm.LLM, stream: Any) -> dict[str, str]:
    """Everything a user could print, by where it comes from."""
    found = {"repr of the LLM and the call": f"{llm!r} {llm} {stream!r}"}
    if error is None:
        return found
    found["message, repr, traceback"] = "".join(traceback.format_exception(error))
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        for name in ("message", "body", "event", "attempts"):
            texts.append(repr(getattr(current, name, None)))
        current = current.__cause__ or current.__context__
    found["the error's attributes (body, event) and its causes'"] = "\n".join(texts)
    partial = getattr(error, "partial", None)
    if partial is not None:
        raw = ""
        with contextlib.suppress(Exception):
            raw = repr(partial.raw)
        found["partial (repr, JSON, raw)"] = f"{partial!r} {partial.model_dump_json()} {raw}"
    return found


def _tracing_present() -> bool:
    if importlib.util.find_spec("opentelemetry") is None:
        return False
    root = Path(rxllm.__file__).parent
    return any("opentelemetry" in p.read_text() for p in root.rglob("*.py"))


def run(*, small: bool) -> Section:
    """Every case x every echoing fault, sync and asyncio."""
    section = Section("secrets", "Secrets")
    leaks: dict[tuple[str, str], list[str]] = {}
    checked = 0
    with Server() as server, _capture_logs() as logs:
        for case in CASES:
            for mode in ("sync", "asyncio"):
                # opaque unless the case says: only rxllm knowing the key can hide it
                key = (case.prefix or "rx") + secrets.token_hex(16)
                with _environment(case.env, key):
                    for fault, script in _faults(case.protocol, key).items():
                        logs.lines.clear()
                        server.push(script)
                        llm = case.make(server.url, key)
                        stream = llm.stream("hi")
                        if mode == "sync":
                            settled = settle_sync(stream, 10)
                        else:
                            settled = asyncio.run(settle_async(stream, 10))
                        checked += 1
                        places = _places(settled.error, llm, stream)
                        places["log records"] = "\n".join(logs.lines)
                        for where, text in places.items():
                            if key in text:
                                leaks.setdefault((case.name, where), []).append(f"{mode} {fault}")
                        sent = server.last.headers
                        section.check(
                            any(key in v for v in sent.values()),
                            f"{case.name}: the key was not sent at all (the case tests nothing)",
                        )
    for (case_name, where), faults in leaks.items():
        section.problems.append(f"{case_name}: the key is in {where} ({', '.join(faults)})")
    tracing = _tracing_present()
    section.figures.update(calls=checked, leaks=len(leaks))
    section.text += [
        f"{len(CASES)} ways of giving a key x {len(_faults('chat', 'k'))} faults that echo it "
        f"(a 401's error body, a 500's HTML page, an error event, a malformed event, an event "
        f"of the wrong shape, and a dropped connection) x sync and asyncio: {checked} calls, "
        "each with a fresh key, searched in the error's message, repr and whole formatted "
        "traceback (every chained exception), the error's `body` / `event` / `attempts` and "
        "its causes', the partial response (repr, JSON, `raw`), the `repr` of the `LLM` and "
        "of the call, and every log record of the `rxllm`, `openai`, `anthropic`, `httpx2`, "
        "`httpcore2`, `httpx`, `httpcore` loggers at DEBUG.",
        "",
        "| way the key is given | found in |",
        "| --- | --- |",
    ]
    for case in CASES:
        where = sorted({w for (c, w) in leaks if c == case.name})
        section.text.append(
            f"| {case.name} | {'**' + ', '.join(where) + '**' if where else 'nowhere'} |"
        )
    section.text += [
        "",
        (
            "Span attributes: rxllm in this tree has OpenTelemetry spans, but this section "
            "does not search them yet."
            if tracing
            else "Span attributes: **not checked** — rxllm in this tree records no "
            "OpenTelemetry spans yet (another branch adds them)."
        ),
        "",
    ]
    return section
