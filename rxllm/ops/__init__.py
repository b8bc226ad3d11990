"""Operators over LLM streams, each usable in `observable.pipe(...)`.

On chunks: `accumulate` (a `Snapshot` per chunk), `take_until` (stop, cancelling the
call), `to_response`, `text`, `sentences`, `smooth`, `partial(Model)` (structured
output as it streams), `tool_calls`, `audio_segments`, `retry`, `on_finish`; on tool
calls: `tool_results(registry)`; on a call with tools: `tool_loop` (call, run the tools,
call again, as one stream). Each one's docstring has a marble sketch and an example.

>>> import rxllm
>>> from rxllm import ops
>>> rxllm.scripted("One. Two.").stream("count").pipe(ops.to_response()).run().text
'One. Two.'
"""

from rxllm.ops._accumulate import accumulate
from rxllm.ops._audio_segments import audio_segments
from rxllm.ops._on_finish import Finish, on_finish
from rxllm.ops._partial import partial, partial_type
from rxllm.ops._retry import retry
from rxllm.ops._sentences import sentences
from rxllm.ops._smooth import smooth
from rxllm.ops._take_until import take_until
from rxllm.ops._text import text
from rxllm.ops._to_response import to_response
from rxllm.ops._tool_calls import tool_calls
from rxllm.ops._tool_loop import tool_loop
from rxllm.ops._tool_results import tool_results

__all__ = [
    "Finish",
    "accumulate",
    "audio_segments",
    "on_finish",
    "partial",
    "partial_type",
    "retry",
    "sentences",
    "smooth",
    "take_until",
    "text",
    "to_response",
    "tool_calls",
    "tool_loop",
    "tool_results",
]
