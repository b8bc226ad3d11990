"""A retry that resumes: the connection drops mid-answer, the reader sees no duplicates.

Shows `ops.retry()` on a provider stream: the loopback server (`rxllm.testing.Server`,
speaking Anthropic's protocol to the real SDK) drops the connection after a few chunks;
`retry` makes the call again with the text already delivered as an assistant prefill, and
splices the continuation on. The reader's text has every word once; the server's record
shows the second request carrying the prefill; usage is summed over both attempts. Without
`retry`, the same failure is a `StreamInterrupted` whose `partial` keeps what arrived.

Run:  python examples/retry_resume.py
"""

from __future__ import annotations

import rxllm
from rxllm import Usage, ops
from rxllm.testing import Script, Server

ANSWER = "Rivers begin as rain, gather in streams, and carry the land to the sea."


def main() -> None:
    words = Script(ANSWER).chunks
    with Server() as server:
        llm = rxllm.anthropic("claude-sonnet-4-5", base_url=server.url, api_key="test")

        server.push(Script(ANSWER, drop_after=5, delay=0.01))
        try:
            rxllm.collect(llm.stream("Where do rivers come from?"))
        except rxllm.StreamInterrupted as error:
            print(f"without retry: {type(error).__name__}, kept {error.partial.text!r}")

        server.push(
            Script(ANSWER, drop_after=5, delay=0.01, usage=Usage(input_tokens=20, output_tokens=5))
        )
        server.push(
            Script(list(words[5:]), delay=0.01, usage=Usage(input_tokens=26, output_tokens=11))
        )
        saved: list[ops.Finish] = []
        stream = llm.stream("Where do rivers come from?").pipe(
            ops.retry(attempts=3, backoff=0.1), ops.on_finish(saved.append)
        )
        print("with retry:    ", end="")
        for chunk in rxllm.iterate(stream):  # what a UI shows, as it arrives
            print(chunk.content, end="", flush=True)
        print()
        response = saved[0].response
        print(f"every word once: {response.text == ANSWER}")
        prefill = server.requests[-1].body["messages"][-1]
        print(f"request {len(server.requests) - 1} continued after: {prefill['content']!r}")
        print(  # the first attempt reported its output tokens only as far as message_start
            f"usage over both attempts: {response.usage.input_tokens} in, "
            f"{response.usage.output_tokens} out"
        )


if __name__ == "__main__":
    main()
