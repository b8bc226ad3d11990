"""Fallback across providers: OpenAI fails mid-answer, Anthropic continues it.

Shows `rxllm.fallback(*sources)`: the sources are subscribed one at a time, in order, and
only when needed. Two loopback servers stand in for two providers (OpenAI's protocol and
Anthropic's, through the real SDKs):

1. the OpenAI one answers 503 before any chunk: the Anthropic call simply takes over;
2. the OpenAI one drops the connection after a few words: the Anthropic call is asked to
   continue from the text already shown (an assistant prefill), and the reader sees every
   word once — each chunk says which provider served it, usage is summed over both;
3. both fail: the last error is raised, with every attempt's error in `error.attempts`.

The servers' records show what each provider was asked and how much it wrote.

Run:  python examples/fallback.py
"""

from __future__ import annotations

import rxllm
from rxllm import Usage, ops
from rxllm.testing import Script, Server

ANSWER = "Rivers begin as rain, gather in streams, and carry the land to the sea."
QUESTION = "Where do rivers come from?"


def main() -> None:
    words = Script(ANSWER).chunks
    with Server() as openai_server, Server() as anthropic_server:
        primary = rxllm.openai(
            "gpt-4o-mini", base_url=openai_server.url, api_key="test", max_retries=0
        )
        backup = rxllm.anthropic(
            "claude-haiku-4-5", base_url=anthropic_server.url, api_key="test", max_retries=0
        )

        def ask() -> rxllm.Response:
            return rxllm.collect(
                rxllm.fallback(primary.stream(QUESTION), backup.stream(QUESTION)), timeout=30
            )

        print("1. before the first chunk")
        openai_server.push(Script(ANSWER, status=503))
        anthropic_server.push(Script(ANSWER))
        response = ask()
        print(f"   OpenAI answered {openai_server.last.status}; served by {response.provider}")
        print(f"   {response.text!r}")

        print("2. in the middle of the stream")
        openai_server.push(Script(ANSWER, drop_after=5, delay=0.01))
        anthropic_server.push(
            Script(list(words[5:]), delay=0.01, usage=Usage(input_tokens=18, output_tokens=9))
        )
        served: list[tuple[str, str]] = []
        finished: list[ops.Finish] = []
        stream = rxllm.fallback(primary.stream(QUESTION), backup.stream(QUESTION)).pipe(
            ops.on_finish(finished.append)
        )
        for chunk in rxllm.iterate(stream):  # what a UI shows, as it arrives
            if chunk.content:
                served.append((chunk.provider, chunk.content))
                print(f"   {chunk.provider:>9}: {chunk.content!r}")
        text = "".join(piece for _, piece in served)
        print(f"   every word once: {text == ANSWER}")
        print(
            f"   OpenAI wrote {openai_server.last.chunks_written} chunks, then the connection "
            "dropped"
        )
        prefill = anthropic_server.last.body["messages"][-1]
        print(f"   Anthropic was asked to continue after: {prefill['content']!r}")
        usage = finished[0].response.usage
        print(
            f"   usage: {usage.input_tokens} in, {usage.output_tokens} out (summed over the "
            "calls; OpenAI sends usage last, so the broken call reported none)"
        )

        print("3. when every provider fails")
        openai_server.push(Script(ANSWER, status=503))
        anthropic_server.push(Script(ANSWER, status=529))
        try:
            ask()
        except rxllm.LLMError as error:
            print(f"   raised: {type(error).__name__} from {error.provider}")
            tried = ", ".join(f"{type(e).__name__} ({e.provider})" for e in error.attempts)
            print(f"   attempts: {tried}")


if __name__ == "__main__":
    main()
