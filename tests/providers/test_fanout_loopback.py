"""tee and race over real SDK calls: one request for n branches; the loser is cancelled."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from reactivex import operators as rx

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

KEY = "sk-fanout"


def llm(provider: str, server: Server) -> rxllm.LLM:
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    return factory("m", base_url=server.url, api_key=KEY, max_retries=0)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_tee_makes_one_request_and_every_branch_sees_everything(
    server: Server, provider: str
) -> None:
    server.push(Script("One. Two. Three.", delay=0.005))
    chunks_branch, text_branch, sentence_branch = rxllm.tee(llm(provider, server).stream("x"), 3)
    responses: list[rxllm.Response] = []
    texts: list[str] = []
    sentences: list[str] = []
    completed: list[str] = []
    all_done = threading.Event()

    def finished(name: str) -> None:
        completed.append(name)
        if len(completed) == 3:
            all_done.set()

    chunks_branch.pipe(ops.to_response()).subscribe(
        responses.append, on_completed=lambda: finished("response")
    )
    text_branch.pipe(ops.text()).subscribe(texts.append, on_completed=lambda: finished("text"))
    sentence_branch.pipe(ops.sentences()).subscribe(
        sentences.append, on_completed=lambda: finished("sentences")
    )
    assert all_done.wait(10)
    assert len(server.requests) == 1
    assert responses[0].text == "".join(texts) == "One. Two. Three."
    assert sentences == ["One.", "Two.", "Three."]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_tee_cancels_only_when_every_branch_has_disposed(server: Server, provider: str) -> None:
    server.push(Script([f"w{i} " for i in range(500)], delay=0.01))
    first, second = rxllm.tee(llm(provider, server).stream("x"), 2)
    a = first.subscribe(lambda _: None)
    b = second.subscribe(lambda _: None)
    server.wait_for_request(timeout=5)
    time.sleep(0.05)
    a.dispose()
    time.sleep(0.1)
    assert server.last.client_closed_at is None  # one branch still listens
    b.dispose()
    stopped = time.monotonic()
    assert server.last.wait_closed(2)
    assert server.last.client_closed_at is not None
    assert server.last.client_closed_at - stopped < 0.05


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_race_keeps_the_first_to_produce_content_and_cancels_the_other(mode: str) -> None:
    with Server() as slow_server, Server() as fast_server:
        slow_server.push(Script(["slow"] * 50, first_delay=2))
        # The winner speaks after 0.3 s, so the loser's request has surely been sent: a call
        # cancelled before its request went out never reaches the server at all.
        fast_server.push(Script(["fast ", "answer"], first_delay=0.3, delay=0.01))
        hedged = rxllm.race(
            llm("openai", slow_server).stream("x"), llm("anthropic", fast_server).stream("x")
        )
        started = time.monotonic()
        if mode == "sync":
            response = rxllm.collect(hedged, timeout=10)
        else:
            response = asyncio.run(rxllm.acollect(hedged, timeout=10))
        assert response.text == "fast answer"
        assert response.provider == "anthropic"
        assert time.monotonic() - started < 1.5
        loser = slow_server.wait_for_request(timeout=1)
        assert loser.wait_closed(2)
        assert loser.chunks_written == 0
        assert loser.client_closed_at is not None
        assert loser.client_closed_at - started < 1.0  # cancelled when the winner spoke


def test_race_on_one_server_keeps_the_fast_call_and_closes_the_slow_one(server: Server) -> None:
    server.push(Script(["a"], first_delay=3))
    server.push(Script(["b ", "c ", "d "], delay=0.01))
    slow = llm("openai", server).stream("x")
    fast = llm("openai", server).stream("x")
    got = rxllm.race(slow, fast).pipe(ops.text(), rx.to_list()).run()
    assert got == ["b ", "c ", "d "]
    first = server.requests[0]
    assert first.wait_closed(2) and first.chunks_written == 0
