"""rxllm's performance harness (issue 5): not unit tests, a program that measures.

    python -m benchmarks            # full: the issue's sizes, 5 repetitions, ~50 minutes
    python -m benchmarks --quick    # smaller sizes, fewer repetitions, about 2 minutes
    python -m benchmarks --only 1,3 # some sections only (1-6, 5a, 5b)

It starts a loopback SSE server in a child process (`benchmarks.server`), measures rxllm
against the bare OpenAI and Anthropic SDKs in one run, prints each row as it is known and
writes `docs/performance.md` with the table and `docs/performance.png` (needs the `bench`
extra, matplotlib).
"""
