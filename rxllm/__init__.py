"""rxllm: every LLM call is a cold RxPY Observable of normalized chunks.

Models: `openai(model)`, `anthropic(model)`, `local()` (an embedded model, no key),
`scripted(text)` (a replay, for tests) each return an `LLM`, and so does `model("groq:...")`
for any provider by name (`register_provider` adds names); `LLM.stream(prompt)` is one
call as an `Observable[Chunk]`, started by subscribing and cancelled by disposing.

Data: `Chunk` (one increment), `Response` (the materialized answer, `.raw` the SDK's
own object, `.cost` its price), `Usage`, `UsageLimits`, `ToolCall`, `ToolResult`,
`AudioSegment`, `Snapshot`. Input parts: `Image`, `Audio`, `Document` (a PDF), in a prompt
list (`llm.stream(["What is this?", rxllm.Image("cat.png")])`) or a user message's content.

Operators (`rxllm.ops`): `accumulate`, `take_until`, `to_response`, `text`, `sentences`,
`smooth`, `partial`, `tool_calls`, `tool_results`, `audio_segments`, `retry`,
`on_finish`. Functions: `tee`, `audio_split`, `race`, `fallback`, `batch`; terminals
`collect`, `acollect`, `iterate`, `aiterate`, `write_wav`, `display` (live Markdown in a
notebook). Errors (`rxllm.errors`): `LLMError` and its subclasses, each with `.partial`,
`.provider`, `.retryable`. Testing: `rxllm.testing.Server`, a loopback server speaking
every protocol rxllm does.

>>> import rxllm
>>> from rxllm import ops
>>> llm = rxllm.scripted("Reactive streams, for LLMs.")
>>> llm.stream("Describe rxllm").pipe(ops.to_response()).run().text
'Reactive streams, for LLMs.'
"""

import importlib
from typing import TYPE_CHECKING, Any

from rxllm import errors, ops
from rxllm.accumulator import Accumulator, Snapshot
from rxllm.batch import batch
from rxllm.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    LLMError,
    NotFoundError,
    OutputValidationError,
    PermissionDeniedError,
    RateLimitError,
    RateLimitStreamError,
    ServerError,
    ServerStreamError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    UsageLimitExceeded,
)
from rxllm.fallback import fallback
from rxllm.limits import UsageLimits
from rxllm.llm import LLM
from rxllm.models import Chunk, Response, ToolCall, ToolCallDelta, ToolResult, Usage
from rxllm.notebook import display
from rxllm.ops._audio_segments import AudioSegment
from rxllm.parts import Audio, Document, Image
from rxllm.providers.local import local
from rxllm.providers.scripted import scripted
from rxllm.race import race
from rxllm.registry import model, register_provider
from rxllm.request import Request
from rxllm.tee import AudioSplit, audio_split, tee
from rxllm.terminals import acollect, aiterate, collect, iterate, write_wav

__all__ = [
    "LLM",
    "APIConnectionError",
    "APIStatusError",
    "Accumulator",
    "Audio",
    "AudioSegment",
    "AudioSplit",
    "AuthenticationError",
    "BadRequestError",
    "Chunk",
    "Document",
    "Image",
    "LLMError",
    "NotFoundError",
    "OutputValidationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitStreamError",
    "Request",
    "Response",
    "ServerError",
    "ServerStreamError",
    "Snapshot",
    "StreamError",
    "StreamInterrupted",
    "StreamTimeout",
    "ToolCall",
    "ToolCallDelta",
    "ToolResult",
    "Usage",
    "UsageLimitExceeded",
    "UsageLimits",
    "acollect",
    "aiterate",
    "anthropic",
    "audio_split",
    "batch",
    "collect",
    "display",
    "errors",
    "fallback",
    "iterate",
    "local",
    "model",
    "openai",
    "ops",
    "race",
    "register_provider",
    "scripted",
    "tee",
    "write_wav",
]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rxllm.providers.anthropic import anthropic_llm as anthropic
    from rxllm.providers.openai import openai_llm as openai

# The SDKs take over a second to import (anthropic alone ~1.4 s); load them when a provider
# is first asked for, so `rxllm.local()` and the CLI start quickly.
_LAZY = {
    "openai": ("rxllm.providers.openai", "openai_llm"),
    "anthropic": ("rxllm.providers.anthropic", "anthropic_llm"),
}


def __getattr__(name: str) -> Any:
    if name in ("web", "ray"):  # extras rxllm[web], rxllm[ray]: imported only when used
        return importlib.import_module(f"rxllm.{name}")
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rxllm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
