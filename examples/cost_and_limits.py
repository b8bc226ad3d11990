"""Cost and usage limits: what a call cost, and a budget a tool loop or a batch cannot exceed.

Shows `Response.cost` (US dollars as a `Decimal`, priced by the `genai-prices` data for
the model the provider reported, cached tokens at their own price), and
`rxllm.UsageLimits`:

1. one call: its usage (cache reads included) and its cost;
2. a tool loop whose model keeps asking for the same tool: `UsageLimits(requests=3)`
   stops it with `UsageLimitExceeded` instead of looping forever — the loopback server
   received three requests, no fourth;
3. a batch of 10 prompts with a cost budget of $0.005: the call that crosses it is stopped,
   no call starts after it, and those items come out as `(prompt, UsageLimitExceeded)`
   results (the batch itself goes on to the end).

A loopback server speaking OpenAI's protocol stands in for the provider (through the real
SDK), reporting the usage a real `gpt-4o-mini` call would.

Run:  python examples/cost_and_limits.py
"""

from __future__ import annotations

from decimal import Decimal

import rxllm
from rxllm import Chunk, ToolCallDelta, Usage, ops
from rxllm.testing import Script, Server

MODEL = "gpt-4o-mini-2024-07-18"  # the model name the provider reports: what is priced


def lookup(query: str) -> str:
    """Look something up."""
    return "nothing found"


def asks_for_lookup() -> Script:
    call = ToolCallDelta(index=0, id="call_1", name="lookup", arguments='{"query": "x"}')
    return Script(
        [Chunk(tool_calls=(call,))], model=MODEL, usage=Usage(input_tokens=900, output_tokens=20)
    )


def model(server: Server) -> rxllm.LLM:
    return rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test", max_retries=0)


def one_call() -> None:
    print("1. one call")
    usage = Usage(input_tokens=12_000, cache_read_tokens=10_000, output_tokens=400)
    with Server(Script("A short answer.", model=MODEL, usage=usage)) as server:
        response = rxllm.collect(model(server).stream("Summarize the attached report."))
    usage = response.usage
    print(
        f"   {usage.input_tokens} input tokens ({usage.cache_read_tokens} read from the "
        f"cache), {usage.output_tokens} output"
    )
    print(f"   cost: ${response.cost} ({response.model})")


def endless_tool_loop() -> None:
    print("2. a tool loop that would never end")
    # the server repeats its last script: this model asks for `lookup` on every call
    with Server(asks_for_lookup()) as server:
        loop = (
            model(server)
            .stream("Find it.", tools=[lookup])
            .pipe(ops.tool_loop(max_steps=50, limits=rxllm.UsageLimits(requests=3)))
        )
        try:
            rxllm.collect(loop, timeout=30)
        except rxllm.UsageLimitExceeded as error:
            print(f"   UsageLimitExceeded: {error}")
            print(f"   limit: {error.limit}; usage so far: {error.usage.total_tokens} tokens")
        print(f"   requests the server received: {len(server.requests)}")


def batch_with_a_budget() -> None:
    print("3. a batch with a budget")
    prompts = [f"Label item {i}" for i in range(10)]
    usage = Usage(input_tokens=2_000, output_tokens=500)
    with Server(Script("ok", model=MODEL, usage=usage)) as server:  # the answer to every call
        llm = model(server)
        results = list(
            rxllm.iterate(
                rxllm.batch(
                    prompts,
                    lambda prompt: llm.stream(prompt).pipe(ops.to_response()),
                    concurrency=1,
                    limits=rxllm.UsageLimits(cost=Decimal("0.005")),
                    progress=False,
                )
            )
        )
        calls = len(server.requests)
    answered = [r for _, r in results if isinstance(r, rxllm.Response)]
    spent = sum((r.cost or Decimal(0) for r in answered), Decimal(0))
    print(f"   {len(answered)} answered for ${spent}; calls made: {calls} of {len(prompts)}")
    for prompt, result in results:
        if isinstance(result, rxllm.UsageLimitExceeded):
            print(f"   {prompt!r}: {result}")


def main() -> None:
    one_call()
    endless_tool_loop()
    batch_with_a_budget()


if __name__ == "__main__":
    main()
