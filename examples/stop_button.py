"""A Stop button: a `Subject` that `take_until` listens to, clicked from another thread.

Shows `ops.take_until(subject)`: the stream ends when the subject emits, from any thread,
even while no chunk is arriving; the call's HTTP response is closed at that moment. And
`ops.on_finish`: what was shown is saved with `outcome="disposed"` — what a chat app keeps
when its user presses Stop. The "user" here is a timer thread that clicks after 0.3 s; the
loopback server (`rxllm.testing.Server`, the real OpenAI SDK talking to it) records that
the client left and that nothing was written after.

Run:  python examples/stop_button.py
"""

from __future__ import annotations

import threading
import time

from reactivex.subject import Subject

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

WORDS = [f"word{i} " for i in range(1000)]


def main() -> None:
    stop_button = Subject()  # a GUI would call stop_button.on_next(...) in its click handler
    saved: list[ops.Finish] = []
    with Server(Script(WORDS, delay=0.02)) as server:
        llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test")
        stream = llm.stream("Tell me a very long story.").pipe(
            ops.on_finish(saved.append),  # above take_until: it sees the stop as "disposed"
            ops.take_until(stop_button),
        )
        clicked_at: list[float] = []

        def user_clicks_stop() -> None:
            clicked_at.append(time.monotonic())
            stop_button.on_next("click")

        threading.Timer(0.3, user_clicks_stop).start()
        shown = 0
        for chunk in rxllm.iterate(stream):
            shown += 1
            print(chunk.content, end="", flush=True)
        record = server.last
        closed = record.wait_closed(2)
        print("\n")
        print(f"stopped by the button: {saved[0].outcome}, {shown} chunks shown")
        print(f"saved text: {saved[0].response.text[:30]!r}...")
        print(f"client closed the connection: {closed}")
        if record.client_closed_at is not None:
            delay_ms = 1000 * (record.client_closed_at - clicked_at[0])
            print(f"server noticed the close {delay_ms:.0f} ms after the click")
        print(
            f"server wrote {record.chunks_written} of {len(WORDS)} chunks, "
            f"{record.chunks_after_close} after the close"
        )


if __name__ == "__main__":
    main()
