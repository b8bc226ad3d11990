"""The Responses fast path against the bare SDK: the SAME bytes through
`client.responses.create(stream=True)` and through rxllm give equal event objects (each
chunk's `.raw`), and error events fail alike."""

from __future__ import annotations

import json
from typing import Any

import openai as openai_sdk
import pytest

import rxllm
from rxllm.models import Chunk, ToolCallDelta, Usage
from rxllm.testing import Script, Server
from rxllm.testing._encode import plan

KEY = "sk-parity"


def body_of(script: Script) -> str:
    """The SSE body the loopback server streams for `script`, rendered once."""
    encoded = plan(script, "openai-responses", {"input": "hi"}, response_id="resp_parity")
    return b"".join(frame.data for frame in encoded.frames).decode()


SCRIPT = Script(
    [
        Chunk(thinking="Plan."),
        "Hel",
        "lo",
        Chunk(refusal="No."),
        Chunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="f", arguments='{"a": 1}'),)),
    ],
    usage=Usage(input_tokens=4, output_tokens=9, total_tokens=13, reasoning_tokens=2),
)


def with_quirks(body: str) -> str:
    """The body as real servers vary it: a comment, a keepalive, CRLF line ends, no space
    after `data:`, fields and an event type the SDK does not know."""
    events = body.split("\n\n")[:-1]
    events[3] = events[3].replace("data: ", "data:", 1).replace("\n", "\r\n") + "\r"
    delta = json.loads(events[5].split("data: ", 1)[1])
    delta["obfuscation"] = "Zq9"
    delta["brand_new_field"] = {"x": 1}
    events[5] = f"event: {delta['type']}\ndata: {json.dumps(delta)}"
    extra = [
        ": an SSE comment",
        'event: keepalive\ndata: {"type":"keepalive","sequence_number":99}',
        'event: response.future_thing\ndata: {"type":"response.future_thing",'
        '"sequence_number":98,"output_index":0}',
    ]
    return "\n\n".join([*events[:4], *extra, *events[4:]]) + "\n\n"


def sdk_events(server: Server) -> list[Any]:
    client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    return list(client.responses.create(model="test-model", input="hi", stream=True))


def rx_chunks(server: Server) -> list[Chunk]:
    llm = rxllm.openai(
        "test-model", api="responses", base_url=server.url, api_key=KEY, max_retries=0
    )
    return list(rxllm.iterate(llm.stream("hi")))


@pytest.mark.parametrize("quirks", [False, True])
def test_every_chunks_raw_equals_the_sdks_event(server: Server, quirks: bool) -> None:
    body = body_of(SCRIPT)
    if quirks:
        body = with_quirks(body)
        assert "\r\n" in body and "brand_new_field" in body and "keepalive" in body
    server.push(Script(raw_events=body))
    theirs = sdk_events(server)
    server.push(Script(raw_events=body))
    ours = rx_chunks(server)
    # rxllm leaves the keepalive out (it is no activity of the model); all else is 1:1
    theirs = [event for event in theirs if event.type != "keepalive"]
    assert len(ours) == len(theirs) > 20
    for mine, sdk in zip(ours, theirs, strict=True):
        assert type(mine.raw) is type(sdk)
        assert mine.raw.model_dump() == sdk.model_dump()
        assert mine.raw.to_dict() == sdk.to_dict()  # unknown fields kept alike
    assert "".join(c.content for c in ours) == "Hello"
    assert "".join(c.thinking for c in ours) == "Plan."
    assert "".join(c.refusal for c in ours) == "No."
    assert ours[-1].finish_reason == "tool_calls"
    assert ours[-1].usage == Usage(
        input_tokens=4, output_tokens=9, total_tokens=13, reasoning_tokens=2
    )


def test_a_nested_error_event_raises_what_the_sdk_raises(server: Server) -> None:
    error = {"type": "server_error", "code": "server_error", "message": "Boom.", "param": None}
    body = body_of(Script(["Hi"], error_event={"type": "error", "error": error}))
    server.push(Script(raw_events=body))
    with pytest.raises(openai_sdk.APIError) as sdk_error:
        sdk_events(server)
    server.push(Script(raw_events=body))
    with pytest.raises(rxllm.StreamError) as ours:
        rx_chunks(server)
    cause = ours.value.__cause__
    assert type(cause) is type(sdk_error.value)
    assert isinstance(cause, openai_sdk.APIError)
    assert (cause.message, cause.body) == (sdk_error.value.message, sdk_error.value.body)
    assert ours.value.retryable
    assert ours.value.partial is not None and ours.value.partial.text == "Hi"


def test_documented_error_events_and_failed_responses_are_errors_in_rxllm(
    server: Server,
) -> None:
    # The bare SDK yields these as events (ResponseErrorEvent, ResponseFailedEvent) and
    # leaves it to the caller to notice; rxllm raises, with the SDK's exception as cause.
    for error_event in (
        {"type": "error", "code": "rate_limit_exceeded", "message": "Slow down.", "param": None},
        "server_error",
    ):
        body = body_of(Script(["Hi"], error_event=error_event))
        server.push(Script(raw_events=body))
        last = sdk_events(server)[-1]
        assert last.type in ("error", "response.failed")
        server.push(Script(raw_events=body))
        with pytest.raises(rxllm.StreamError) as ours:
            rx_chunks(server)
        assert ours.value.retryable
        assert isinstance(ours.value.__cause__, openai_sdk.APIError)
        message = last.message if last.type == "error" else last.response.error.message
        assert ours.value.__cause__.message == message
