"""Hedged calls: ask two models at once, keep the first that answers, cancel the other.

Shows `rxllm.race(*sources)`: both calls start together; the first to produce *content*
(not just connect) wins, and the other is cancelled at that moment — its HTTP response is
closed. Tail latency drops to the faster of the two. Two loopback servers stand in for two
providers, one speaking OpenAI's protocol and one Anthropic's, through the real SDKs; the
OpenAI one is slow to start this time. Their records show both requests arrived and the
loser's connection was closed before it sent anything.

Run:  python examples/hedged_race.py
"""

from __future__ import annotations

import time

import rxllm
from rxllm.testing import Script, Server


def main() -> None:
    with (
        Server(Script("Paris, from the slow one.", first_delay=3.0)) as slow_server,
        Server(Script("Paris.", first_delay=0.5)) as fast_server,
    ):
        openai_model = rxllm.openai("gpt-4o-mini", base_url=slow_server.url, api_key="test")
        anthropic_model = rxllm.anthropic(
            "claude-haiku-4-5", base_url=fast_server.url, api_key="test"
        )
        question = "What is the capital of France? One word."
        started = time.monotonic()
        response = rxllm.collect(
            rxllm.race(openai_model.stream(question), anthropic_model.stream(question)),
            timeout=10,
        )
        elapsed = time.monotonic() - started
        print(f"winner: {response.provider} ({response.text!r}) after {elapsed:.1f} s")
        if not slow_server.requests:  # possible on a very slow machine: nothing was sent
            print("loser: cancelled before its request was sent, chunks it wrote: 0")
            return
        loser = slow_server.last
        print(
            f"loser: request received, closed by the client: {loser.wait_closed(2)}, "
            f"chunks it wrote: {loser.chunks_written}"
        )


if __name__ == "__main__":
    main()
