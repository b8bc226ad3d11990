"""Quickstart: a reactive pipeline, offline (scripted provider).

Run: python examples/quickstart.py
Swap `rxllm.scripted(...)` for `rxllm.openai("gpt-4o-mini")`, `rxllm.anthropic(...)` or
`rxllm.local()` and nothing else changes.
"""

from __future__ import annotations

from reactivex import operators as rx

import rxllm
from rxllm import ops

llm = rxllm.scripted(
    "Reactive streams make LLM output composable. Stop early, fan out, and materialize "
    "a full response at the end. This sentence is never generated.",
    delay=0.02,
)

response = (
    llm.stream("Explain rxllm in three sentences.")
    .pipe(
        ops.accumulate(),  # a Snapshot per chunk: the response so far
        ops.take_until(lambda s: s.text.count(".") >= 2),  # stop after two sentences:
        rx.do_action(lambda s: print(s.delta.content, end="", flush=True)),
        ops.to_response(),  # the call is cancelled at that moment, and materialized here
    )
    .run()
)
print(f"\n\n{response.chunk_count} chunks, finish_reason={response.finish_reason!r}")
