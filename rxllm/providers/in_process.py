"""The codec of the providers that run in this process (`local`, `scripted`).

They speak no wire protocol: their chunks are made where the answer is, so the codec only
says how their conversations are written (OpenAI's format, as llama.cpp's chat completion
takes it), and it sends no credentials. Each provider overrides what differs: the local
model builds llama-cpp's own completion as `Response.raw`, a script continues a replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rxllm.request import Request, with_turn

if TYPE_CHECKING:
    from rxllm.messages import MessageFormat
    from rxllm.models import Response, ToolResult

__all__ = ["InProcessCodec"]


class InProcessCodec:
    """A `rxllm.codec.Codec` for a provider in this process: OpenAI's message format, no
    native final object, no continuation, no credentials."""

    message_format: MessageFormat = "openai"

    def raw_response(self, events: Sequence[Any], response: Response) -> Any:
        """Nothing native to build (None)."""
        return None

    def continuation(self, request: Request, text: str) -> Request | None:
        """None: an answer cannot be continued."""
        return None

    def follow_up(
        self, request: Request, answer: Response, results: Sequence[ToolResult]
    ) -> Request:
        """The next call of a tool loop, in OpenAI's format."""
        return with_turn(request, answer, results, "openai")

    def secrets(self) -> tuple[str, ...]:
        """None: nothing is sent anywhere."""
        return ()
