"""OpenAI-compatible servers as they really stream: each quirk a body shaped as the service
sends it, replayed byte for byte by the loopback server (`Script(raw_events=...)`) and read
through the real `openai` SDK by `rxllm.model("<service>:...")`.

Covered: reasoning deltas as thinking (DeepSeek `reasoning_content`, OpenRouter and Groq
`reasoning`, vLLM both), chunks without `choices` (missing or empty), usage in the last
chunk, in a chunk of its own, in every chunk (vLLM's continuous usage) or in Groq's
`x_groq`, `finish_reason` in a chunk of its own or never sent, tool calls without `index`
or with the id on the first delta only, errors inside an HTTP 200 stream (OpenRouter's,
also beside `choices`; vLLM's bare error object), SSE comments and keep-alives, and a body
that ends cleanly without `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import rxllm
from rxllm.testing import Script, Server

CREATED = 1738000000


def sse(*events: dict[str, Any] | str) -> str:
    """A body: each dict as one `data:` event, each str as written (comments, `[DONE]`)."""
    parts = []
    for event in events:
        if isinstance(event, str):
            parts.append(event if event.startswith(":") else f"data: {event}\n\n")
        else:
            parts.append(f"data: {json.dumps(event, separators=(',', ':'))}\n\n")
    return "".join(parts)


def chunk(
    model: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    *,
    chunk_id: str = "chatcmpl-1",
    **extra: Any,
) -> dict[str, Any]:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": choices,
        **extra,
    }


def read(server: Server, spec: str, body: str, **kw: Any) -> rxllm.Response:
    server.push(Script(raw_events=body))
    llm = rxllm.model(spec, base_url=server.url, api_key="key-0123456789", max_retries=0, **kw)
    return rxllm.collect(llm.stream("hi"), timeout=10)


def read_async(server: Server, spec: str, body: str) -> rxllm.Response:
    server.push(Script(raw_events=body))
    llm = rxllm.model(spec, base_url=server.url, api_key="key-0123456789", max_retries=0)

    async def main() -> rxllm.Response:
        return await rxllm.acollect(llm.stream("hi"), timeout=10)

    return asyncio.run(main())


# --- reasoning -------------------------------------------------------------------------------

DEEPSEEK_REASONER = sse(
    chunk(
        "deepseek-reasoner",
        {"role": "assistant", "content": None, "reasoning_content": ""},
        system_fingerprint="fp_7e73fd9a08",
    ),
    chunk("deepseek-reasoner", {"content": None, "reasoning_content": "The user"}),
    chunk("deepseek-reasoner", {"content": None, "reasoning_content": " greets me."}),
    chunk("deepseek-reasoner", {"content": "Hello", "reasoning_content": None}),
    chunk("deepseek-reasoner", {"content": "!", "reasoning_content": None}),
    chunk(
        "deepseek-reasoner",
        {"content": "", "reasoning_content": None},
        "stop",
        usage={
            "prompt_tokens": 13,
            "completion_tokens": 40,
            "total_tokens": 53,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 30},
            "prompt_cache_hit_tokens": 8,
            "prompt_cache_miss_tokens": 5,
        },
    ),
    "[DONE]",
)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_deepseek_reasoning_content_is_thinking(server: Server, mode: str) -> None:
    reader = read if mode == "sync" else read_async
    response = reader(server, "deepseek:deepseek-reasoner", DEEPSEEK_REASONER)
    assert response.thinking == "The user greets me."
    assert response.text == "Hello!"
    assert response.finish_reason == "stop"
    assert response.usage == rxllm.Usage(
        input_tokens=13,
        output_tokens=40,
        total_tokens=53,
        cache_read_tokens=8,
        reasoning_tokens=30,
    )
    assert response.provider == "deepseek"
    assert response.raw.choices[0].message.content == "Hello!"  # the SDK's own accumulator


OPENROUTER_REASONING = (
    ": OPENROUTER PROCESSING\n\n"
    ": OPENROUTER PROCESSING\n\n"
    + sse(
        chunk(
            "deepseek/deepseek-r1",
            {
                "role": "assistant",
                "content": "",
                "reasoning": "Short",
                "reasoning_details": [
                    {"type": "reasoning.text", "text": "Short", "format": "unknown", "index": 0}
                ],
            },
            chunk_id="gen-1740000000-abc",
            provider="DeepInfra",
            native_finish_reason=None,
        ),
        chunk(
            "deepseek/deepseek-r1",
            {"role": "assistant", "content": "", "reasoning": " thought."},
            chunk_id="gen-1740000000-abc",
            provider="DeepInfra",
        ),
    )
    + ": OPENROUTER PROCESSING\n\n"
    + sse(
        chunk(
            "deepseek/deepseek-r1",
            {"role": "assistant", "content": "Answer.", "reasoning": None},
            chunk_id="gen-1740000000-abc",
            provider="DeepInfra",
        ),
        chunk(
            "deepseek/deepseek-r1",
            {"role": "assistant", "content": ""},
            "stop",
            chunk_id="gen-1740000000-abc",
            provider="DeepInfra",
            native_finish_reason="stop",
        ),
        # the usage in a chunk of its own after the finish, with an empty delta
        chunk(
            "deepseek/deepseek-r1",
            {"role": "assistant", "content": ""},
            chunk_id="gen-1740000000-abc",
            provider="DeepInfra",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 20,
                "total_tokens": 30,
                "cost": 0.0001,
                "is_byok": False,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 12},
            },
        ),
        "[DONE]",
    )
)


def test_openrouter_reasoning_and_its_processing_comments(server: Server) -> None:
    response = read(server, "openrouter:deepseek/deepseek-r1", OPENROUTER_REASONING)
    assert (response.thinking, response.text) == ("Short thought.", "Answer.")
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.total_tokens, response.usage.reasoning_tokens) == (30, 12)
    assert response.chunk_count == 5  # the comments are no chunks
    assert response.raw is not None


GROQ_PARSED_REASONING = sse(
    chunk(
        "qwen/qwen3-32b",
        {"role": "assistant", "content": ""},
        x_groq={"id": "req_01jzexample"},
        system_fingerprint="fp_1",
    ),
    chunk("qwen/qwen3-32b", {"reasoning": "Two plus two"}),
    chunk("qwen/qwen3-32b", {"reasoning": " is four."}),
    chunk("qwen/qwen3-32b", {"content": "4"}),
    chunk(
        "qwen/qwen3-32b",
        {},
        "stop",
        x_groq={
            "id": "req_01jzexample",
            "usage": {
                "queue_time": 0.05,
                "prompt_tokens": 14,
                "prompt_time": 0.002,
                "completion_tokens": 9,
                "completion_time": 0.01,
                "total_tokens": 23,
                "total_time": 0.012,
            },
        },
    ),
    "[DONE]",
)


def test_groq_reasoning_and_its_usage_in_x_groq(server: Server) -> None:
    response = read(server, "groq:qwen/qwen3-32b", GROQ_PARSED_REASONING)
    assert (response.thinking, response.text) == ("Two plus two is four.", "4")
    assert response.usage == rxllm.Usage(input_tokens=14, output_tokens=9, total_tokens=23)


def test_groq_usage_twice_x_groq_then_a_usage_chunk_counts_once(server: Server) -> None:
    usage = {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}
    body = sse(
        chunk("llama-3.3-70b-versatile", {"role": "assistant", "content": "Hi"}),
        chunk("llama-3.3-70b-versatile", {}, "stop", x_groq={"id": "req_1", "usage": usage}),
        chunk("llama-3.3-70b-versatile", None, usage=usage, x_groq={"id": "req_1"}),
        "[DONE]",
    )
    response = read(server, "groq:llama-3.3-70b-versatile", body)
    assert response.text == "Hi"
    assert response.usage == rxllm.Usage(input_tokens=14, output_tokens=9, total_tokens=23)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_vllm_reasoning_either_field_is_thinking(server: Server, field: str) -> None:
    body = sse(
        chunk("Qwen/Qwen3-0.6B", {"role": "assistant", "content": ""}),
        chunk("Qwen/Qwen3-0.6B", {field: "Hmm."}),
        chunk("Qwen/Qwen3-0.6B", {"content": "Yes."}),
        chunk("Qwen/Qwen3-0.6B", {"content": ""}, "stop"),
        "[DONE]",
    )
    response = read(server, "vllm:Qwen/Qwen3-0.6B", body)
    assert (response.thinking, response.text) == ("Hmm.", "Yes.")


# --- chunks, usage and the end of the stream --------------------------------------------------


def test_chunks_without_choices_missing_or_empty_say_nothing(server: Server) -> None:
    body = sse(
        {"id": "x", "object": "chat.completion.chunk", "created": CREATED, "model": "grok-3"},
        chunk("grok-3", {"role": "assistant", "content": "Hi"}),
        chunk("grok-3", {"content": " there"}, "stop"),
        # xAI: the usage in a last chunk whose choices are empty
        chunk(
            "grok-3", None, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        ),
        "[DONE]",
    )
    response = read(server, "xai:grok-3", body)
    assert response.text == "Hi there"
    assert response.finish_reason == "stop"
    assert response.usage == rxllm.Usage(input_tokens=5, output_tokens=2, total_tokens=7)


def test_vllm_usage_in_every_chunk_ends_with_the_last_count(server: Server) -> None:
    def usage(completion: int) -> dict[str, int]:
        return {
            "prompt_tokens": 6,
            "total_tokens": 6 + completion,
            "completion_tokens": completion,
        }

    body = sse(
        chunk("m", {"role": "assistant", "content": ""}, usage=usage(0)),
        chunk("m", {"content": "One"}, usage=usage(1)),
        chunk("m", {"content": " two"}, usage=usage(2)),
        chunk("m", {"content": ""}, "length", usage=usage(3)),
        "[DONE]",
    )
    server.push(Script(raw_events=body))
    llm = rxllm.model("vllm:m", base_url=server.url)
    chunks = list(rxllm.iterate(llm.stream("hi")))
    assert [c.usage.output_tokens for c in chunks if c.usage] == [0, 1, 2, 3]
    response = rxllm.collect(rxllm.model("vllm:m", base_url=server.url).stream("hi"))
    assert response.text == "One two"
    assert (response.finish_reason, response.usage) == (
        "length",
        rxllm.Usage(input_tokens=6, output_tokens=3, total_tokens=9),
    )


def test_a_finish_reason_in_a_chunk_of_its_own(server: Server) -> None:
    body = sse(
        chunk("m", {"role": "assistant", "content": "Done"}),
        chunk("m", {}, "stop"),
        "[DONE]",
    )
    response = read(server, "together:m", body)
    assert (response.text, response.finish_reason) == ("Done", "stop")


def test_no_finish_reason_at_all_then_done_ends_the_answer(server: Server) -> None:
    body = sse(
        chunk("m", {"role": "assistant", "content": "Just"}),
        chunk("m", {"content": " text"}),
        "[DONE]",
    )
    response = read(server, "ollama:m", body)
    assert response.text == "Just text"
    assert response.finish_reason is None  # the server never said why


def test_vllm_clean_end_without_done_after_a_finish_reason_is_complete(server: Server) -> None:
    body = sse(
        chunk("m", {"role": "assistant", "content": "Complete"}),
        chunk("m", {"content": "."}, "stop"),
    )  # the body ends here, properly: no [DONE]
    response = read(server, "vllm:m", body)
    assert (response.text, response.finish_reason) == ("Complete.", "stop")


def test_a_clean_end_without_done_or_finish_reason_is_interrupted(server: Server) -> None:
    body = sse(chunk("m", {"role": "assistant", "content": "Cut"}), chunk("m", {"content": " o"}))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        read(server, "vllm:m", body)
    assert caught.value.partial is not None and caught.value.partial.text == "Cut o"
    assert caught.value.retryable


# --- tool calls -------------------------------------------------------------------------------


def test_tool_calls_with_an_index_and_the_id_on_the_first_delta_only(server: Server) -> None:
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"index": index, **fields}

    body = sse(
        chunk("m", {"role": "assistant", "content": None}),
        chunk(
            "m",
            {
                "tool_calls": [
                    call(
                        0,
                        id="call_a",
                        type="function",
                        function={"name": "weather", "arguments": ""},
                    )
                ]
            },
        ),
        chunk("m", {"tool_calls": [call(0, function={"arguments": '{"city": '})]}),
        chunk("m", {"tool_calls": [call(0, function={"arguments": '"Oslo"}'})]}),
        chunk(
            "m",
            {
                "tool_calls": [
                    call(
                        1, id="call_b", type="function", function={"name": "time", "arguments": ""}
                    )
                ]
            },
        ),
        chunk("m", {"tool_calls": [call(1, function={"arguments": "{}"})]}),
        chunk("m", {}, "tool_calls"),
        "[DONE]",
    )
    response = read(server, "fireworks:m", body)
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
        ("call_a", "weather", {"city": "Oslo"}),
        ("call_b", "time", {}),
    ]
    assert response.finish_reason == "tool_calls"


def test_tool_calls_without_an_index_id_first_then_fragments(server: Server) -> None:
    body = sse(
        chunk(
            "m",
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 1'},
                    }
                ],
            },
        ),
        chunk("m", {"tool_calls": [{"function": {"arguments": ', "b": 2}'}}]}),
        chunk(
            "m",
            {
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "neg", "arguments": ""},
                    }
                ]
            },
        ),
        chunk("m", {"tool_calls": [{"function": {"arguments": '{"x": 3}'}}]}, "tool_calls"),
        "[DONE]",
    )
    response = read(server, "gemini:gemini-2.5-flash", body)
    assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
        ("call_1", "add", {"a": 1, "b": 2}),
        ("call_2", "neg", {"x": 3}),
    ]


# --- errors inside a 200 stream ----------------------------------------------------------------


def test_openrouter_error_beside_choices_mid_stream_keeps_the_partial(server: Server) -> None:
    body = ": OPENROUTER PROCESSING\n\n" + sse(
        chunk("openai/gpt-4o", {"role": "assistant", "content": "Partial"}, provider="OpenAI"),
        chunk(
            "openai/gpt-4o",
            {"content": ""},
            "error",
            provider="OpenAI",
            error={"code": "server_error", "message": "Provider disconnected unexpectedly"},
        ),
        "[DONE]",
    )
    with pytest.raises(rxllm.ServerStreamError) as caught:
        read(server, "openrouter:openai/gpt-4o", body)
    error = caught.value
    assert "Provider disconnected unexpectedly" in str(error)
    assert error.provider == "openrouter"
    assert error.retryable
    assert error.partial is not None and error.partial.text == "Partial"


def test_openrouter_numeric_error_code_decides_the_class(server: Server) -> None:
    body = sse(
        chunk("m", {"role": "assistant", "content": "a"}),
        {"error": {"code": 429, "message": "Rate limit exceeded upstream"}},
    )
    with pytest.raises(rxllm.RateLimitStreamError):
        read(server, "openrouter:m", body)


@pytest.mark.parametrize(
    ("error", "cls", "retryable"),
    [
        (
            {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError",
             "param": None, "code": 500},
            rxllm.ServerStreamError,
            True,
        ),
        (
            {"object": "error", "message": "maximum context length is 4096 tokens",
             "type": "BadRequestError", "param": None, "code": 400},
            rxllm.StreamError,
            False,
        ),
    ],
)  # fmt: skip
def test_vllm_bare_error_object_mid_stream(
    server: Server, error: dict[str, Any], cls: type, retryable: bool
) -> None:
    body = sse(chunk("m", {"role": "assistant", "content": "So far"}), error, "[DONE]")
    with pytest.raises(cls) as caught:
        read(server, "vllm:m", body)
    assert type(caught.value) is cls
    assert error["message"] in str(caught.value)
    assert caught.value.retryable is retryable
    assert caught.value.partial is not None and caught.value.partial.text == "So far"


# --- SSE comments and keep-alives ----------------------------------------------------------


def test_comments_and_keep_alives_anywhere_are_ignored(server: Server) -> None:
    body = (
        ":\n\n"  # an empty comment
        ": ping - 2025-06-01 12:00:00.000000+00:00\n\n"  # sse-starlette (llama-cpp-python)
        + sse(chunk("m", {"role": "assistant", "content": "A"}))
        + ": keep-alive\r\n\r\n"
        + sse(chunk("m", {"content": "B"}))
        + ": OPENROUTER PROCESSING\n\n"
        + sse(chunk("m", {}, "stop"), "[DONE]")
    )
    response = read(server, "llamacpp:m", body)
    assert (response.text, response.finish_reason, response.chunk_count) == ("AB", "stop", 3)


# --- what a service refuses ------------------------------------------------------------------


def test_mistral_is_not_sent_stream_options_and_reports_usage_unasked(server: Server) -> None:
    """Mistral answers `stream_options` with HTTP 422 ("extra_forbidden"); it sends the usage
    in its last chunk without being asked."""
    body = sse(
        chunk("mistral-small-latest", {"role": "assistant", "content": ""}),
        chunk("mistral-small-latest", {"content": "Bonjour"}),
        chunk(
            "mistral-small-latest",
            {"content": ""},
            "stop",
            usage={"prompt_tokens": 5, "total_tokens": 7, "completion_tokens": 2},
        ),
        "[DONE]",
    )
    response = read(server, "mistral:mistral-small-latest", body)
    assert "stream_options" not in server.last.body
    assert response.text == "Bonjour"
    assert response.usage == rxllm.Usage(input_tokens=5, output_tokens=2, total_tokens=7)
    # a caller's own stream_options are sent as given
    read(server, "mistral:m", body, stream_options={"include_usage": False})
    assert server.last.body["stream_options"] == {"include_usage": False}
    read(server, "groq:m", body)  # the others are asked for usage
    assert server.last.body["stream_options"] == {"include_usage": True}
