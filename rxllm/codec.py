"""The provider contract: what every provider implements, in two small protocols.

A **provider** (`Provider`) is a model reached one way — OpenAI's SDK, Anthropic's, the
embedded local model, a script. It validates a request for itself, makes one call of it
(a `rxllm.bridge.Call`, which the bridge turns into an Observable), and knows the
credentials no message may show.

A **codec** (`Codec`) is the rules of one wire protocol for one call: Chat Completions,
Anthropic Messages, the Responses API. It is made by the provider for each request and
travels with the call's chunks, so everything that reads them later — `Chunk.raw`,
`Response.raw`, `Response.message()`, a retry that resumes, a tool loop's next call — asks
the codec, never a registry keyed by a provider's name (`"groq"` speaks OpenAI's protocol;
Bedrock speaks Anthropic's). The codecs of HTTP protocols also map the protocol's events
to chunks (`StreamCodec.events`), purely, so each mapping is tested without a network.

A new wire protocol is one new codec; a new service speaking a known protocol is a new
provider configuration, not a new codec (`docs/architecture.md`, `CONTRIBUTING.md`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rxllm.bridge import Call
    from rxllm.messages import MessageFormat
    from rxllm.models import Chunk, Response, ToolResult
    from rxllm.request import Request

__all__ = ["Codec", "EventMapper", "Provider", "StreamCodec"]


class Codec(Protocol):
    """The rules of one wire protocol, for one call (it holds what reading the call's
    answer needs to know of its request: the tools and the response format)."""

    @property
    def message_format(self) -> MessageFormat:
        """How this protocol writes a conversation ("openai" or "anthropic")."""
        ...

    def raw_response(self, events: Sequence[Any], response: Response) -> Any:
        """The provider-native final object (`Response.raw`) from the SDK event objects of
        the answer's chunks (`Chunk.raw` of each, in order, chunks without one left out)
        and the `Response` being built; built with the SDK's own accumulator where the SDK
        has one. Runs only when `Response.raw` is read. None when there is nothing native."""
        ...

    def continuation(self, request: Request, text: str) -> Request | None:
        """The request that continues an answer after `text` was delivered (`ops.retry`,
        `rxllm.fallback`); None when this protocol cannot continue one."""
        ...

    def follow_up(
        self, request: Request, answer: Response, results: Sequence[ToolResult]
    ) -> Request:
        """The next request of a tool loop: `request` plus the assistant's `answer` and the
        `results` of its tool calls, in this protocol's form."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """The credentials this call may send: no error message, repr or log shows them."""
        ...


class EventMapper(Protocol):
    """Turns one call's protocol events (parsed JSON) into `Chunk`s; one per call (it may
    keep state, e.g. Anthropic's block index -> tool ordinal table)."""

    def map(self, event: str | None, data: Any, payload: bytes | None = None) -> Chunk | None:
        """The chunk for this event, or None for events that carry nothing (pings).

        `payload` is the event's JSON text, kept so `Chunk.raw` can be built from it on
        demand (`StreamCodec.raw_event`). Raises `StreamError` for an error event.
        """
        ...

    def end(self) -> None:
        """The body ended: raise `StreamInterrupted` if the provider never said it was done."""
        ...

    @property
    def done(self) -> bool:
        """True after the provider's terminating event (`[DONE]`, `message_stop`)."""
        ...


class StreamCodec(Codec, Protocol):
    """A codec of a protocol streamed as server-sent events of JSON."""

    def events(self) -> EventMapper:
        """A fresh event mapper for one call; its chunks carry this codec."""
        ...

    def raw_event(self, data: bytes) -> Any:
        """The SDK's own event object (`Chunk.raw`) from one event's JSON bytes.

        A codec whose mapper gives a text chunk an int instead of its bytes (a text delta
        that says nothing but its text, e.g. Anthropic's: what its content block's index
        and the text rebuild exactly) also has `text_event(index, text)`, which rebuilds
        it: a long answer then keeps no bytes per chunk for `Response.raw`.
        """
        ...


class Provider(Protocol):
    """What an `LLM` is bound to: a model reached one way, making one call per subscription."""

    @property
    def name(self) -> str:
        """The provider's name as users see it (`Chunk.provider`): "openai", "groq", ..."""
        ...

    @property
    def model(self) -> str:
        """The model name requests are sent with."""
        ...

    def check(self, request: Request) -> None:
        """Raise `ValueError` for what this provider cannot take (before any request)."""
        ...

    def codec(self, request: Request) -> Codec:
        """The codec of one call of `request`."""
        ...

    def make_call(self, request: Request) -> Call:
        """Build one call (runs at subscription; may raise e.g. `AuthenticationError`)."""
        ...
