"""rxllm reads the SDKs' raw HTTP responses and parses SSE itself (the fast path).

These tests feed the SAME bytes to the bare SDK and to rxllm and compare: every chunk's
`.raw` equals the SDK's own object, and what the SDK raises rxllm raises as its own error.
Covered: plain chunks, Azure's non-chunk events, obfuscation and unknown fields, SSE
details (no space after `data:`, CRLF, comments, multi-line data), error events.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import anthropic as anthropic_sdk
import openai as openai_sdk
import pydantic
import pytest

import rxllm
from rxllm import ops
from rxllm.testing import Script, Server

KEY = "sk-parity"


def openai_event(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> str:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    body = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-x",
        "system_fingerprint": "fp_1",
        "choices": choices,
        **extra,
    }
    return json.dumps(body)


OPENAI_BODY = (
    # Azure: a first event with prompt_filter_results, no choices and an empty model
    'data: {"choices":[],"created":0,"id":"","model":"","object":"",'
    '"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
    f"data: {openai_event({'role': 'assistant', 'content': ''}, obfuscation='Xy1')}\n\n"
    ": keep-alive comment\n\n"
    f"data:{openai_event({'content': 'Hel'}, obfuscation='abc')}\r\n\r\n"
    f"data: {openai_event({'content': 'lo', 'future_field': {'x': 1}}, brand_new=True)}\n\n"
    f"data: {openai_event({'tool_calls': [{'index': 0, 'id': 'c1', 'type': 'function', 'function': {'name': 'f', 'arguments': '{}'}}]})}\n\n"  # noqa: E501
    f"data: {openai_event({}, 'tool_calls', content_filter_results={'hate': {'filtered': False}})}\n\n"  # noqa: E501
    f"data: {openai_event(None, usage={'prompt_tokens': 3, 'completion_tokens': 4, 'total_tokens': 7, 'completion_tokens_details': {'reasoning_tokens': 0}})}\n\n"  # noqa: E501
    "data: [DONE]\n\n"
)


def sdk_openai_chunks(server: Server) -> list[Any]:
    client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    return list(
        client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )


def rx_chunks(llm: rxllm.LLM) -> list[rxllm.Chunk]:
    return list(rxllm.iterate(llm.stream("hi")))


def test_openai_every_chunk_raw_equals_the_sdk_chunk(server: Server) -> None:
    server.push(Script(raw_events=OPENAI_BODY))
    theirs = sdk_openai_chunks(server)
    server.push(Script(raw_events=OPENAI_BODY))
    ours = rx_chunks(rxllm.openai("gpt-x", base_url=server.url, api_key=KEY))
    assert len(ours) == len(theirs) == 7
    for mine, sdk in zip(ours, theirs, strict=True):
        assert mine.raw.model_dump() == sdk.model_dump()
        assert mine.raw.to_dict() == sdk.to_dict()  # unknown fields kept alike
    text = "".join(c.content for c in ours)
    sdk_text = "".join((c.choices[0].delta.content or "") for c in theirs if c.choices)
    assert text == sdk_text == "Hello"
    assert ours[0].model is None and ours[0].is_empty  # Azure's filter event
    assert ours[-1].usage == rxllm.Usage(input_tokens=3, output_tokens=4, total_tokens=7)


@pytest.mark.parametrize(
    "error",
    [
        {"message": "The server had an error", "type": "server_error", "param": None, "code": None},
        {"message": "bad thing", "type": "invalid_request_error", "param": None, "code": "x"},
    ],
)
def test_openai_error_event_raises_where_the_sdk_raises(
    server: Server, error: dict[str, Any]
) -> None:
    body = f"data: {openai_event({'content': 'Hi'})}\n\ndata: {json.dumps({'error': error})}\n\n"
    server.push(Script(raw_events=body))
    with pytest.raises(openai_sdk.APIError) as sdk_error:
        sdk_openai_chunks(server)
    server.push(Script(raw_events=body))
    with pytest.raises(rxllm.StreamError) as ours:
        rxllm.collect(rxllm.openai("gpt-x", base_url=server.url, api_key=KEY).stream("hi"))
    assert sdk_error.value.message == error["message"]
    assert error["message"] in str(ours.value)
    assert ours.value.retryable is (error["type"] == "server_error")
    assert ours.value.partial is not None and ours.value.partial.text == "Hi"
    cause = ours.value.__cause__  # the SDK's own exception for it, as for every other error
    assert type(cause) is type(sdk_error.value)
    assert isinstance(cause, openai_sdk.APIError)
    assert (cause.message, cause.body) == (sdk_error.value.message, sdk_error.value.body)
    assert ours.value.body == error


def anthropic_event(kind: str, **fields: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n"


ANTHROPIC_BODY = (
    anthropic_event(
        "message_start",
        message={
            "id": "msg_9",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 5,
                "output_tokens": 1,
                "cache_read_input_tokens": 2,
                "service_tier": "standard",
            },
            "brand_new": 1,
        },
    )
    + anthropic_event("ping")
    + anthropic_event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    + anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"})
    + anthropic_event(
        "content_block_delta",
        index=0,
        delta={
            "type": "citations_delta",
            "citation": {
                "type": "char_location",
                "cited_text": "x",
                "document_index": 0,
                "document_title": None,
                "start_char_index": 0,
                "end_char_index": 1,
            },
        },
    )
    + anthropic_event("content_block_stop", index=0)
    + anthropic_event("some_future_event", payload={"a": 1})
    + anthropic_event(
        "message_delta",
        delta={"stop_reason": "end_turn", "stop_sequence": None},
        usage={"output_tokens": 9},
    )
    + anthropic_event("message_stop")
)


def test_anthropic_every_chunk_raw_equals_the_sdk_event(server: Server) -> None:
    server.push(Script(raw_events=ANTHROPIC_BODY))
    client = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    theirs = list(
        client.messages.create(
            model="claude-x",
            max_tokens=10,
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
        )
    )
    server.push(Script(raw_events=ANTHROPIC_BODY))
    ours = rx_chunks(rxllm.anthropic("claude-x", base_url=server.url, api_key=KEY))
    # rxllm skips pings and block/message stops (they carry nothing); the rest match 1:1
    kept = [e for e in theirs if e.type not in ("ping", "content_block_stop", "message_stop")]
    assert [c.raw.type for c in ours] == [e.type for e in kept]
    for mine, sdk in zip(ours, kept, strict=True):
        assert mine.raw.to_dict() == sdk.to_dict()
    assert "".join(c.content for c in ours) == "Hi"
    assert ours[-1].finish_reason == "stop"
    # the prompt counts its cached part, as OpenAI's prompt_tokens does
    assert ours[-1].usage == rxllm.Usage(
        input_tokens=7, output_tokens=9, total_tokens=16, cache_read_tokens=2
    )


def test_anthropic_text_deltas_that_say_only_their_text_keep_no_bytes(server: Server) -> None:
    # A plain text delta is rebuilt from its block index and its text (no bytes kept per
    # chunk: the memory of a long answer); one that says more keeps its bytes. Both give
    # the very events, and the final Message, the SDK parses from the same body.
    text = {"type": "text", "text": ""}
    body = (
        ANTHROPIC_BODY.split("event: ping")[0]
        + anthropic_event("content_block_start", index=0, content_block=text)
        + anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": "Hé "}
        )
        + anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": '"quoted"\\'}
        )
        + anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": "!", "new": 1}
        )
        + anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": "?"}, extra=2
        )
        + anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": ""})
        + anthropic_event("content_block_stop", index=0)
        + anthropic_event("content_block_start", index=1, content_block=text)
        + anthropic_event("content_block_delta", index=1, delta={"type": "text_delta", "text": "B"})
        + anthropic_event("content_block_stop", index=1)
        + anthropic_event(
            "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 5}
        )
        + anthropic_event("message_stop")
    )
    server.push(Script(raw_events=body))
    client = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    with client.messages.stream(
        model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as helper:
        theirs = [e for e in helper if e.type == "content_block_delta"]
        final = helper.get_final_message()
    server.push(Script(raw_events=body))
    accumulator = rxllm.Accumulator()
    llm = rxllm.anthropic("claude-x", base_url=server.url, api_key=KEY)
    for chunk in rxllm.iterate(llm.stream("hi")):
        accumulator.push(chunk)
    kept = [type(ref).__name__ for ref in accumulator._raws]  # type: ignore[attr-defined]
    # message_start, a block's start, 5 deltas (2 plain, 2 saying more, 1 plain), the
    # next block's start, its plain delta, message_delta
    assert kept == [*["bytes"] * 2, "int", "int", "bytes", "bytes", "int", "bytes", "int", "bytes"]
    response = accumulator.response()
    assert response.text == 'Hé "quoted"\\!?B'
    assert response.raw.to_dict() == final.to_dict()
    server.push(Script(raw_events=body))
    ours = [c for c in rxllm.iterate(llm.stream("hi")) if c.raw.type == "content_block_delta"]
    assert [c.raw.to_dict() for c in ours] == [e.to_dict() for e in theirs]


def test_anthropic_error_event_raises_where_the_sdk_raises(server: Server) -> None:
    body = ANTHROPIC_BODY.split("event: content_block_stop")[0] + anthropic_event(
        "error", error={"type": "overloaded_error", "message": "Overloaded"}
    )
    server.push(Script(raw_events=body))
    client = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic_sdk.APIStatusError) as sdk_error:
        list(
            client.messages.create(
                model="claude-x",
                max_tokens=10,
                stream=True,
                messages=[{"role": "user", "content": "hi"}],
            )
        )
    server.push(Script(raw_events=body))
    with pytest.raises(rxllm.ServerError) as ours:
        rxllm.collect(rxllm.anthropic("claude-x", base_url=server.url, api_key=KEY).stream("hi"))
    assert isinstance(ours.value, rxllm.StreamError) and ours.value.retryable
    assert ours.value.partial is not None and ours.value.partial.text == "Hi"
    cause = ours.value.__cause__
    assert type(cause) is type(sdk_error.value)
    assert isinstance(cause, anthropic_sdk.APIStatusError)
    # the same message and body, but for the request id each answer has (anthropic >= 2.17
    # names it in the message)
    assert (_no_request_id(cause.message), cause.body) == (
        _no_request_id(sdk_error.value.message),
        sdk_error.value.body,
    )
    # and rxllm's own message says what the SDK's says
    assert "Overloaded" in str(ours.value)


def _no_request_id(message: str) -> str:
    return re.sub(r"req_[0-9a-zA-Z]+", "req_…", message)


def test_a_compressed_body_is_decoded_and_a_plain_one_read_raw() -> None:
    import gzip

    import httpx2

    from rxllm.providers.http_call import _sync_body

    body = b'data: {"a": 1}\n\n'
    compressed = httpx2.Response(
        200, headers={"content-encoding": "gzip"}, stream=httpx2.ByteStream(gzip.compress(body))
    )
    assert b"".join(_sync_body(compressed)) == body
    plain = httpx2.Response(200, stream=httpx2.ByteStream(body))
    assert b"".join(_sync_body(plain)) == body


class City(pydantic.BaseModel):
    name: str
    population: int


def _sdk_helper_final(provider: str, server: Server, **kw: Any) -> Any:
    """What the SDK's own stream helper ends with for the server's next script."""
    messages = [{"role": "user", "content": "hi"}]
    if provider == "openai":
        client = openai_sdk.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
        kw["stream_options"] = {"include_usage": True}  # as rxllm asks by default
        with client.chat.completions.stream(model="m", messages=messages, **kw) as stream:
            return stream.get_final_completion()
    client_a = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    with client_a.messages.stream(model="m", max_tokens=50, messages=messages, **kw) as stream:
        return stream.get_final_message()


# The SDK's generic ParsedChatCompletion warns when dumped with a parsed model in it.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_response_raw_is_what_the_sdk_stream_helper_parses(
    server: Server, provider: str, mode: str
) -> None:
    script = Script(['{"name": "Os', 'lo", "population": 700000}'], response_id="r1")
    server.push(script)
    option = "response_format" if provider == "openai" else "output_format"
    sdk = _sdk_helper_final(provider, server, **{option: City})
    server.push(script)
    llm: rxllm.LLM = getattr(rxllm, provider)("m", base_url=server.url, api_key=KEY)
    stream = llm.stream("hi", response_format=City)
    if mode == "sync":
        ours = rxllm.collect(stream, timeout=10).raw
    else:
        ours = asyncio.run(rxllm.acollect(stream, timeout=10)).raw
    assert type(ours) is type(sdk)
    expected = City(name="Oslo", population=700000)
    if provider == "openai":
        assert ours.choices[0].message.parsed == sdk.choices[0].message.parsed == expected
    else:
        assert ours.parsed_output == sdk.parsed_output == expected
    assert ours.model_dump(exclude={"created"}) == sdk.model_dump(exclude={"created"})


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_response_raw_of_a_cut_or_unparsable_answer_is_the_snapshot(
    server: Server, provider: str
) -> None:
    llm: rxllm.LLM = getattr(rxllm, provider)("m", base_url=server.url, api_key=KEY)
    server.push(Script(['{"name": "Os', 'lo", ', '"population": 7}']))
    cut = rxllm.collect(
        llm.stream("hi", response_format=City).pipe(
            rxllm.ops.take_until(lambda c: "lo" in c.content)
        ),
        timeout=10,
    ).raw
    server.push(Script(["not JSON at all"]))
    unparsable = rxllm.collect(llm.stream("hi", response_format=City), timeout=10).raw
    # the SDK's running snapshot of a cut answer holds the JSON so far, as a dict
    partial = {"name": "Oslo"} if provider == "openai" else None
    for raw, text, parsed in (
        (cut, '{"name": "Oslo", ', partial),
        (unparsable, "not JSON at all", None),
    ):
        if provider == "openai":
            assert raw.choices[0].message.content == text
            assert raw.choices[0].message.parsed == parsed
        else:
            assert raw.content[0].text == text
            assert raw.parsed_output is None


# --- shapes seen from real servers (OpenAI-compatible ones included) ----------------------


def _openai(server: Server) -> rxllm.LLM:
    return rxllm.openai("gpt-x", base_url=server.url, api_key=KEY)


def _body(*events: str) -> str:
    return "".join(f"data: {event}\n\n" for event in events)


def test_n_choices_chunks_follow_the_first_and_raw_has_them_all(server: Server) -> None:
    def event(index: int, delta: dict[str, Any], finish: str | None = None) -> str:
        body = json.loads(openai_event(delta, finish))
        body["choices"][0]["index"] = index
        return json.dumps(body)

    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    body = _body(
        event(0, {"role": "assistant", "content": "A"}),
        event(1, {"role": "assistant", "content": "B"}),
        event(0, {"content": "a"}),
        event(1, {"tool_calls": [{**call, "function": {"name": "f", "arguments": '{"b":2}'}}]}),
        event(0, {}, "stop"),
        event(1, {}, "tool_calls"),
        "[DONE]",
    )
    server.push(Script(raw_events=body))
    response = rxllm.collect(_openai(server).stream("hi"), timeout=10)
    assert (response.text, response.tool_calls, response.finish_reason) == ("Aa", (), "stop")
    choices = response.raw.choices
    assert [c.message.content for c in choices] == ["Aa", "B"]
    assert choices[1].message.tool_calls[0].function.arguments == '{"b":2}'


def test_azure_asynchronous_filter_events_are_left_out_of_the_raw_response(
    server: Server,
) -> None:
    filtered = json.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": None,
                    "content_filter_results": {"hate": {"filtered": False}},
                    "content_filter_offsets": {"start_offset": 0, "end_offset": 5},
                }
            ],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
        }
    )
    body = _body(
        openai_event({"role": "assistant", "content": "Hi"}),
        openai_event({}, "stop"),
        filtered,
        "[DONE] ",  # as Azure's documented sample prints it: the SDK takes it as the end
    )
    server.push(Script(raw_events=body))
    sdk = _sdk_helper_final("openai", server)
    server.push(Script(raw_events=body))
    response = rxllm.collect(_openai(server).stream("hi"), timeout=10)
    assert response.text == "Hi" and response.finish_reason == "stop"
    assert response.raw.model_dump() == sdk.model_dump()


def test_content_as_typed_parts_is_split_into_text_and_thinking(server: Server) -> None:
    thought = {"type": "thinking", "thinking": [{"type": "text", "text": "2+2 is 4."}]}
    body = _body(
        openai_event({"role": "assistant", "content": [thought]}),  # Mistral's Magistral
        openai_event({"content": [{"type": "text", "text": "2 + 2 = 4"}]}),
        openai_event({"content": ""}, "stop"),
        "[DONE]",
    )
    server.push(Script(raw_events=body))
    chunks = list(rxllm.iterate(_openai(server).stream("hi")))
    assert all(isinstance(c.content, str) for c in chunks)
    response = rxllm.Accumulator()
    for chunk in chunks:
        response.push(chunk)
    assert (response.response().text, response.response().thinking) == ("2 + 2 = 4", "2+2 is 4.")


def test_tool_calls_without_an_index_are_told_apart_by_their_ids(server: Server) -> None:
    def call(call_id: str, city: str) -> dict[str, Any]:
        arguments = json.dumps({"location": city})
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": "w", "arguments": arguments},
        }

    body = _body(  # Gemini's OpenAI-compatible API: each call whole, no "index"
        openai_event({"role": "assistant", "tool_calls": [call("function-call-1", "Sydney")]}),
        openai_event({"tool_calls": [call("function-call-2", "Paris")]}),
        openai_event({}, "tool_calls"),
        "[DONE]",
    )
    server.push(Script(raw_events=body))
    response = rxllm.collect(_openai(server).stream("hi"), timeout=10)
    assert [(c.id, c.args) for c in response.tool_calls] == [
        ("function-call-1", {"location": "Sydney"}),
        ("function-call-2", {"location": "Paris"}),
    ]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_events_after_the_terminator_are_ignored_however_they_arrive(
    server: Server, provider: str
) -> None:
    if provider == "openai":
        body = _body(openai_event({"content": "Hello"}, "stop"), "[DONE]")
        body += _body(openai_event({"content": " AFTER"}))
    else:
        body = ANTHROPIC_BODY + anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": " AFTER"}
        )
    server.push(Script(raw_events=body))  # one write: the tail arrives with the terminator
    llm: rxllm.LLM = getattr(rxllm, provider)("m", base_url=server.url, api_key=KEY)
    assert "AFTER" not in rxllm.collect(llm.stream("hi"), timeout=10).text


def test_an_empty_finish_reason_says_nothing(server: Server) -> None:
    # Ollama, SGLang and LocalAI send "finish_reason": "" on every content chunk.
    body = _body(
        openai_event({"role": "assistant", "content": "Hel"}, ""),
        openai_event({"content": "lo"}, ""),
        openai_event({}, "stop"),
        "[DONE]",
    )
    server.push(Script(raw_events=body))
    chunks = rx_chunks(_openai(server))
    assert [c.finish_reason for c in chunks] == [None, None, "stop"]
    server.push(Script(raw_events=body))
    sdk = sdk_openai_chunks(server)  # the SDK keeps "" in its objects; rxllm's .raw too
    assert [c.raw.to_dict() for c in chunks] == [chunk.to_dict() for chunk in sdk]
    server.push(Script(raw_events=body))
    cut = rxllm.collect(
        _openai(server).stream("hi").pipe(ops.take_until(lambda c: c.content == "Hel")),
        timeout=10,
    )
    assert (cut.text, cut.finish_reason) == ("Hel", None)  # cut short: nobody said why
    # a body that ends after those chunks, without a reason or [DONE], was cut
    server.push(Script(raw_events=_body(openai_event({"content": "Hel"}, ""))))
    with pytest.raises(rxllm.StreamInterrupted) as caught:
        rxllm.collect(_openai(server).stream("hi"), timeout=10)
    assert caught.value.partial is not None and caught.value.partial.text == "Hel"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_lone_surrogate_escape_is_read_as_the_sdk_reads_it(server: Server, provider: str) -> None:
    # Servers written in JS can split an emoji's UTF-16 pair across events: each event
    # holds a lone surrogate escape ("\\ud83d"). jiter refuses it; the SDKs' json.loads
    # keeps it, and so does rxllm.
    halves = ["Nice \ud83d", "\ude00 day"]
    llm: rxllm.LLM
    if provider == "openai":
        body = _body(*(openai_event({"content": h}) for h in halves), openai_event({}, "stop"))
        body += "data: [DONE]\n\n"
        llm = rxllm.openai("gpt-x", base_url=server.url, api_key=KEY)
    else:
        body = (
            ANTHROPIC_BODY.split("event: content_block_start")[0]
            + anthropic_event(
                "content_block_start", index=0, content_block={"type": "text", "text": ""}
            )
            + "".join(
                anthropic_event(
                    "content_block_delta", index=0, delta={"type": "text_delta", "text": h}
                )
                for h in halves
            )
            + anthropic_event("content_block_stop", index=0)
            + anthropic_event("message_delta", delta={"stop_reason": "end_turn"}, usage={})
            + anthropic_event("message_stop")
        )
        llm = rxllm.anthropic("claude-x", base_url=server.url, api_key=KEY)
    assert "\\ud83d" in body
    server.push(Script(raw_events=body))
    chunks = rx_chunks(llm)
    assert "".join(c.content for c in chunks) == "".join(halves)
    assert all(c.raw is not None for c in chunks)  # .raw parses the event the same way
    server.push(Script(raw_events=body))
    if provider == "openai":
        theirs = [chunk.to_dict() for chunk in sdk_openai_chunks(server)]
    else:
        client = anthropic_sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
        events = client.messages.create(
            model="claude-x",
            max_tokens=10,
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
        )
        skipped = ("ping", "content_block_stop", "message_stop")
        theirs = [event.to_dict() for event in events if event.type not in skipped]
    assert [c.raw.to_dict() for c in chunks] == theirs  # the SDK's own parse of the same bytes
    server.push(Script(raw_events=body))
    response = rxllm.collect(llm.stream("hi"), timeout=10)
    assert response.finish_reason == "stop"
    raw = response.raw
    text = raw.choices[0].message.content if provider == "openai" else raw.content[0].text
    assert text == "".join(halves)


def test_a_chunk_the_sdk_accumulator_refuses_is_left_out_of_raw(server: Server) -> None:
    # OpenRouter sends web-search annotations as index-less lists, one per chunk; the SDK's
    # accumulator refuses the second, and Response.raw raised RuntimeError for the answer.
    def cite(url: str) -> list[dict[str, Any]]:
        return [{"type": "url_citation", "url_citation": {"url": url, "title": "t"}}]

    body = _body(
        openai_event({"role": "assistant", "content": "See ", "annotations": cite("https://a")}),
        openai_event({"content": "this.", "annotations": cite("https://b")}),
        openai_event({}, "stop"),
        "[DONE]",
    )
    server.push(Script(raw_events=body))
    sdk_chunks = sdk_openai_chunks(server)  # the bare SDK's iteration reads it
    server.push(Script(raw_events=body))
    chunks = rx_chunks(_openai(server))
    assert [c.raw.model_dump() for c in chunks] == [c.model_dump() for c in sdk_chunks]
    server.push(Script(raw_events=body))
    response = rxllm.collect(_openai(server).stream("hi"), timeout=10)
    assert response.text == "See this." and response.finish_reason == "stop"
    message = response.raw.choices[0].message  # raised RuntimeError
    assert message.role == "assistant" and message.content is not None
    assert message.content.startswith("See ")
