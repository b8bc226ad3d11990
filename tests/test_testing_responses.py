"""`rxllm.testing.Server` speaks the Responses API from the same scripts: what the bare SDK's
own helpers read from it (no rxllm in the reading)."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

import rxllm
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing import Script, Server


def client(server: Server, suffix: str = "") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + suffix, api_key="test", max_retries=0)


def final(server: Server, **kw: object) -> openai.types.responses.ParsedResponse[None]:
    with client(server).responses.stream(model="m", input="hi", **kw) as stream:  # type: ignore[call-overload]
        response: openai.types.responses.ParsedResponse[None] = stream.get_final_response()
        return response


def test_every_kind_of_item_reaches_the_sdks_final_response(server: Server) -> None:
    server.push(
        Script(
            [
                Chunk(thinking="Think."),
                Chunk(thinking="\n\nMore."),
                "Hello ",
                Chunk(content="world.", refusal="But no."),
                Chunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="f", arguments="{"),)),
                Chunk(tool_calls=(ToolCallDelta(index=0, arguments="}"),)),
                Chunk(tool_calls=(ToolCallDelta(index=1, name="g"),)),
            ],
            usage=Usage(input_tokens=3, output_tokens=8, cache_read_tokens=1, reasoning_tokens=2),
            model="gpt-test",
        )
    )
    response = final(server)
    reasoning, message, first, second = response.output
    assert [s.text for s in reasoning.summary] == ["Think.", "More."]  # type: ignore[union-attr]
    assert [part.type for part in message.content] == ["output_text", "refusal"]  # type: ignore[union-attr]
    assert response.output_text == "Hello world."
    assert (first.call_id, first.name, first.arguments) == ("call_1", "f", "{}")  # type: ignore[union-attr]
    assert second.name == "g" and second.call_id.startswith("call_")  # type: ignore[union-attr]
    assert response.status == "completed" and response.model == "gpt-test"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.total_tokens) == (3, 11)
    assert response.usage.input_tokens_details.cached_tokens == 1
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    assert server.last.protocol == "openai-responses"


def test_sequence_numbers_count_every_event(server: Server) -> None:
    server.push(Script("One two three."))
    events = list(client(server).responses.create(model="m", input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_length_and_content_filter_are_incomplete_responses(
    server: Server, finish: str, reason: str
) -> None:
    server.push(Script(["Cut", Chunk(finish_reason=finish)]))
    events = list(client(server).responses.create(model="m", input="hi", stream=True))
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == reason  # type: ignore[union-attr]
    assert last.response.output[0].status == "incomplete"  # type: ignore[union-attr]


def test_the_v1_path_and_the_default_usage(server: Server) -> None:
    server.push(Script("A reply."))
    list(
        client(server, "/v1").responses.create(
            model="m",
            instructions="Be kind.",
            input=[{"role": "user", "content": "two words"}],
            stream=True,
        )
    )
    assert server.last.path == "/v1/responses"
    server.push(Script("A reply."))
    events = list(client(server).responses.create(model="m", input="three words here", stream=True))
    usage = events[-1].response.usage  # type: ignore[union-attr]
    assert (usage.input_tokens, usage.output_tokens) == (3, 2)  # words asked, chunks sent


def test_errors_as_failed_responses_or_error_events(server: Server) -> None:
    server.push(Script(["Hi"], error_event="server_error"))
    failed = list(client(server).responses.create(model="m", input="hi", stream=True))[-1]
    assert failed.type == "response.failed"
    assert failed.response.error.code == "server_error"  # type: ignore[union-attr]
    assert failed.response.output[0].content[0].text == "Hi"  # type: ignore[union-attr]
    server.push(Script(["Hi"], error_event={"type": "error", "code": "x", "message": "Boom."}))
    error = list(client(server).responses.create(model="m", input="hi", stream=True))[-1]
    assert (error.type, error.code, error.message) == ("error", "x", "Boom.")  # type: ignore[union-attr]


def test_http_errors_have_openai_bodies(server: Server) -> None:
    server.push(Script(status=429, headers={"retry-after": "1"}))
    with pytest.raises(openai.RateLimitError) as caught:
        client(server).responses.create(model="m", input="hi", stream=True)
    assert caught.value.code == "rate_limit_exceeded"


def test_keepalives_and_a_script_the_protocol_cannot_express(server: Server) -> None:
    server.push(Script(["a", "b"], delay=0.15, ping_every=0.05))
    raw = client(server).responses.with_raw_response.create(model="m", input="hi", stream=True)
    text = raw.http_response.read().decode()
    assert 'event: keepalive\ndata: {"type":"keepalive"' in text
    assert server.last.pings_written >= 1
    calls = [
        Chunk(tool_calls=(ToolCallDelta(index=0, name="f"),)),
        "text between",
        Chunk(tool_calls=(ToolCallDelta(index=0, arguments="{}"),)),
    ]
    server.push(Script(calls))
    with pytest.raises(openai.BadRequestError, match="not contiguous"):
        client(server).responses.create(model="m", input="hi", stream=True)


def test_raw_events_are_replayed_verbatim(server: Server) -> None:
    events = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {"id": "r", "object": "response", "status": "in_progress"},
        },
        {"type": "keepalive", "sequence_number": 1},
    ]
    server.push(Script(raw_events=events))
    raw = client(server).responses.with_raw_response.create(model="m", input="hi", stream=True)
    text = raw.http_response.read().decode()
    assert text == "".join(
        f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events
    )


def test_the_docs_example_runs() -> None:
    docs = Path(__file__).parent.parent / "docs" / "testing.md"
    section = docs.read_text().split("## The Responses API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {
        "pytest": pytest,
        "rxllm": rxllm,
        "Script": Script,
        "Server": Server,
    }
    exec(code, namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()  # type: ignore[operator]
