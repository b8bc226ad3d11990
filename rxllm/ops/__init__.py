"""Operators over LLM streams, each usable in `observable.pipe(...)`.

>>> import rxllm
>>> from rxllm import ops
>>> rxllm.scripted("One. Two.").stream("count").pipe(ops.to_response()).run().text
'One. Two.'
"""

from rxllm.ops._to_response import to_response

__all__ = ["to_response"]
