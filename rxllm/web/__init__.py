"""Streams to a browser: Server-Sent Events and the AI SDK's UI message stream (`useChat`).

Both are Starlette responses (a FastAPI endpoint returns them as they are) that cancel the
call, closing the provider's HTTP response, as soon as the client goes away: a closed tab,
an aborted fetch, `useChat`'s `stop()`, also while the model is silent. Errors reach the
page as a typed error event with the message, never a key.

- `sse(source)`: one `data:` event per chunk, its fields as JSON.
- `ui_message_stream(source, *, message_id=None)`: the Vercel AI SDK UI message stream
  protocol (v1), what `useChat` reads; each call of an `ops.tool_loop` is a step.
- `ui_messages(body)`: a `useChat` request's messages as rxllm messages.

A chat endpoint for `useChat`:

>>> import rxllm
>>> from rxllm import web
>>> from starlette.applications import Starlette
>>> from starlette.routing import Route
>>> llm = rxllm.scripted("Hello there.")
>>> async def chat(request):
...     messages = web.ui_messages(await request.json(), provider=llm.provider)
...     return web.ui_message_stream(llm.stream(messages=messages))
>>> app = Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])

Needs the `web` extra: `pip install 'rxllm[web]'`.
"""

try:
    import starlette  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "rxllm.web needs Starlette: pip install 'rxllm[web]' (or pip install starlette)"
    ) from error

from rxllm.web._response import EventStream, sse
from rxllm.web._ui_messages import ui_messages
from rxllm.web._ui_stream import UIMessageEvents, ui_message_stream

__all__ = ["EventStream", "UIMessageEvents", "sse", "ui_message_stream", "ui_messages"]
