"""Every name API.md promises exists, and the package exports exactly what it says."""

from __future__ import annotations

import inspect
from pathlib import Path

import pydantic
import pytest

import rxllm
from rxllm import ops

API_FUNCTIONS = [
    "openai",
    "anthropic",
    "local",
    "scripted",
    "tee",
    "audio_split",
    "race",
    "fallback",
    "batch",
    "collect",
    "acollect",
    "iterate",
    "aiterate",
    "write_wav",
]
API_TYPES = [
    "LLM",
    "Chunk",
    "ToolCallDelta",
    "ToolCall",
    "Usage",
    "Response",
    "Snapshot",
    "UsageLimits",
]
API_OPS = [
    "accumulate",
    "take_until",
    "to_response",
    "text",
    "sentences",
    "partial",
    "tool_calls",
    "smooth",
    "audio_segments",
    "tool_results",
    "retry",
]
API_ERRORS = [
    "LLMError",
    "APIStatusError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "BadRequestError",
    "RateLimitError",
    "ServerError",
    "APIConnectionError",
    "StreamInterrupted",
    "StreamError",
    "StreamTimeout",
    "OutputValidationError",
    "UsageLimitExceeded",
]


@pytest.mark.parametrize("name", API_FUNCTIONS + API_TYPES + API_ERRORS)
def test_top_level_name_exists(name: str) -> None:
    assert hasattr(rxllm, name), f"rxllm.{name} is promised by API.md"
    assert name in rxllm.__all__


@pytest.mark.parametrize("name", API_OPS)
def test_operator_exists(name: str) -> None:
    assert callable(getattr(ops, name, None)), f"rxllm.ops.{name} is promised by API.md"
    assert name in ops.__all__


@pytest.mark.parametrize("name", API_ERRORS)
def test_errors_are_reexported_from_rxllm_errors(name: str) -> None:
    assert getattr(rxllm.errors, name) is getattr(rxllm, name)


def test_error_tree() -> None:
    for name in (
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "BadRequestError",
        "RateLimitError",
        "ServerError",
    ):
        assert issubclass(getattr(rxllm, name), rxllm.APIStatusError)
    for name in (
        "APIStatusError",
        "APIConnectionError",
        "StreamInterrupted",
        "StreamError",
        "StreamTimeout",
        "OutputValidationError",
        "UsageLimitExceeded",
    ):
        assert issubclass(getattr(rxllm, name), rxllm.LLMError)


def test_everything_exported_is_documented() -> None:
    for module in (rxllm, ops):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_chunk_and_response_fields() -> None:
    chunk_fields = {
        "content",
        "thinking",
        "refusal",
        "audio",
        "audio_transcript",
        "tool_calls",
        "finish_reason",
        "usage",
        "model",
        "id",
        "provider",
    }
    assert chunk_fields <= set(rxllm.Chunk.model_fields)
    response_fields = {
        "text",
        "thinking",
        "refusal",
        "audio",
        "audio_transcript",
        "tool_calls",
        "finish_reason",
        "usage",
        "model",
        "id",
        "provider",
        "chunk_count",
    }
    assert response_fields <= set(rxllm.Response.model_fields)
    assert rxllm.Chunk(content="x").raw is None and rxllm.Response().raw is None
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        rxllm.Chunk(content="x").content = "y"  # type: ignore[misc]  # frozen


@pytest.mark.slow
def test_the_frozen_models_are_frozen_for_type_checkers_too(tmp_path: Path) -> None:
    # Assigning a field raises at run time; a type checker must say so before (it reads
    # the class keyword frozen=True, not model_config).
    from mypy import api

    user = tmp_path / "user.py"
    user.write_text(
        "import rxllm\n"
        "chunk = rxllm.Chunk(content='x')\n"
        "chunk.content = 'y'\n"
        "response = rxllm.collect(rxllm.scripted('a').stream('x'))\n"
        "response.text = 'b'\n"
        "call = rxllm.ToolCall(id='1', name='f')\n"
        "call.arguments = '{}'\n"
    )
    out, _, status = api.run([str(user), "--no-incremental", "--ignore-missing-imports"])
    assert status == 1
    assert [line.split(":")[1] for line in out.splitlines() if "read-only" in line] == [
        "3",
        "5",
        "7",
    ], out
