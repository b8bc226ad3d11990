"""A web chat on rxllm: a Starlette app and one HTML page, no build step.

The page streams the answer as it comes (the AI SDK's UI message stream, so a React
`useChat` front end could talk to the same endpoint), counts the tokens live, and has a
Stop button that really stops the model: it aborts the fetch, the server sees the
connection close and cancels the call.

Run (needs `pip install 'rxllm[web,local]'`), then open http://127.0.0.1:8000 :

    python examples/web_chat/app.py                         # the local model: no key
    python examples/web_chat/app.py --model scripted        # a scripted demo, no model
    python examples/web_chat/app.py --model openai:gpt-4o-mini          # OPENAI_API_KEY
    python examples/web_chat/app.py --model anthropic:claude-sonnet-4-5 # ANTHROPIC_API_KEY
    python examples/web_chat/app.py --model openai:qwen2.5:0.5b --base-url http://localhost:11434/v1

The server part is `create_app`; tests build it with a model of their own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

import rxllm
from rxllm import web

PAGE = Path(__file__).with_name("index.html")

DEMO = (
    "rxllm turns every LLM call into a cold RxPY Observable of chunks. This page reads it "
    "as the AI SDK's UI message stream: each word you see arrived as its own event, and the "
    "counter below counts them as they come. Press Stop at any moment: the browser aborts "
    "its fetch, the server notices the connection close, disposes the subscription, and "
    "the provider's HTTP response is closed, so the model stops generating and stops "
    "billing. Nothing in this answer is generated after you stop reading it. "
) * 3


def create_app(llm: rxllm.LLM, *, system: str | None = None) -> Starlette:
    """The chat: the page at `/`, the model's name at `/api/info`, the chat at `/api/chat`
    (a `useChat`-compatible endpoint: UI messages in, a UI message stream out)."""

    async def chat(request: Request) -> Response:
        try:
            messages = web.ui_messages(await request.json(), provider=llm.provider)
        except ValueError as error:  # not a useChat body: say what is wrong
            return JSONResponse({"error": str(error)}, status_code=400)
        return web.ui_message_stream(llm.stream(messages=messages, system=system))

    async def info(request: Request) -> Response:
        return JSONResponse({"provider": llm.provider, "model": llm.model})

    async def page(request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html")

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/info", info),
            Route("/api/chat", chat, methods=["POST"]),
        ]
    )


def model_from(name: str, base_url: str | None = None) -> rxllm.LLM:
    """The LLM a `--model` string names: "local", "scripted", or "provider:model".

    With `rxllm.model` (model strings for every provider) any of its strings works; without
    it, "openai:..." (any OpenAI-compatible server with `base_url`) and "anthropic:...".
    """
    if name == "scripted":
        return rxllm.scripted(DEMO, delay=0.06)
    options: dict[str, Any] = {} if base_url is None else {"base_url": base_url}
    if hasattr(rxllm, "model"):
        return rxllm.model(name, **options)  # type: ignore[no-any-return]
    if name == "local":
        return rxllm.local()
    provider, _, model = name.partition(":")
    if provider == "openai" and model:
        return rxllm.openai(model, **options)
    if provider == "anthropic" and model:
        return rxllm.anthropic(model, **options)
    raise SystemExit(
        f"--model {name!r}: use 'local', 'scripted', 'openai:<model>' (with --base-url for "
        "any OpenAI-compatible server) or 'anthropic:<model>'"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and serve the chat with uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="local", help="local (default), scripted, openai:...")
    parser.add_argument("--base-url", help="an OpenAI-compatible server, e.g. Ollama's /v1")
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    app = create_app(model_from(args.model, args.base_url), system=args.system)
    print(f"web chat on http://{args.host}:{args.port} ({args.model})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
