"""`web.sse`: one event per chunk with its fields, a typed error event, a `done` event."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pydantic
import pytest
import reactivex
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import rxllm
from rxllm import Chunk, ToolCallDelta, Usage, ops, web

from .conftest import parse_events, serve

Events = list[tuple[str | None, str]]


class Endpoint:
    """GET /events answers with `sse` of whatever source the test set."""

    source: Callable[[], reactivex.Observable[Any]] | None = None

    async def handle(self, request: Request) -> Response:
        assert self.source is not None
        return web.sse(self.source())


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Endpoint]]:
    endpoint = Endpoint()
    with serve(Starlette(routes=[Route("/events", endpoint.handle)])) as url:
        yield url, endpoint


@pytest.fixture
def stream(
    served: tuple[str, Endpoint], client: httpx.Client
) -> Callable[[Callable[[], reactivex.Observable[Any]]], Events]:
    url, endpoint = served

    def run(source: Callable[[], reactivex.Observable[Any]]) -> Events:
        endpoint.source = source
        response = client.get(f"{url}/events")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        return parse_events(response.content)

    return run


FIELDS = {
    "content", "thinking", "refusal", "audio", "audio_transcript", "tool_calls",
    "tool_results", "finish_reason", "usage", "model", "id", "provider",
}  # fmt: skip


class TestChunks:
    """Each chunk is one `data:` event holding the chunk's own fields."""

    def test_one_event_per_chunk_then_done(self, stream: Callable[..., Events]) -> None:
        usage = Usage(input_tokens=2, output_tokens=2, total_tokens=4)
        events = stream(lambda: rxllm.scripted(["Hel", "lo"], usage=usage).stream("hi"))
        assert [name for name, _ in events] == [None, None, "done"]
        first, last = (json.loads(data) for _, data in events[:2])
        assert set(first) == FIELDS
        assert (first["content"], first["provider"], first["finish_reason"]) == (
            "Hel",
            "scripted",
            None,
        )
        assert last["content"] == "lo"
        assert last["finish_reason"] == "stop"
        assert last["usage"]["total_tokens"] == 4
        assert events[-1] == ("done", "{}")

    def test_fields_as_chunk_names_them(self, stream: Callable[..., Events]) -> None:
        pcm = bytes(range(256))
        script = [
            Chunk(thinking="hmm", audio=pcm, audio_transcript="Hi"),
            Chunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="f", arguments="{}"),)),
        ]
        events = stream(lambda: rxllm.scripted(script).stream("hi"))
        audio, tools = (json.loads(data) for _, data in events[:2])
        assert audio["thinking"] == "hmm"
        assert base64.b64decode(audio["audio"]) == pcm
        assert audio["audio_transcript"] == "Hi"
        assert tools["tool_calls"] == [{"index": 0, "id": "c1", "name": "f", "arguments": "{}"}]

    def test_tool_results_of_a_tool_loop(self, stream: Callable[..., Events]) -> None:
        def add(a: int, b: int) -> int:
            """Add."""
            return a + b

        delta = ToolCallDelta(index=0, id="c1", name="add", arguments='{"a": 1, "b": 2}')
        call = Chunk(tool_calls=(delta,))
        llm = rxllm.scripted([call], then=[["3"]])
        events = stream(lambda: llm.stream("1+2", tools=[add]).pipe(ops.tool_loop()))
        chunks = [json.loads(data) for name, data in events if name is None]
        [step_end] = [c for c in chunks if c["tool_results"]]
        [result] = step_end["tool_results"]
        assert (result["call"]["id"], result["output"], result["content"]) == ("c1", 3, "3")
        assert chunks[-1]["content"] == "3"

    def test_other_items_as_json(self, stream: Callable[..., Events]) -> None:
        events = stream(lambda: rxllm.scripted(["Hi ", "there."]).stream("x").pipe(ops.text()))
        assert events == [(None, '"Hi "'), (None, '"there."'), ("done", "{}")]

    def test_structured_output_as_its_fields(self, stream: Callable[..., Events]) -> None:
        class City(pydantic.BaseModel):
            name: str
            people: int

        script = ['{"name": "Oslo",', ' "people": 700000}']
        events = stream(lambda: rxllm.scripted(script).stream("x").pipe(ops.partial(City)))
        values = [json.loads(data) for name, data in events if name is None]
        assert values[-1] == {"name": "Oslo", "people": 700000}


class TestErrors:
    """A failure ends the stream with `event: error`: the error's class and message."""

    def test_error_event(self, stream: Callable[..., Events]) -> None:
        error = rxllm.ServerError("overloaded, try again")
        events = stream(lambda: rxllm.scripted(["Hel", "lo"], error=error).stream("hi"))
        assert [json.loads(data)["content"] for name, data in events if name is None] == [
            "Hel",
            "lo",
        ]
        assert events[-1][0] == "error"
        assert json.loads(events[-1][1]) == {
            "type": "ServerError",
            "message": "overloaded, try again",
        }

    def test_no_key_in_the_error_event(self, stream: Callable[..., Events]) -> None:
        def leak(item: Any) -> Any:
            raise ValueError("bad api_key=sk-live-0123456789abcdef")

        events = stream(lambda: rxllm.scripted("Hi.").stream("x").pipe(ops.text(), _map(leak)))
        assert events[-1][0] == "error"
        sent = json.loads(events[-1][1])
        assert sent["type"] == "ValueError"
        assert "0123456789abcdef" not in sent["message"]

    def test_not_json_is_an_error_event(self, stream: Callable[..., Events]) -> None:
        events = stream(lambda: reactivex.of(object()))
        assert events[-1][0] == "error"
        assert json.loads(events[-1][1])["type"] == "PydanticSerializationError"

    def test_not_an_observable(self) -> None:
        with pytest.raises(TypeError, match=r"call llm\.stream\(prompt\)"):
            web.sse(rxllm.scripted("Hi."))  # type: ignore[arg-type]


def _map(
    fn: Callable[[Any], Any],
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    from reactivex import operators as rx

    return rx.map(fn)
