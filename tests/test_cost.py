"""Response.cost: the price of a call from genai-prices' data, never a table of our own."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

import rxllm
from rxllm import cost, ops
from rxllm.models import Chunk, Response, ToolCallDelta, Usage
from rxllm.testing import Script, Server

MILLION = 1_000_000


def expected(usage: Usage, model: str, provider_id: str) -> Decimal:
    """What genai-prices itself says for these counts."""
    counts = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )
    return genai_prices.calc_price(counts, model, provider_id=provider_id).total_price


class TestPrice:
    """The price of one call's usage."""

    def test_is_genai_prices_own_figure_for_the_reported_model(self) -> None:
        usage = Usage(input_tokens=12_000, output_tokens=800, total_tokens=12_800)
        answer = Response(provider="openai", model="gpt-4o-mini-2024-07-18", usage=usage)
        assert answer.cost == expected(usage, "gpt-4o-mini-2024-07-18", "openai")
        assert isinstance(answer.cost, Decimal) and answer.cost > 0

    def test_cached_input_is_priced_at_the_cache_price(self) -> None:
        full = Usage(input_tokens=MILLION, output_tokens=100)
        cached = full.model_copy(update={"cache_read_tokens": 900_000})
        model = "claude-sonnet-4-5-20250929"
        assert cost.price(cached, model, "anthropic") == expected(cached, model, "anthropic")
        assert cost.price(cached, model, "anthropic") < cost.price(full, model, "anthropic")  # type: ignore[operator]

    def test_cache_writes_are_priced_at_their_own_price(self) -> None:
        plain = Usage(input_tokens=MILLION, output_tokens=100)
        written = plain.model_copy(update={"cache_write_tokens": MILLION})
        model = "claude-sonnet-4-5-20250929"
        # Anthropic charges more for writing the cache than for reading the prompt once
        assert cost.price(written, model, "anthropic") > cost.price(plain, model, "anthropic")  # type: ignore[operator]

    def test_reasoning_tokens_are_handed_over_as_such(self) -> None:
        usage = Usage(input_tokens=1000, output_tokens=5000, reasoning_tokens=4500)
        assert cost.price(usage, "o3-mini", "openai") == expected(usage, "o3-mini", "openai")

    @pytest.mark.parametrize(
        ("provider", "model", "provider_id"),
        [
            ("groq", "llama-3.3-70b-versatile", "groq"),
            ("deepseek", "deepseek-chat", "deepseek"),
            ("mistral", "mistral-large-latest", "mistral"),
            ("openrouter", "openai/gpt-4o-mini", "openrouter"),
            ("xai", "grok-3", "x-ai"),
            ("gemini", "gemini-2.5-flash", "google"),
            ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws"),
        ],
    )
    def test_rxllm_provider_names_map_to_genai_prices_ids(
        self, provider: str, model: str, provider_id: str
    ) -> None:
        usage = Usage(input_tokens=5000, output_tokens=500)
        assert cost.price(usage, model, provider) == expected(usage, model, provider_id)
        assert cost.price(usage, model, provider) is not None

    @pytest.mark.parametrize(
        ("provider", "model"),
        [
            ("openai", "no-such-model-anywhere"),
            ("my-own-service", "gpt-4o"),
            ("local", "SmolLM2-135M-Instruct"),
            ("scripted", "scripted"),
            ("ollama", "llama3.2"),
            ("openai", None),
        ],
    )
    def test_unknown_is_none(self, provider: str, model: str | None) -> None:
        assert cost.price(Usage(input_tokens=10, output_tokens=1), model, provider) is None

    def test_counts_that_contradict_each_other_are_none_not_an_exception(self) -> None:
        usage = Usage(input_tokens=10, cache_read_tokens=500, output_tokens=1)
        assert cost.price(usage, "gpt-4o-mini", "openai") is None

    def test_no_usage_no_cost(self) -> None:
        assert Response(provider="openai", model="gpt-4o-mini").cost is None


class TestToolLoop:
    """A tool loop's cost is the sum over its calls."""

    def test_is_the_sum_of_every_step(self) -> None:
        def add(a: int, b: int) -> int:
            return a + b

        first = Usage(input_tokens=300, output_tokens=20, total_tokens=320)
        second = Usage(input_tokens=360, output_tokens=8, total_tokens=368)
        call = ToolCallDelta(index=0, id="c1", name="add", arguments='{"a": 1, "b": 2}')
        said = {"model": "gpt-4o-mini", "provider": "openai"}  # as if OpenAI had answered
        llm = rxllm.scripted(
            [Chunk(tool_calls=(call,), usage=first, **said)],
            then=[[Chunk(content="3", usage=second, **said)]],
        )
        answer = rxllm.collect(llm.stream("1+2?", tools=[add]).pipe(ops.tool_loop()))
        assert len(answer.steps) == 1 and answer.usage == second
        assert answer.cost == expected(first, "gpt-4o-mini", "openai") + expected(
            second, "gpt-4o-mini", "openai"
        )

    def test_a_step_without_a_known_price_makes_the_total_unknown(self) -> None:
        priced = Response(provider="openai", model="gpt-4o-mini", usage=Usage(input_tokens=9))
        unpriced = Response(provider="openai", model="gpt-4o-mini")  # its usage never came
        assert unpriced.model_copy(update={"steps": (priced,)}).cost is None


KEY = "sk-cost-test"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_call_over_the_sdk_is_priced_for_the_model_it_reported(
    server: Server, provider: str
) -> None:
    model = "gpt-4o-mini-2024-07-18" if provider == "openai" else "claude-sonnet-4-5-20250929"
    usage = Usage(
        input_tokens=5210,
        output_tokens=40,
        total_tokens=5250,
        cache_read_tokens=5000,
        cache_write_tokens=200,
        reasoning_tokens=30,
    )
    server.push(Script("Priced.", usage=usage, model=model))
    factory = rxllm.openai if provider == "openai" else rxllm.anthropic
    llm = factory("an-alias", base_url=server.url, api_key=KEY, max_retries=0)
    answer = rxllm.collect(llm.stream("hi"), timeout=10)
    assert answer.usage == usage
    assert answer.cost == expected(usage, model, provider)
