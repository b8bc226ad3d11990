"""The error tree (`rxllm.errors`): the classes API.md names, what is retryable, and that no
message, repr or cause shows a key."""

from __future__ import annotations

import pytest

import rxllm
from rxllm import errors

KEY = "sk-proj-abcdefghijklmnopqrstuvwx"


class TestTree:
    """The classes and their parents, as API.md draws them."""

    @pytest.mark.parametrize(
        ("cls", "parent"),
        [
            (errors.APIStatusError, errors.LLMError),
            (errors.AuthenticationError, errors.APIStatusError),
            (errors.PermissionDeniedError, errors.APIStatusError),
            (errors.NotFoundError, errors.APIStatusError),
            (errors.BadRequestError, errors.APIStatusError),
            (errors.RateLimitError, errors.APIStatusError),
            (errors.ServerError, errors.APIStatusError),
            (errors.APIConnectionError, errors.LLMError),
            (errors.StreamInterrupted, errors.LLMError),
            (errors.StreamError, errors.LLMError),
            (errors.StreamTimeout, errors.LLMError),
            (errors.OutputValidationError, errors.LLMError),
            (errors.ServerStreamError, errors.ServerError),
            (errors.ServerStreamError, errors.StreamError),
            (errors.RateLimitStreamError, errors.RateLimitError),
        ],
    )
    def test_parents(self, cls: type, parent: type) -> None:
        assert issubclass(cls, parent)
        assert getattr(rxllm, cls.__name__) is cls  # re-exported at rxllm.

    @pytest.mark.parametrize(
        ("error", "retryable"),
        [
            (errors.RateLimitError("x"), True),
            (errors.ServerError("x"), True),
            (errors.APIConnectionError("x"), True),
            (errors.StreamInterrupted("x"), True),
            (errors.StreamTimeout("x"), True),
            (errors.BadRequestError("x"), False),
            (errors.AuthenticationError("x"), False),
            (errors.NotFoundError("x"), False),
            (errors.PermissionDeniedError("x"), False),
            (errors.OutputValidationError("x"), False),
            (errors.StreamError("x"), False),
        ],
    )
    def test_retryable_by_kind(self, error: errors.LLMError, retryable: bool) -> None:
        assert error.retryable is retryable


class TestStreamErrorEvents:
    """An error event mid-stream is classed by its type and its code."""

    @pytest.mark.parametrize(
        ("body", "cls"),
        [
            ({"type": "overloaded_error", "message": "busy"}, errors.ServerStreamError),
            ({"type": "api_error"}, errors.ServerStreamError),
            ({"code": "rate_limit_exceeded", "message": "slow"}, errors.RateLimitStreamError),
            ({"code": "too_many_requests", "message": "slow"}, errors.RateLimitStreamError),
            ({"code": 503, "message": "vLLM down"}, errors.ServerStreamError),
            ({"type": "invalid_request_error", "message": "no"}, errors.StreamError),
            ("CUDA out of memory", errors.StreamError),
        ],
    )
    def test_classes(self, body: object, cls: type) -> None:
        error = errors.stream_error_event("openai", body)
        assert type(error) is cls and error.body == body and error.provider == "openai"

    def test_the_message_says_what_the_provider_said(self) -> None:
        error = errors.stream_error_event("groq", {"type": "server_error", "message": "boom"})
        assert str(error) == "groq stream error (server_error): boom"


class TestSecrets:
    """Keys never show: not in a message, not in a repr."""

    def test_scrub_hides_given_secrets_and_key_shapes(self) -> None:
        text = f"key {KEY} and api_key=abcdefghijkl and Bearer abcdefghijklmnop and mine-1234"
        scrubbed = errors.scrub(text, "mine-1234")
        assert KEY not in scrubbed and "abcdefghijkl" not in scrubbed
        assert "mine-1234" not in scrubbed and "api_key=***" in scrubbed

    def test_an_error_built_with_a_key_in_its_text_hides_it(self) -> None:
        error = errors.stream_error_event("openai", {"message": f"bad key {KEY}"})
        assert KEY not in str(error) and KEY not in repr(error)

    def test_with_partial_attaches_what_was_received(self) -> None:
        partial = rxllm.Response(text="so far")
        error = errors.ServerError("down").with_partial(partial)
        assert error.partial is partial and error.retryable
