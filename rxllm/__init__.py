"""rxllm: every LLM call is a cold RxPY Observable of normalized chunks.

>>> import rxllm
>>> from rxllm import ops
>>> llm = rxllm.scripted("Reactive streams, for LLMs.")
>>> llm.stream("Describe rxllm").pipe(ops.to_response()).run().text
'Reactive streams, for LLMs.'
"""

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
)
from rxllm.llm import LLM, Request
from rxllm.models import Chunk, Response, ToolCall, ToolCallDelta, Usage
from rxllm.ops._audio_segments import AudioSegment
from rxllm.ops._tool_results import ToolResult
from rxllm.providers.anthropic import anthropic_llm as anthropic
from rxllm.providers.local import local
from rxllm.providers.openai import openai_llm as openai
from rxllm.providers.scripted import scripted
from rxllm.race import race
from rxllm.sinks import acollect, aiterate, collect, iterate, write_wav
from rxllm.tee import AudioSplit, audio_split, tee

__all__ = [
    "LLM",
    "APIConnectionError",
    "APIStatusError",
    "Accumulator",
    "AudioSegment",
    "AudioSplit",
    "AuthenticationError",
    "BadRequestError",
    "Chunk",
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
    "acollect",
    "aiterate",
    "anthropic",
    "audio_split",
    "batch",
    "collect",
    "errors",
    "iterate",
    "local",
    "openai",
    "ops",
    "race",
    "scripted",
    "tee",
    "write_wav",
]

__version__ = "0.1.0"
