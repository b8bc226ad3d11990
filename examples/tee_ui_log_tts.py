"""One call, three consumers: the UI, a log, and text-to-speech by sentence.

Shows `rxllm.tee(source, 3)`: three branches backed by ONE provider call. The UI branch
prints the text evenly paced (`ops.smooth`), the speech branch hands whole sentences to a
speaker as soon as each is complete (`ops.sentences`; here a stand-in that prints them —
plug in your TTS engine), and the log branch writes one JSON line per answer with its usage
(`ops.on_finish`). The loopback server (`rxllm.testing.Server`) confirms that only one
request was made.

Run:  python examples/tee_ui_log_tts.py            (offline: loopback server, real OpenAI SDK)
      python examples/tee_ui_log_tts.py --local    (the embedded local model)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

ANSWER = (
    "Reactive streams let one answer feed many places. The screen shows words as they come. "
    "A speaker reads whole sentences. A log keeps the final answer and its cost."
)

log = logging.getLogger("chat.log")


def speak(sentence: str) -> None:
    """Stand-in for a TTS engine: it needs whole sentences to get the intonation right."""
    print(f"\n  [speaking] {sentence}", flush=True)


def write_log(finish: ops.Finish) -> None:
    usage = finish.response.usage
    log.info(
        json.dumps(
            {
                "outcome": finish.outcome,
                "chars": len(finish.response.text),
                "output_tokens": usage.output_tokens if usage else None,
            }
        )
    )


def run(llm: rxllm.LLM) -> None:
    ui, speech, log_branch = rxllm.tee(llm.stream("How do reactive streams help a chat app?"), 3)
    done = threading.Event()
    ui.pipe(ops.smooth(delay=0.01), ops.text()).subscribe(
        lambda piece: print(piece, end="", flush=True), on_completed=done.set
    )
    speech.pipe(ops.sentences()).subscribe(speak)
    rxllm.collect(log_branch.pipe(ops.on_finish(write_log)))  # the last subscription starts it
    done.wait(30)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="use rxllm.local()")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("\n  [log] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    if parser.parse_args().local:
        run(rxllm.local(temperature=0, max_tokens=80))
        return
    with Server(Script(ANSWER, delay=0.01)) as server:
        run(rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test"))
        print(f"requests made: {len(server.requests)}")


if __name__ == "__main__":
    main()
