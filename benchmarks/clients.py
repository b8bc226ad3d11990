"""The ways of reading one stream that the benchmarks compare, sync and asyncio.

Every reader makes one request to the benchmark server, reads the whole stream and
returns its text, so each run can be checked against `bodies.text(n)`:

- `raw`: the wire path's practical limit — `httpx2` line splitting + `json.loads`, no SDK
  (on the aiohttp transport: aiohttp's own line reader + `json.loads`);
- `sdk`: bare SDK iteration, `create(stream=True)` (OpenAI) / `messages.create(stream=True)`
  (Anthropic) / `responses.create(stream=True)` (OpenAI Responses), joining the text deltas;
- `helper`: the SDKs' own stream helpers with their accumulators
  (`chat.completions.stream()`, `messages.stream()`, `responses.stream()`), for reference;
- `rxllm`: `collect(llm.stream(p).pipe(accumulate(), take_until(never)))`.

Clients are made once and reused (connection pools stay warm), as an application would;
rxllm is given the very same SDK clients, so both sides have the same connection settings.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import anthropic
import httpx2
import openai
import reactivex

import rxllm
from benchmarks.bodies import Protocol
from rxllm import ops

__all__ = [
    "AsyncClients",
    "SyncClients",
    "has_aiohttp",
    "model_name",
    "rxllm_pipeline",
    "sdk_stream",
    "sdk_streaming_response",
]

MESSAGES = [{"role": "user", "content": "bench"}]
INPUT: list[Any] = MESSAGES
"""The same message as Responses API `input` items (typed for the SDK's item union)."""
MAX_TOKENS = 4096
STREAM_OPTIONS = {"include_usage": True}


def has_aiohttp() -> bool:
    """Whether the SDKs' aiohttp transport can be measured (`rxllm[aiohttp]`)."""
    return importlib.util.find_spec("aiohttp") is not None


def sdk_stream(clients: Any, protocol: Protocol, model: str) -> Any:
    """The bare SDK's streaming call for `model` on a `SyncClients` or `AsyncClients`
    (the async one returns an awaitable), so every reader sends the same request."""
    if protocol == "openai":
        return clients.openai.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options=STREAM_OPTIONS
        )
    if protocol == "openai-responses":
        return clients.openai.responses.create(model=model, input=INPUT, stream=True)
    return clients.anthropic.messages.create(
        model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
    )


def sdk_streaming_response(clients: Any, protocol: Protocol, model: str) -> Any:
    """The same request as `sdk_stream`, in the SDK's streaming-response mode (what rxllm
    uses): a context manager whose `.http_response` is the raw `httpx2` response."""
    if protocol == "openai":
        return clients.openai.chat.completions.with_streaming_response.create(
            model=model, messages=MESSAGES, stream=True, stream_options=STREAM_OPTIONS
        )
    if protocol == "openai-responses":
        return clients.openai.responses.with_streaming_response.create(
            model=model, input=INPUT, stream=True
        )
    return clients.anthropic.messages.with_streaming_response.create(
        model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
    )


def model_name(n: int, *, every: float = 0.0, tag: str = "") -> str:
    """The model name that asks the benchmark server for this stream."""
    query: dict[str, Any] = {"n": n}
    if every:
        query["every"] = every
    if tag:
        query["tag"] = tag
    return "bench?" + urlencode(query)


def rxllm_pipeline(llm: rxllm.LLM) -> reactivex.Observable[Any]:
    """The typical pipeline the issue measures: snapshots, stoppable, never stopped."""
    return llm.stream("bench").pipe(ops.accumulate(), ops.take_until(reactivex.never()))


def _raw_request(protocol: Protocol, url: str, model: str) -> tuple[str, dict[str, Any]]:
    if protocol == "openai":
        body = {
            "model": model,
            "messages": MESSAGES,
            "stream": True,
            "stream_options": STREAM_OPTIONS,
        }
        return f"{url}/v1/chat/completions", body
    if protocol == "openai-responses":
        return f"{url}/v1/responses", {"model": model, "input": MESSAGES, "stream": True}
    body = {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True}
    return f"{url}/v1/messages", body


def _raw_line(protocol: Protocol, line: str, parts: list[str]) -> None:
    if not line.startswith("data: "):
        return  # "event:" lines, blank lines
    data = line[6:]
    if data == "[DONE]":
        return
    event = json.loads(data)
    if protocol == "openai":
        choices = event.get("choices")
        if choices:
            content = choices[0]["delta"].get("content")
            if content:
                parts.append(content)
    elif protocol == "openai-responses":
        if event.get("type") == "response.output_text.delta":
            parts.append(event["delta"])
    elif event.get("type") == "content_block_delta":
        delta = event["delta"]
        if delta.get("type") == "text_delta":
            parts.append(delta["text"])


def _llm(
    cache: dict[tuple[Protocol, str], rxllm.LLM], protocol: Protocol, model: str, **client: Any
) -> rxllm.LLM:
    """The rxllm model of `protocol` for `model` on the given SDK client, made once."""
    llm = cache.get((protocol, model))
    if llm is None:
        if protocol == "anthropic":
            llm = rxllm.anthropic(model, **client)
        else:
            api = "responses" if protocol == "openai-responses" else "chat"
            llm = rxllm.openai(model, api=api, **client)
        cache[protocol, model] = llm
    return llm


class SyncClients:
    """Sync readers, with their clients made once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx2.Client(timeout=120.0)
        self.openai = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=url, api_key="bench", max_retries=0)
        self._llms: dict[tuple[Protocol, str], rxllm.LLM] = {}

    def llm(self, protocol: Protocol, model: str) -> rxllm.LLM:
        """An rxllm model on the same SDK client as the bare readers (one per model name)."""
        return _llm(
            self._llms,
            protocol,
            model,
            client=self.anthropic if protocol == "anthropic" else self.openai,
        )

    def reader(self, kind: str, protocol: Protocol) -> Callable[[str], str]:
        """The function that reads one stream of `model` and returns its text."""
        return {
            "raw": lambda model: self.raw(protocol, model),
            "sdk": lambda model: self.sdk(protocol, model),
            "helper": lambda model: self.helper(protocol, model),
            "rxllm": lambda model: self.rxllm(protocol, model),
        }[kind]

    def raw(self, protocol: Protocol, model: str) -> str:
        url, body = _raw_request(protocol, self.url, model)
        parts: list[str] = []
        with self.http.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                _raw_line(protocol, line, parts)
        return "".join(parts)

    def sdk(self, protocol: Protocol, model: str) -> str:
        parts: list[str] = []
        if protocol == "openai":
            stream = self.openai.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, stream_options=STREAM_OPTIONS
            )
            for chunk in stream:
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        parts.append(content)
        elif protocol == "openai-responses":
            responses: Any = self.openai.responses.create(model=model, input=INPUT, stream=True)
            for event in responses:
                if event.type == "response.output_text.delta":
                    parts.append(event.delta)
        else:
            events = self.anthropic.messages.create(
                model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
            )
            for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
        return "".join(parts)

    def helper(self, protocol: Protocol, model: str) -> str:
        if protocol == "openai":
            with self.openai.chat.completions.stream(
                model=model, messages=MESSAGES, stream_options=STREAM_OPTIONS
            ) as stream:
                for _event in stream:
                    pass
                return stream.get_final_completion().choices[0].message.content or ""
        if protocol == "openai-responses":
            with self.openai.responses.stream(model=model, input=INPUT) as helper:
                for _step in helper:
                    pass
                return helper.get_final_response().output_text
        with self.anthropic.messages.stream(
            model=model, messages=MESSAGES, max_tokens=MAX_TOKENS
        ) as stream:
            for _event in stream:
                pass
            block = stream.get_final_message().content[0]
            return block.text if block.type == "text" else ""

    def rxllm(self, protocol: Protocol, model: str) -> str:
        return rxllm.collect(rxllm_pipeline(self.llm(protocol, model))).text

    def close(self) -> None:
        self.http.close()
        self.openai.close()
        self.anthropic.close()


class AsyncClients:
    """Asyncio readers; make them inside the loop that uses them."""

    def __init__(
        self, url: str, *, max_connections: int | None = None, transport: str = "httpx"
    ) -> None:
        self.url = url
        self.transport = transport
        limits = httpx2.Limits(
            max_connections=max_connections or 1000, max_keepalive_connections=100
        )
        self.http = httpx2.AsyncClient(timeout=120.0, limits=limits)
        http_openai = http_anthropic = None
        if transport == "aiohttp":  # the SDKs' own aiohttp transport (their aiohttp extra)
            http_openai = openai.DefaultAioHttpClient(limits=limits)
            http_anthropic = anthropic.DefaultAioHttpClient(limits=limits)
        elif max_connections is not None:
            http_openai = openai.DefaultAsyncHttpxClient(limits=limits)
            http_anthropic = anthropic.DefaultAsyncHttpxClient(limits=limits)
        self.openai = openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key="bench", max_retries=0, http_client=http_openai
        )
        self.anthropic = anthropic.AsyncAnthropic(
            base_url=url, api_key="bench", max_retries=0, http_client=http_anthropic
        )
        self._llms: dict[tuple[Protocol, str], rxllm.LLM] = {}
        self._session: Any = None  # the raw reader's aiohttp session, on that transport

    def llm(self, protocol: Protocol, model: str) -> rxllm.LLM:
        """An rxllm model on the same SDK client as the bare readers (one per model name)."""
        return _llm(
            self._llms,
            protocol,
            model,
            async_client=self.anthropic if protocol == "anthropic" else self.openai,
        )

    def reader(self, kind: str, protocol: Protocol) -> Callable[[str], Awaitable[str]]:
        """The coroutine function that reads one stream of `model` and returns its text."""
        return {
            "raw": lambda model: self.raw(protocol, model),
            "sdk": lambda model: self.sdk(protocol, model),
            "rxllm": lambda model: self.rxllm(protocol, model),
        }[kind]

    async def raw(self, protocol: Protocol, model: str) -> str:
        url, body = _raw_request(protocol, self.url, model)
        parts: list[str] = []
        if self.transport == "aiohttp":
            return await self._raw_aiohttp(protocol, url, body)
        async with self.http.stream("POST", url, json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                _raw_line(protocol, line, parts)
        return "".join(parts)

    async def _raw_aiohttp(self, protocol: Protocol, url: str, body: dict[str, Any]) -> str:
        import aiohttp  # the SDKs' aiohttp extra

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000), timeout=aiohttp.ClientTimeout(120)
            )
        parts: list[str] = []
        async with self._session.post(url, json=body) as response:
            response.raise_for_status()
            async for line in response.content:  # aiohttp's line reader
                _raw_line(protocol, line.decode().rstrip("\r\n"), parts)
        return "".join(parts)

    async def sdk(self, protocol: Protocol, model: str) -> str:
        parts: list[str] = []
        if protocol == "openai":
            stream = await self.openai.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, stream_options=STREAM_OPTIONS
            )
            async for chunk in stream:
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        parts.append(content)
        elif protocol == "openai-responses":
            responses: Any = await self.openai.responses.create(
                model=model, input=INPUT, stream=True
            )
            async for event in responses:
                if event.type == "response.output_text.delta":
                    parts.append(event.delta)
        else:
            events = await self.anthropic.messages.create(
                model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
            )
            async for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
        return "".join(parts)

    async def rxllm(self, protocol: Protocol, model: str) -> str:
        return (await rxllm.acollect(rxllm_pipeline(self.llm(protocol, model)))).text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.http.aclose()
        await self.openai.close()
        await self.anthropic.close()
