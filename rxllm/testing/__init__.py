"""Test helpers: a loopback server that speaks the OpenAI (Chat Completions and Responses)
and Anthropic streaming APIs.

`Server` answers the real SDKs (and so `rxllm.openai(..., base_url=server.url)` and
`rxllm.anthropic(..., base_url=server.url)`) from `Script`s: text or chunks, delays, HTTP
errors, error events, malformed events, dropped or hanging connections. It records every
request as a `RecordedRequest`, including how many chunks it wrote and when it noticed the
client leave, which is what cancellation tests assert on.

>>> import openai
>>> from rxllm.testing import Script, Server
>>> with Server(Script("Hello there.")) as server:
...     client = openai.OpenAI(base_url=server.url, api_key="test")
...     stream = client.chat.completions.create(
...         model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
...     "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
'Hello there.'
"""

from rxllm.testing._record import RecordedRequest
from rxllm.testing._script import Script
from rxllm.testing._server import Server

__all__ = ["RecordedRequest", "Script", "Server"]
