"""A user's likely mistakes get an early error that says what to change.

Not a deep `AttributeError` from inside reactivex, and not a failure only after the whole
answer was generated and paid for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as rx

import rxllm
from rxllm import ops

LLM = rxllm.scripted("One. Two.")


def stream() -> reactivex.Observable[rxllm.Chunk]:
    return LLM.stream("x")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rxllm.collect(42), "takes an Observable"),  # type: ignore[arg-type]
        (lambda: rxllm.collect(LLM), r"call llm\.stream\(prompt\)"),  # type: ignore[arg-type]
        (lambda: rxllm.iterate(LLM), r"call llm\.stream\(prompt\)"),  # type: ignore[arg-type]
        (lambda: rxllm.tee(LLM), r"call llm\.stream\(prompt\)"),  # type: ignore[arg-type]
        (lambda: rxllm.audio_split("x"), "takes an Observable"),  # type: ignore[arg-type]
        (lambda: rxllm.race([stream(), stream()]), r"race\(\*sources\)"),  # type: ignore[arg-type]
        (lambda: rxllm.write_wav(b"pcm", "out.wav"), "takes an Observable"),  # type: ignore[arg-type]
        (lambda: ops.partial("City"), "pass the class itself"),  # type: ignore[arg-type]
        (lambda: ops.on_finish(None), "function of a Finish"),  # type: ignore[arg-type]
    ],
)
def test_a_wrong_kind_of_argument_is_a_type_error_at_once(
    call: Callable[[], Any], match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        call()


async def test_the_async_bridges_check_their_source_too() -> None:
    with pytest.raises(TypeError, match="takes an Observable"):
        await rxllm.acollect(LLM)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes an Observable"):
        async for _ in rxllm.aiterate(LLM):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match="timeout"):
        await rxllm.acollect(stream(), timeout="1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rxllm.collect(stream(), timeout="1"), "timeout"),  # type: ignore[arg-type]
        (lambda: rxllm.tee(stream(), n="2"), "tee"),  # type: ignore[arg-type]
        (lambda: rxllm.tee(stream(), n=1.5), "tee"),  # type: ignore[arg-type]
        (lambda: ops.audio_segments(sample_rate="24k"), "sample_rate"),  # type: ignore[arg-type]
        (lambda: rxllm.write_wav(stream(), "x.wav", sample_rate=22050.5), "sample_rate"),  # type: ignore[arg-type]
    ],
)
def test_a_number_of_the_wrong_type_is_named(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_write_wav_says_what_it_takes_and_where_the_folder_is_missing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="PCM bytes or of Chunks, got str"):
        rxllm.write_wav(stream().pipe(ops.text()), tmp_path / "out.wav")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rxllm.write_wav(stream(), tmp_path / "missing" / "out.wav")


@pytest.mark.parametrize(
    ("pipeline", "match"),
    [
        # text() after accumulate(): the items are snapshots
        ([ops.accumulate(), ops.text()], r"text\(\) takes Chunks, got Snapshot .*before it"),
        # accumulate() after text(): the items are str
        ([ops.text(), ops.accumulate()], r"accumulate\(\) takes Chunks, got str .*before it"),
        ([ops.text(), ops.retry()], r"retry\(\) takes Chunks, got str"),
    ],
)
def test_operators_in_the_wrong_order_say_so(pipeline: list[Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        stream().pipe(*pipeline, rx.to_list()).run()


def add(a: int, b: int) -> int:
    """Add."""
    return a + b


def apply(f: Callable[[int], int]) -> int:
    """A parameter no model can fill."""
    return f(1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tools": [apply]}, r"tools\[0\] \(apply\): its parameters have no JSON schema"),
        ({"tools": [add, add]}, "both named 'add'"),
        (
            {"tools": [add, {"type": "function", "function": {"name": "add", "parameters": {}}}]},
            "both named 'add'",
        ),
        ({"tools": [{"foo": 1}]}, "neither provider's format"),
        ({"audio": "alloy"}, "audio must be a dict"),
    ],
)
def test_stream_refuses_tools_and_audio_no_provider_could_take(
    kwargs: dict[str, Any], match: str
) -> None:
    llm = rxllm.openai("m", api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match=match):
        llm.stream("x", **kwargs)


def test_a_provider_s_own_tool_dict_is_still_taken() -> None:
    llm = rxllm.anthropic("m", api_key="k", base_url="http://127.0.0.1:9")
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    request = llm.request("x", tools=[add, web_search])  # what stream() checks and sends
    sent = llm._provider.codec(request).arguments(request)["tools"]  # type: ignore[attr-defined]
    assert [tool["name"] for tool in sent] == ["add", "web_search"]
    assert sent[1] == web_search  # a provider's own tool goes as given


def test_message_content_must_be_text_or_parts() -> None:
    with pytest.raises(ValueError, match=r"messages\[0\] content must be a str"):
        LLM.stream(messages=[{"role": "user", "content": 42}])


def test_an_async_prompt_function_is_refused_when_decorated() -> None:
    with pytest.raises(TypeError, match="is async"):

        @LLM.prompt
        async def ask(country: str) -> str:
            return country


def test_a_missing_argument_of_a_prompt_function_is_only_that() -> None:
    @LLM.prompt
    def ask(country: str) -> str:
        return country

    with pytest.raises(TypeError, match="missing a required argument") as caught:
        ask()  # type: ignore[call-arg]
    assert "with_params" not in str(caught.value)
    with pytest.raises(TypeError, match="with_params"):
        ask("France", temperature=0)  # type: ignore[call-arg]


def test_retry_says_what_max_wait_and_resume_take() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        ops.retry(max_wait=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="resume"):
        ops.retry(resume="no")  # type: ignore[arg-type]


def test_a_response_from_another_provider_renders_as_openai_by_default() -> None:
    response = rxllm.Response(text="Hi", provider="azure-proxy")
    assert response.message() == {"role": "assistant", "content": "Hi"}
    with pytest.raises(ValueError, match="provider must be"):
        response.message("azure-proxy")


def test_an_error_event_given_as_a_string_keeps_its_text() -> None:
    error = rxllm.errors.stream_error_event("openai", "Internal server error: CUDA OOM")
    assert "CUDA OOM" in str(error)
