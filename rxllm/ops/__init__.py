"""Operators over LLM streams, each usable in `observable.pipe(...)`.

>>> import rxllm
>>> from rxllm import ops
>>> rxllm.scripted("One. Two.").stream("count").pipe(ops.to_response()).run().text
'One. Two.'
"""

from rxllm.ops._accumulate import accumulate
from rxllm.ops._retry import retry
from rxllm.ops._take_until import take_until
from rxllm.ops._text import text
from rxllm.ops._to_response import to_response

__all__ = ["accumulate", "retry", "take_until", "text", "to_response"]
