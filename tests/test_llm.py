"""`LLM.stream` validates before anything is subscribed; `@llm.prompt`; `with_params`."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

import rxllm


@pytest.fixture
def llm() -> rxllm.LLM:
    return rxllm.scripted("ok")


@pytest.mark.parametrize(
    ("args", "kwargs", "says"),
    [
        ((), {}, "needs a prompt or messages"),
        (("hi",), {"messages": [{"role": "user", "content": "x"}]}, "not both"),
        ((), {"messages": [{"role": "wizard", "content": "x"}]}, "unknown role 'wizard'"),
        ((), {"messages": []}, "messages is empty"),
        ((), {"messages": "hello"}, "list of"),
        ((), {"messages": [{"role": "user"}]}, "has no 'content'"),
        (("hi",), {"max_tokens": -5}, "max_tokens must be at least 1"),
        (("hi",), {"max_tokens": "10"}, "max_tokens must be a positive int"),
        (("hi",), {"temperature": -1}, "temperature must be a number from 0 to 2"),
        (("hi",), {"stall_timeout": 0}, "stall_timeout must be a positive number"),
        (("hi",), {"stream": False}, "always streams"),
        ((42,), {}, "prompt must be a str"),
        (("",), {}, "the prompt is empty"),
        (("hi",), {"response_format": list[int]}, "wrap it in a model"),
        (("hi",), {"response_format": str}, "response_format must be a pydantic model"),
        (("hi",), {"tools": [42]}, r"tools\[0\] must be a function"),
        (("hi",), {"tools": "weather"}, "tools must be a list"),
        (("hi",), {"tools": [lambda city: city]}, r"tools\[0\] \(function\) has no name"),
        (("hi",), {"tools": [functools.partial(max, 1)]}, r"\(partial\) has no name"),
        ((" \n",), {}, "the prompt is empty"),
    ],
)
def test_bad_arguments_raise_before_subscription(
    llm: rxllm.LLM, args: tuple[object, ...], kwargs: dict[str, object], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        llm.stream(*args, **kwargs)
    assert llm._provider.requests == []  # type: ignore[attr-defined]


def test_bad_defaults_raise_at_creation() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        rxllm.scripted("x", max_tokens=0)


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        (lambda: rxllm.openai("gpt-x", api_key="k", temprature=0.2), "'temprature'"),
        (lambda: rxllm.openai("gpt-x", api_key="k").with_params(temprature=0.2), "'temprature'"),
        (lambda: rxllm.local(seeed=1), "'seeed'"),
        (lambda: rxllm.openai("gpt-x", api_key="k", response_format=list[int]), "wrap it"),
        (lambda: rxllm.scripted("x").with_params(response_format=str), "response_format must"),
    ],
)
def test_defaults_a_provider_cannot_take_raise_at_creation(
    no_keys: None, factory: Callable[[], object], says: str
) -> None:
    with pytest.raises(ValueError, match=says if "'" not in says else f"no parameter {says}"):
        factory()


def test_openai_rejects_unknown_parameters_before_any_request(no_keys: None) -> None:
    llm = rxllm.openai("gpt-x", api_key="k")
    with pytest.raises(ValueError, match=r"no parameter 'temprature'.*extra_body"):
        llm.stream("hi", temprature=0.5)


def test_anthropic_rejects_tool_role_with_a_hint() -> None:
    llm = rxllm.anthropic("claude-x", api_key="k")
    with pytest.raises(ValueError, match="tool_result"):
        llm.stream(messages=[{"role": "tool", "content": "42", "tool_call_id": "c"}])


@pytest.mark.parametrize(
    ("factory", "variable"),
    [(rxllm.openai, "OPENAI_API_KEY"), (rxllm.anthropic, "ANTHROPIC_API_KEY")],
)
def test_missing_api_key_is_an_authentication_error_naming_the_variable(
    no_keys: None,
    factory,
    variable: str,  # type: ignore[no-untyped-def]
) -> None:
    llm = factory("some-model", base_url="http://127.0.0.1:9")  # nothing listens there
    stream = llm.stream("hi")  # creating the stream is fine: it is cold
    with pytest.raises(rxllm.AuthenticationError, match=variable) as caught:
        rxllm.collect(stream, timeout=5)
    assert caught.value.retryable is False
    assert caught.value.provider in ("openai", "anthropic")


def test_prompt_decorator_streams_the_returned_prompt(llm: rxllm.LLM) -> None:
    @llm.prompt
    def ask(topic: str, *, short: bool = False) -> str:
        return f"Tell me about {topic}{' briefly' if short else ''}"

    assert rxllm.collect(ask("rx", short=True)).text == "ok"
    request = llm._provider.requests[-1]  # type: ignore[attr-defined]
    assert request.messages == ({"role": "user", "content": "Tell me about rx briefly"},)


def test_prompt_decorator_takes_messages(llm: rxllm.LLM) -> None:
    @llm.prompt
    def chat(question: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": "be brief"}, {"role": "user", "content": question}]

    rxllm.collect(chat("why?"))
    assert llm._provider.requests[-1].messages[0]["role"] == "system"  # type: ignore[attr-defined]


def test_prompt_decorator_rejects_unknown_keyword_arguments(llm: rxllm.LLM) -> None:
    @llm.prompt
    def ask(topic: str) -> str:
        return topic

    with pytest.raises(TypeError, match="with_params"):
        ask("x", temperature=0.1)  # type: ignore[call-arg]


def test_prompt_decorator_rejects_a_non_prompt_result(llm: rxllm.LLM) -> None:
    @llm.prompt
    def broken() -> int:
        return 3

    with pytest.raises(TypeError, match="must return a prompt"):
        broken()


def test_with_params_merges_defaults_into_every_call() -> None:
    llm = rxllm.scripted("ok", temperature=0.5, max_tokens=10)
    tuned = llm.with_params(temperature=0.1)
    rxllm.collect(tuned.stream("hi", max_tokens=3))
    request = llm._provider.requests[-1]  # type: ignore[attr-defined]
    assert dict(request.params) == {"temperature": 0.1, "max_tokens": 3}
    assert llm.defaults["temperature"] == 0.5  # the original is unchanged
