"""What a call cost, in USD, from the `genai-prices` package's price data.

rxllm keeps no price table of its own: prices change every month, and `genai-prices`
(pydantic's, used by pydantic-ai and Logfire) is kept up to date, knows each provider's
model names (dated versions, aliases), tiered prices, and the prices of cached and
reasoning tokens. Its data is loaded on the first price asked for (~0.25 s), never at
import.

>>> from rxllm.models import Usage
>>> usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
>>> price(usage, "gpt-4o-mini-2024-07-18", "openai") == price(usage, "gpt-4o-mini", "openai")
True
>>> price(usage, "my-fine-tune", "vllm") is None  # self-hosted: no price list
True
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rxllm.models import Response, Usage

__all__ = ["PROVIDER_IDS", "price", "response_cost"]

PROVIDER_IDS: dict[str, str | None] = {
    "xai": "x-ai",
    "gemini": "google",
    "vertex": "google",
    "bedrock": "aws",
    # served by yourself, or no model at all: no price list
    "local": None,
    "scripted": None,
    "ollama": None,
    "vllm": None,
    "llamacpp": None,
}
"""rxllm provider names (`Response.provider`) whose `genai-prices` provider id differs, or
that have no prices (None). Any other name is looked up as it is ("openai", "anthropic",
"groq", "deepseek", "mistral", "openrouter", "together", "fireworks", "cerebras", "azure",
...); a provider or model `genai-prices` does not know has no price."""


def price(usage: Usage, model: str | None, provider: str) -> Decimal | None:
    """The price in USD of `usage` on `model` at `provider` (an rxllm provider name), or None
    when unknown (no model, a provider or model without price data, counts that contradict
    each other).

    Cache reads and writes and reasoning tokens are priced at the model's own prices for
    them, where it has such prices (else as input and output tokens).
    """
    if not model:
        return None
    provider_id = PROVIDER_IDS.get(provider, provider)
    if provider_id is None:
        return None
    import genai_prices

    counts = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )
    try:
        calculation = genai_prices.calc_price(counts, model, provider_id=provider_id)
    except (LookupError, ValueError):  # unknown provider or model; inconsistent counts
        return None
    return calculation.total_price


def response_cost(response: Response) -> Decimal | None:
    """The price of every call behind `response`: its own and, for a tool loop, each earlier
    step's; None when any of them is unknown (a call whose usage never arrived, e.g. one
    stopped early, has no known price)."""
    total = Decimal(0)
    for call in (*response.steps, response):
        if call.usage is None:
            return None
        cost = price(call.usage, call.model, call.provider)
        if cost is None:
            return None
        total += cost
    return total
