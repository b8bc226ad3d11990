"""`rxllm.ray.map_batches` on a local Ray instance (2 CPUs), against the loopback server:
the rows are what `rxllm.batch` gives for the same inputs, failures are rows, the rate
limits hold over all workers together, and the LLM reaches the workers as a pickle."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import rxllm
from rxllm.testing import Script, Server

ray = pytest.importorskip("ray")
import rxllm.ray  # noqa: E402 - after the skip: needs Ray
from rxllm.ray import OUTPUT_COLUMNS, RateLimits, map_batches  # noqa: E402

KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def rows_of(prompts: list[str]) -> Any:
    return ray.data.from_items([{"id": i, "prompt": p} for i, p in enumerate(prompts)])


def as_rows(outcomes: list[tuple[Any, rxllm.Response | rxllm.LLMError]]) -> dict[str, dict]:
    """`rxllm.batch`'s outcomes as map_batches' columns, by prompt."""
    from rxllm.ray import _row

    return {prompt: _row(outcome) for prompt, outcome in outcomes}


def batch_rows(prompts: list[str], pipeline: Any) -> dict[str, dict]:
    """`rxllm.batch` over the same prompts in asyncio (as the workers run it, so an error's
    message is the one of the same HTTP transport)."""

    async def main() -> list[tuple[Any, rxllm.Response | rxllm.LLMError]]:
        results = rxllm.batch(prompts, pipeline, concurrency=4, progress=False)
        return [pair async for pair in rxllm.aiterate(results)]

    return as_rows(asyncio.run(main()))


# --- no cluster needed -----------------------------------------------------------------------


def test_rate_limits_are_shared_in_whole_requests() -> None:
    assert RateLimits(requests=7, tokens=1001, per=10).share(2) == RateLimits(3, 500, 10.0)
    with pytest.raises(ValueError, match="cannot be shared by 3 workers"):
        RateLimits(requests=2).share(3)
    with pytest.raises(ValueError, match="int >= 1"):
        RateLimits(requests=0)
    with pytest.raises(ValueError, match="positive number of seconds"):
        RateLimits(requests=5, per=0)


def test_bad_arguments_say_what_to_pass() -> None:
    llm = rxllm.scripted("x")
    with pytest.raises(TypeError, match=r"ray\.data\.Dataset"):
        map_batches([{"prompt": "a"}], llm.stream)  # type: ignore[arg-type]


def test_a_row_s_columns_fit_their_arrow_types() -> None:
    import pyarrow as pa

    from rxllm.ray import _COST_SCALE, _arrow_types, _row

    usage = rxllm.Usage(input_tokens=3, output_tokens=5, total_tokens=8)
    good = rxllm.Response(
        text="Hi.", finish_reason="stop", usage=usage, provider="openai", model="gpt-4o-mini"
    )
    price = good.cost
    assert price is not None and price > 0  # genai-prices knows the model
    failed = rxllm.StreamInterrupted("anthropic: the connection broke", provider="anthropic")
    failed.partial = rxllm.Response(text="Hal")
    nothing = rxllm.RateLimitError("anthropic: rate limited (HTTP 429)", provider="anthropic")
    rows = [_row(good), _row(failed), _row(nothing)]
    assert rows[0] == {
        "text": "Hi.",
        "finish_reason": "stop",
        "input_tokens": 3,
        "output_tokens": 5,
        "cost": price.quantize(_COST_SCALE),
        "error": None,
    }
    assert rows[1]["text"] == "Hal" and rows[1]["input_tokens"] is None
    assert rows[1]["error"] == "StreamInterrupted: anthropic: the connection broke"
    assert rows[2] == dict.fromkeys(OUTPUT_COLUMNS) | {
        "error": "RateLimitError: anthropic: rate limited (HTTP 429)"
    }
    table = pa.table(
        {
            name: pa.array([r[name] for r in rows], type=kind)
            for name, kind in _arrow_types(pa).items()
        }
    )
    assert table.column("cost").to_pylist()[0] == price.quantize(_COST_SCALE)


# --- on a local Ray instance ---------------------------------------------------------------


@pytest.mark.slow
def test_argument_checks_with_a_dataset(cluster: None) -> None:
    llm = rxllm.scripted("x")
    dataset = rows_of(["a"])
    with pytest.raises(ValueError, match=r"no column 'question'.*'id', 'prompt'"):
        map_batches(dataset, llm.stream, column="question")
    with pytest.raises(ValueError, match="also an output column"):
        map_batches(dataset, llm.stream, column="text")
    with pytest.raises(TypeError, match=r"RateLimits\(requests=..."):
        map_batches(dataset, llm.stream, limits={"requests": 5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency must be an int >= 1"):
        map_batches(dataset, llm.stream, concurrency=0)
    with pytest.raises(TypeError, match="sets compute itself"):
        map_batches(dataset, llm.stream, compute=None)
    with pytest.raises(ValueError, match="cannot be shared by 2 workers"):
        map_batches(dataset, llm.stream, workers=2, limits=RateLimits(requests=1))


@pytest.mark.slow
def test_rows_are_what_batch_gives_and_failures_are_rows(cluster: None, server: Server) -> None:
    # Every row's answer depends on its prompt (the loopback server reports a prompt's
    # words as its input tokens), so a row holding another row's answer shows.
    server.push(Script("Hello there, world."))
    with (
        Server(Script("Not so fast.", status=400)) as refusing,
        Server(Script(["Half ", "an ", "answer"], drop_after=2)) as dropping,
    ):
        good = rxllm.openai("test-model", base_url=server.url, api_key=KEY, max_retries=0)
        bad = rxllm.anthropic("test-model", base_url=refusing.url, api_key=KEY, max_retries=0)
        cut = rxllm.openai("test-model", base_url=dropping.url, api_key=KEY, max_retries=0)

        def pipeline(prompt: str) -> Any:
            if prompt.startswith("refused"):
                return bad.stream(prompt)
            if prompt.startswith("cut"):
                return cut.stream(prompt)
            if prompt.startswith("broken"):
                return good.stream(prompt, max_tokens=-1)  # a ValueError from stream()
            return good.stream(prompt)

        prompts = [("word " * n).strip() for n in range(1, 25)]
        prompts += ["refused one", "cut short", "broken arguments"]
        rows = map_batches(rows_of(prompts), pipeline, concurrency=4, workers=2).take_all()
        expected = batch_rows(prompts, pipeline)  # asyncio, as on the workers: same errors

    assert sorted(row["id"] for row in rows) == list(range(len(prompts)))
    for row in rows:
        assert row["prompt"] == prompts[row["id"]]  # the input row, kept as it was
        assert {name: row[name] for name in OUTPUT_COLUMNS} == expected[row["prompt"]]
    by_prompt = {row["prompt"]: row for row in rows}
    assert by_prompt["word word word"]["input_tokens"] == 3
    assert by_prompt["word word word"]["text"] == "Hello there, world."
    assert by_prompt["word"]["error"] is None
    assert by_prompt["refused one"]["error"].startswith("BadRequestError: ")
    assert by_prompt["refused one"]["text"] is None
    cut_row = by_prompt["cut short"]
    assert cut_row["error"].startswith("StreamInterrupted: ")
    assert cut_row["text"] == "Half an "  # what arrived before the failure
    assert by_prompt["broken arguments"]["error"].startswith("LLMError: ")
    assert "max_tokens" in by_prompt["broken arguments"]["error"]


@pytest.mark.slow
def test_rate_limits_hold_over_all_workers(cluster: None, server: Server) -> None:
    server.push(Script("Quick."))
    llm = rxllm.openai("test-model", base_url=server.url, api_key=KEY, max_retries=0)
    limits = RateLimits(requests=4, per=2.0)  # 2 per worker per 2 s
    rows = map_batches(
        rows_of([f"p{i}" for i in range(12)]), llm.stream, concurrency=8, workers=2, limits=limits
    ).take_all()
    assert [row["error"] for row in rows] == [None] * 12
    starts = sorted(request.started_at for request in server.requests)
    assert len(starts) == 12
    # The workers reserve their starts in their own processes; the server sees each a few
    # ms later, so a window 0.1 s shorter than the limit's is counted.
    for first in starts:
        assert sum(first <= t < first + 1.9 for t in starts) <= 4


@pytest.mark.slow
def test_each_worker_reads_its_own_key_from_its_environment(
    cluster: None, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-driver-0123456789")
    llm = rxllm.openai("test-model", base_url=server.url, max_retries=0)
    server.push(Script("Signed."))
    rows = map_batches(
        rows_of(["a", "b"]),
        llm.stream,
        runtime_env={"env_vars": {"OPENAI_API_KEY": "sk-worker-0123456789"}},
    ).take_all()
    assert [row["text"] for row in rows] == ["Signed.", "Signed."]
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer sk-worker-0123456789"}


@pytest.mark.slow
def test_a_messages_column_goes_to_a_pipeline_of_messages(cluster: None, server: Server) -> None:
    server.push(Script("Paris."))
    llm = rxllm.anthropic("test-model", base_url=server.url, api_key=KEY, max_retries=0)
    conversations = [
        {"messages": [{"role": "user", "content": f"Capital of France? ({i})"}]} for i in range(3)
    ]
    rows = map_batches(
        ray.data.from_items(conversations),
        lambda messages: llm.stream(messages=messages, system="Be brief."),
        column="messages",
    ).take_all()
    assert [row["text"] for row in rows] == ["Paris."] * 3
    assert all(request.body["system"] == "Be brief." for request in server.requests)
    assert rows[0]["messages"] == conversations[0]["messages"]


@pytest.mark.slow
def test_the_local_model_runs_on_the_workers_as_in_this_process(cluster: None) -> None:
    pytest.importorskip("llama_cpp")
    llm = rxllm.local(temperature=0, max_tokens=6)
    prompts = ["Say hello.", "Name a colour.", "Count to three."]
    rows = map_batches(rows_of(prompts), llm.stream, concurrency=2).take_all()
    here = dict(rxllm.iterate(rxllm.batch(prompts, llm.stream, concurrency=1, progress=False)))
    for row in rows:
        assert row["error"] is None
        assert row["text"] == here[row["prompt"]].text
        assert row["output_tokens"] == here[row["prompt"]].usage.output_tokens
