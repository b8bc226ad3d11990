"""Stop on a predicate: end the answer the moment it says what you wanted.

Shows `ops.accumulate()` + `ops.take_until(predicate)`: the predicate sees the text so far,
and when it matches, the call is cancelled — its HTTP response closed, so the provider stops
generating and you stop paying. Here the model starts writing code although we asked for a
one-line answer: we stop at the opening fence. The loopback server (`rxllm.testing.Server`,
speaking OpenAI's protocol to the real SDK) shows how far it got before the client left.

Run:  python examples/stop_on_predicate.py            (offline: loopback server)
      python examples/stop_on_predicate.py --local    (the embedded local model; stops after
                                                       the first sentence)
"""

from __future__ import annotations

import argparse

from reactivex import operators as rx

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

ANSWER = (
    "Use a list comprehension: it is the idiomatic way. For example:\n\n```python\n"
    + "".join(f"squares_{i} = [x * x for x in range({i})]\n" for i in range(60))
    + "```\n"
)


def on_loopback() -> None:
    with Server(Script(ANSWER, delay=0.01)) as server:
        llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test")
        response = rxllm.collect(
            llm.stream("How do I square a list in Python? One line, no code.").pipe(
                ops.accumulate(),
                rx.do_action(lambda s: print(s.delta.content, end="", flush=True)),
                ops.take_until(lambda s: "```" in s.text),  # the model started a code block
            )
        )
        record = server.last
        print(f"\n\nstopped at the code fence: finish_reason={response.finish_reason!r}")
        print(f"client closed the connection: {record.wait_closed(2)}")
        print(
            f"server wrote {record.chunks_written} of {len(Script(ANSWER).chunks)} chunks, "
            f"{record.chunks_after_close} after the close"
        )


def on_local() -> None:
    llm = rxllm.local(temperature=0, max_tokens=200)
    response = rxllm.collect(
        llm.stream("Describe the sea in three sentences.").pipe(
            ops.accumulate(),
            rx.do_action(lambda s: print(s.delta.content, end="", flush=True)),
            ops.take_until(lambda s: any(mark in s.text for mark in ".!?")),
        )
    )
    print(f"\n\nstopped after the first sentence: finish_reason={response.finish_reason!r}")
    print(f"{response.chunk_count} tokens generated (max_tokens was 200)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="use rxllm.local()")
    if parser.parse_args().local:
        on_local()
    else:
        on_loopback()
