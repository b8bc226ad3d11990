"""Usage as OpenAI-compatible services report it: one meaning for every field, whoever sent it.

`output_tokens` includes the reasoning, `input_tokens` the cached part, whatever each
service's own convention (API.md, "Usage, cost and limits").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import rxllm
from rxllm.testing import Script, Server


def _stream(usage: dict[str, Any]) -> str:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**head, "choices": [], "usage": usage},
    ]
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def _usage(server: Server, reported: dict[str, Any]) -> rxllm.Usage | None:
    server.push(Script(raw_events=_stream(reported)))
    llm = rxllm.openai("m", base_url=server.url, api_key="sk-usage-test", max_retries=0)
    return rxllm.collect(llm.stream("hi"), timeout=10).usage


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        pytest.param(
            # OpenAI: completion_tokens includes the reasoning
            {
                "prompt_tokens": 20,
                "completion_tokens": 50,
                "total_tokens": 70,
                "completion_tokens_details": {"reasoning_tokens": 30},
            },
            rxllm.Usage(input_tokens=20, output_tokens=50, total_tokens=70, reasoning_tokens=30),
            id="openai",
        ),
        pytest.param(
            # xAI: completion_tokens is the answer only; the total counts the reasoning too
            {
                "prompt_tokens": 10120,
                "completion_tokens": 1499,
                "total_tokens": 14428,
                "prompt_tokens_details": {"cached_tokens": 128},
                "completion_tokens_details": {"reasoning_tokens": 2809},
            },
            rxllm.Usage(
                input_tokens=10120,
                output_tokens=1499 + 2809,
                total_tokens=14428,
                cache_read_tokens=128,
                reasoning_tokens=2809,
            ),
            id="xai",
        ),
        pytest.param(
            # DeepSeek's own cache counts, without prompt_tokens_details
            {
                "prompt_tokens": 900,
                "completion_tokens": 10,
                "total_tokens": 910,
                "prompt_cache_hit_tokens": 640,
                "prompt_cache_miss_tokens": 260,
            },
            rxllm.Usage(
                input_tokens=900, output_tokens=10, total_tokens=910, cache_read_tokens=640
            ),
            id="deepseek",
        ),
        pytest.param(
            # OpenAI-compatible services that report cache writes (OpenRouter, Moonshot)
            {
                "prompt_tokens": 3000,
                "completion_tokens": 5,
                "total_tokens": 3005,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 2900},
            },
            rxllm.Usage(
                input_tokens=3000, output_tokens=5, total_tokens=3005, cache_write_tokens=2900
            ),
            id="cache-write",
        ),
        pytest.param(
            # details sent as null, as many compatible servers do
            {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "total_tokens": 7,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            rxllm.Usage(input_tokens=3, output_tokens=4, total_tokens=7),
            id="null-details",
        ),
    ],
)
def test_each_service_convention_reads_as_one_meaning(
    server: Server, reported: dict[str, Any], expected: rxllm.Usage
) -> None:
    assert _usage(server, reported) == expected
