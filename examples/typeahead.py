"""Type-ahead where the latest prompt wins: stale calls are cancelled, not just ignored.

Shows RxPY's `switch_map` on LLM calls: every keystroke produces a new prompt, and
`switch_map` subscribes the newest prompt's call and disposes the previous one — which, with
rxllm, closes that call's HTTP response, so the provider stops generating a suggestion
nobody will see. The loopback server (`rxllm.testing.Server`, speaking OpenAI's protocol to
the real SDK) records each request: the stale ones were closed by the client after a few
chunks, only the last ran to the end.

Run:  python examples/typeahead.py
"""

from __future__ import annotations

import threading
import time

from reactivex import operators as rx
from reactivex.subject import Subject

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

SUGGESTION = [f"suggestion{i} " for i in range(20)]


def main() -> None:
    keystrokes: Subject[str] = Subject()
    with Server(Script(SUGGESTION, delay=0.03)) as server:
        llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test")
        shown: list[tuple[str, str]] = []
        done = threading.Event()

        def suggest(prompt: str):  # the call for one prompt, its answer tagged with it
            return llm.stream(f"Complete: {prompt}").pipe(
                ops.accumulate(), rx.map(lambda snapshot: (prompt, snapshot.text))
            )

        keystrokes.pipe(rx.switch_map(suggest)).subscribe(
            on_next=shown.append, on_error=print, on_completed=done.set
        )
        typed = ""
        for key in "rxllm":  # the user types, a key every 0.15 s
            typed += key
            keystrokes.on_next(typed)
            time.sleep(0.15)
        keystrokes.on_completed()
        done.wait(10)

        print(f"the screen ends with the suggestion for {shown[-1][0]!r}: {shown[-1][1][:40]!r}...")
        print("what the server saw:")
        for request in server.requests:
            request.wait_done(2)
            prompt = request.body["messages"][-1]["content"]
            state = "closed by the client" if request.client_closed_at else "ran to the end"
            print(
                f"  {prompt!r:20} {state:22} after {request.chunks_written:2} of "
                f"{len(SUGGESTION)} chunks ({request.chunks_after_close} after the close)"
            )


if __name__ == "__main__":
    main()
