"""A batch of 1000 prompts with a checkpoint: stop half-way, run again, nothing is redone.

Shows `rxllm.batch`: bounded concurrency, per-item errors as results (one failing prompt
never sinks the run), and a JSONL checkpoint. The first run is interrupted after 400 results
(a crash, a Ctrl-C, a deploy); leaving the `iterate` loop cancels the calls in flight. The
second run with the same checkpoint emits what already succeeded from the file without a
call, and makes only the rest — including the items that failed the first time (here a
scripted rate limit that has cleared by then). Scripted model (`rxllm.scripted`), so it
runs in a few seconds.

Run:  python examples/batch_checkpoint.py [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import rxllm

PROMPTS = [f"Classify ticket #{n}: positive or negative?" for n in range(1000)]


class Model:
    """A scripted classifier; while `limited`, every 50th prompt hits a rate limit."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.limited = True

    def classify(self, prompt: str):
        self.calls[prompt] += 1
        number = int(prompt.split("#")[1].split(":", maxsplit=1)[0])
        if number % 50 == 7 and self.limited:
            limited = rxllm.scripted("", delay=0.005, error=rxllm.RateLimitError("429: slow down"))
            return limited.stream(prompt)
        label = "positive" if number % 3 else "negative"
        usage = rxllm.Usage(input_tokens=12, output_tokens=1)
        return rxllm.scripted([label], delay=0.005, usage=usage).stream(prompt)


def settled_successes(checkpoint: Path) -> int:
    """The items the checkpoint records as done, once it stopped changing: a call that was
    finishing on its own thread at the moment of the stop still records its result."""
    seen = -1
    while True:
        lines = checkpoint.read_text().splitlines()
        if len(lines) == seen:
            return sum('"response"' in line for line in lines)
        seen = len(lines)
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    checkpoint = parser.parse_args().checkpoint or Path(tempfile.mkdtemp()) / "tickets.jsonl"
    checkpoint.unlink(missing_ok=True)
    model = Model()

    def run():  # the same batch, the same checkpoint
        return rxllm.batch(
            PROMPTS, model.classify, concurrency=16, checkpoint=checkpoint, progress=False
        )

    started = time.monotonic()
    results = rxllm.iterate(run())
    failed = 0
    for done, (_, outcome) in enumerate(results, start=1):
        failed += isinstance(outcome, rxllm.LLMError)
        if done == 400:
            break  # the first run dies here
    results.close()  # cancels the calls in flight
    succeeded = settled_successes(checkpoint)
    first_calls = sum(model.calls.values())
    print(
        f"first run: stopped after 400 results ({failed} of them errors); {first_calls} calls "
        f"were made, {succeeded} items succeeded and are in the checkpoint"
    )

    model.limited = False  # the rate limit has cleared by the second run
    second = dict(rxllm.iterate(run()))
    second_calls = sum(model.calls.values()) - first_calls
    labels = Counter(
        r.text if isinstance(r, rxllm.Response) else type(r).__name__ for r in second.values()
    )
    print(
        f"second run: {len(second)} results, {second_calls} calls made "
        f"(= {len(PROMPTS)} prompts - {succeeded} done: {second_calls == len(PROMPTS) - succeeded})"
    )
    print(f"labels: {dict(sorted(labels.items()))}")
    repeated = sum(n > 1 for n in model.calls.values())
    print(f"prompts asked in both runs: {repeated} (failed, or in flight at the stop)")
    print(f"{time.monotonic() - started:.1f} s in all; checkpoint: {checkpoint}")


if __name__ == "__main__":
    main()
