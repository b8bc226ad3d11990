"""The Responses API event mapper is pure: event sequences shaped as the API sends them in,
normalized chunks out (text, reasoning, function calls, refusals, incomplete and failed
responses, error events, and the events rxllm does not model)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import reactivex
from openai.lib.streaming.responses._types import ParsedResponseSnapshot
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ParsedResponse
from openai.types.responses import Response as SDKResponse
from pydantic import BaseModel

import rxllm
from rxllm import ops
from rxllm.accumulator import Accumulator
from rxllm.models import Chunk, ToolCallDelta
from rxllm.providers.openai_chat import ChatCodec
from rxllm.providers.openai_responses import ResponsesCodec, ResponsesEvents, responses_raw
from rxllm.request import Request

MODEL = "gpt-5-mini-2025-08-07"
RID = "resp_68af4030592c81938ec0a5fbab4a3e9f"


def responses_events(response_format: Any = None) -> ResponsesEvents:
    """The event mapper of a Responses call, as the provider makes it."""
    request = Request(
        messages=({"role": "user", "content": "hi"},), response_format=response_format
    )
    return ResponsesCodec(request, model="m").events()


class Events:
    """Builds an event sequence as the API sends it: every event numbered in order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.output: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> Events:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})
        return self

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": RID,
            "object": "response",
            "created_at": 1756315696,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": MODEL,
            "output": [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": {},
            **fields,
        }

    def start(self) -> Events:
        self.add("response.created", response=self.response("in_progress"))
        return self.add("response.in_progress", response=self.response("in_progress"))

    def item(self, item: dict[str, Any], *, added: dict[str, Any] | None = None) -> int:
        index = len(self.output)
        self.add("response.output_item.added", output_index=index, item=added or item)
        return index

    def done(self, index: int, item: dict[str, Any]) -> Events:
        self.output.append(item)
        return self.add("response.output_item.done", output_index=index, item=item)

    def message(self, *pieces: str, refusal: bool = False) -> Events:
        item_id = f"msg_{len(self.output)}"
        kind, field = ("refusal", "refusal") if refusal else ("output_text", "text")
        empty: dict[str, Any] = {"type": kind, field: ""}
        if not refusal:
            empty |= {"annotations": [], "logprobs": []}
        index = self.item(
            {
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            }
        )
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.add("response.content_part.added", **where, part=empty)
        delta = "response.refusal.delta" if refusal else "response.output_text.delta"
        for piece in pieces:
            extra = {} if refusal else {"logprobs": [], "obfuscation": "x1"}
            self.add(delta, **where, delta=piece, **extra)
        text = "".join(pieces)
        if refusal:
            self.add("response.refusal.done", **where, refusal=text)
        else:
            self.add("response.output_text.done", **where, text=text, logprobs=[])
        part = {**empty, field: text}
        self.add("response.content_part.done", **where, part=part)
        item = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "content": [part],
            "role": "assistant",
        }
        return self.done(index, item)

    def reasoning(self, *parts: list[str], deltas: bool = True) -> Events:
        item_id = f"rs_{len(self.output)}"
        index = self.item({"id": item_id, "type": "reasoning", "summary": []})
        for n, pieces in enumerate(parts):
            where = {"item_id": item_id, "output_index": index, "summary_index": n}
            self.add(
                "response.reasoning_summary_part.added",
                **where,
                part={"type": "summary_text", "text": ""},
            )
            if deltas:
                for piece in pieces:
                    self.add(
                        "response.reasoning_summary_text.delta",
                        **where,
                        delta=piece,
                        obfuscation="y",
                    )
            text = "".join(pieces)
            self.add("response.reasoning_summary_text.done", **where, text=text)
            self.add(
                "response.reasoning_summary_part.done",
                **where,
                part={"type": "summary_text", "text": text},
            )
        summary = [{"type": "summary_text", "text": "".join(p)} for p in parts]
        return self.done(
            index,
            {
                "id": item_id,
                "type": "reasoning",
                "summary": summary,
                "encrypted_content": "gAAAA-encrypted",
            },
        )

    def reasoning_text(self, *pieces: str) -> Events:
        """Raw reasoning (gpt-oss served by the Responses API): `reasoning_text` deltas."""
        item_id = f"rs_{len(self.output)}"
        index = self.item({"id": item_id, "type": "reasoning", "summary": [], "content": []})
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.add(
            "response.content_part.added", **where, part={"type": "reasoning_text", "text": ""}
        )
        for piece in pieces:
            self.add("response.reasoning_text.delta", **where, delta=piece)
        text = "".join(pieces)
        self.add("response.reasoning_text.done", **where, text=text)
        part = {"type": "reasoning_text", "text": text}
        self.add("response.content_part.done", **where, part=part)
        return self.done(
            index, {"id": item_id, "type": "reasoning", "summary": [], "content": [part]}
        )

    def call(
        self,
        call_id: str,
        name: str,
        *pieces: str,
        done: str | None = None,
        done_event: bool = True,
    ) -> Events:
        item_id = f"fc_{len(self.output)}"
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id,
            "name": name,
        }
        index = self.item(item)
        for piece in pieces:
            self.add(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=piece,
                obfuscation="z",
            )
        arguments = done if done is not None else "".join(pieces)
        if done_event:
            self.add(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                arguments=arguments,
            )
        return self.done(index, {**item, "status": "completed", "arguments": arguments})

    def usage(self, **counts: int) -> dict[str, Any]:
        return {
            "input_tokens": counts.get("input", 12),
            "input_tokens_details": {"cached_tokens": counts.get("cached", 0)},
            "output_tokens": counts.get("output", 30),
            "output_tokens_details": {"reasoning_tokens": counts.get("reasoning", 0)},
            "total_tokens": counts.get("input", 12) + counts.get("output", 30),
        }

    def completed(self, **counts: int) -> Events:
        response = self.response("completed", output=self.output, usage=self.usage(**counts))
        return self.add("response.completed", response=response)

    def incomplete(self, reason: str | None, **counts: int) -> Events:
        details = {"reason": reason} if reason else None
        response = self.response(
            "incomplete", output=self.output, usage=self.usage(**counts), incomplete_details=details
        )
        return self.add("response.incomplete", response=response)

    def failed(self, code: str, message: str) -> Events:
        response = self.response(
            "failed", output=self.output, error={"code": code, "message": message}
        )
        return self.add("response.failed", response=response)


def mapped(
    events: list[dict[str, Any]], *, payload: bool = True, response_format: Any = None
) -> tuple[list[Chunk], ResponsesEvents]:
    """Map every event as the HTTP path does (with its bytes) or without bytes."""
    mapper = responses_events(response_format)
    chunks: list[Chunk] = []
    for event in events:
        data = json.dumps(event).encode()
        chunk = mapper.map(event["type"], json.loads(data), data if payload else None)
        if chunk is not None:
            chunks.append(chunk)
    return chunks, mapper


def respond(events: list[dict[str, Any]], response_format: Any = None) -> rxllm.Response:
    chunks, mapper = mapped(events, response_format=response_format)
    mapper.end()
    acc = Accumulator()
    acc.extend(chunks)
    return acc.response()


class TestText:
    def stream(self) -> Events:
        return (
            Events()
            .start()
            .message("Hello", " world", "!")
            .completed(input=5210, cached=5000, output=3)
        )

    def test_text_usage_model_id_and_finish(self) -> None:
        response = respond(self.stream().events)
        assert response.text == "Hello world!"
        assert response.finish_reason == "stop"
        assert response.usage == rxllm.Usage(
            input_tokens=5210, output_tokens=3, total_tokens=5213, cache_read_tokens=5000
        )
        assert (response.model, response.id, response.provider) == (MODEL, RID, "openai")
        assert response.thinking == response.refusal == "" and response.tool_calls == ()

    def test_every_event_is_one_chunk_with_the_sdk_event_as_raw(self) -> None:
        events = self.stream().events
        chunks, mapper = mapped(events)
        assert mapper.done
        assert len(chunks) == len(events)
        for chunk, event in zip(chunks, events, strict=True):
            assert chunk.raw.type == event["type"]
            assert chunk.raw.sequence_number == event["sequence_number"]
            assert (chunk.model, chunk.id) == (MODEL, RID)  # from response.created on
        kinds = [type(chunk.raw).__name__ for chunk in chunks]
        assert kinds[:3] == [
            "ResponseCreatedEvent",
            "ResponseInProgressEvent",
            "ResponseOutputItemAddedEvent",
        ]
        assert kinds.count("ResponseTextDeltaEvent") == 3
        assert kinds[-1] == "ResponseCompletedEvent"
        assert [c.content for c in chunks if c.content] == ["Hello", " world", "!"]

    def test_the_fast_path_makes_the_chunks_the_general_path_makes(self) -> None:
        events = Events().start().message("a", "b").message("c").completed().events
        fast, _ = mapped(events)
        general, _ = mapped(events, payload=False)
        assert fast == general
        assert [c.raw.model_dump() for c in fast] == [c.raw.model_dump() for c in general]

    def test_response_raw_is_the_sdks_final_response(self) -> None:
        raw = respond(self.stream().events).raw
        assert isinstance(raw, ParsedResponse)
        assert raw.output_text == "Hello world!"
        assert raw.status == "completed" and raw.id == RID
        assert raw.usage is not None and raw.usage.input_tokens_details.cached_tokens == 5000

    def test_cache_write_tokens_where_sent(self) -> None:
        stream = Events().start().message("Hi")
        stream.completed()
        stream.events[-1]["response"]["usage"]["input_tokens_details"]["cache_write_tokens"] = 7
        assert respond(stream.events).usage.cache_write_tokens == 7  # type: ignore[union-attr]

    def test_text_sent_whole_in_done_events_is_delivered_once(self) -> None:
        # A server that sends a part only in its .done events, and the whole item again
        events = Events().start().message().completed().events
        for event in events:
            if event["type"] == "response.output_text.done":
                event["text"] = "Whole."
            if event["type"] == "response.output_item.done":
                event["item"]["content"][0]["text"] = "Whole."
        events[-1]["response"]["output"][0]["content"][0]["text"] = "Whole."
        assert respond(events).text == "Whole."

    def test_items_only_in_the_final_response_are_delivered(self) -> None:
        # Some proxies send lifecycle events only, with the answer in response.completed.
        full = Events().start().message("Only here.").call("call_9", "f", '{"a": 1}')
        full.completed()
        events = [full.events[0], full.events[-1]]
        response = respond(events)
        assert response.text == "Only here."
        assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
            ("call_9", "f", '{"a": 1}')
        ]
        assert response.finish_reason == "tool_calls"


class TestReasoning:
    def test_summary_parts_and_reasoning_text_are_thinking_once_each(self) -> None:
        events = (
            Events()
            .start()
            .reasoning(["**Plan**", " step one."], ["Second", " part."])
            .reasoning_text("Raw ", "thoughts.")
            .message("Answer.")
            .completed(reasoning=24)
            .events
        )
        response = respond(events)
        assert response.thinking == "**Plan** step one.\n\nSecond part.\n\nRaw thoughts."
        assert response.text == "Answer."
        assert response.usage is not None and response.usage.reasoning_tokens == 24
        assert response.finish_reason == "stop"

    def test_summaries_sent_only_in_done_events_are_delivered_once(self) -> None:
        events = (
            Events().start().reasoning(["First."], ["Second."], deltas=False).completed().events
        )
        chunks, _ = mapped(events)
        assert "".join(c.thinking for c in chunks) == "First.\n\nSecond."
        assert len([c for c in chunks if c.thinking]) == 2  # the .done events, not the item

    def test_the_separator_comes_with_the_first_delta_of_the_next_part(self) -> None:
        events = Events().start().reasoning(["a", "b"], ["c", "d"]).completed().events
        chunks, _ = mapped(events)
        assert [c.thinking for c in chunks if c.thinking] == ["a", "b", "\n\nc", "d"]


class TestFunctionCalls:
    def test_two_parallel_calls_are_indexed_among_the_calls(self) -> None:
        events = (
            Events()
            .start()
            .reasoning(["Need both."])
            .call("call_A", "weather", '{"city":', ' "Oslo"}')
            .call("call_B", "time", done='{"tz": "CET"}')  # arguments only in .done
            .completed()
            .events
        )
        chunks, _ = mapped(events)
        deltas = [d for c in chunks for d in c.tool_calls]
        assert deltas == [
            ToolCallDelta(index=0, id="call_A", name="weather"),
            ToolCallDelta(index=0, arguments='{"city":'),
            ToolCallDelta(index=0, arguments=' "Oslo"}'),
            ToolCallDelta(index=1, id="call_B", name="time"),
            ToolCallDelta(index=1, arguments='{"tz": "CET"}'),  # once, from the .done event
        ]
        response = respond(events)
        assert [(c.id, c.name, c.args) for c in response.tool_calls] == [
            ("call_A", "weather", {"city": "Oslo"}),
            ("call_B", "time", {"tz": "CET"}),
        ]
        assert response.finish_reason == "tool_calls"
        assert response.thinking == "Need both."
        raw = response.raw
        assert [item.type for item in raw.output] == ["reasoning", "function_call", "function_call"]
        assert raw.output[2].arguments == '{"tz": "CET"}'

    def test_arguments_only_in_the_finished_item(self) -> None:
        events = Events().start().call("call_C", "f", done='{"x": 2}', done_event=False)
        events.completed()
        response = respond(events.events)
        assert [(c.id, c.arguments) for c in response.tool_calls] == [("call_C", '{"x": 2}')]

    def test_a_call_without_arguments(self) -> None:
        response = respond(Events().start().call("call_D", "now").completed().events)
        assert [(c.id, c.name, c.args) for c in response.tool_calls] == [("call_D", "now", {})]
        assert response.finish_reason == "tool_calls"

    def test_tool_calls_operator_hands_out_each_call_once(self) -> None:
        events = Events().start().call("c1", "a", "{}").call("c2", "b", done="{}").completed()
        chunks, _ = mapped(events.events)
        found: list[rxllm.ToolCall] = []
        reactivex.from_iterable(chunks).pipe(ops.tool_calls()).subscribe(found.append)
        assert [(c.id, c.name, c.arguments) for c in found] == [
            ("c1", "a", "{}"),
            ("c2", "b", "{}"),
        ]


class TestRefusalAndIncomplete:
    def test_refusal_is_refusal_and_the_answer_stops(self) -> None:
        response = respond(
            Events().start().message("I can't", " help.", refusal=True).completed().events
        )
        assert response.refusal == "I can't help."
        assert response.text == ""
        assert response.finish_reason == "stop"

    @pytest.mark.parametrize(
        ("reason", "finish"),
        [
            ("max_output_tokens", "length"),
            ("content_filter", "content_filter"),
            ("max_messages", "max_messages"),
            (None, "incomplete"),
        ],
    )
    def test_incomplete_reasons(self, reason: str | None, finish: str) -> None:
        events = Events().start().message("Cut").incomplete(reason, output=1).events
        response = respond(events)
        assert response.finish_reason == finish
        assert response.text == "Cut"
        assert response.usage is not None and response.usage.output_tokens == 1
        assert isinstance(response.raw, SDKResponse)
        assert response.raw.status == "incomplete"

    def test_incomplete_during_a_call_is_length_not_tool_calls(self) -> None:
        stream = Events().start().call("c1", "f", '{"a": ')
        stream.incomplete("max_output_tokens")
        assert respond(stream.events).finish_reason == "length"


class TestFailures:
    @pytest.mark.parametrize(
        ("code", "cls", "retryable"),
        [
            ("server_error", rxllm.errors.ServerStreamError, True),
            ("rate_limit_exceeded", rxllm.errors.RateLimitStreamError, True),
            ("invalid_prompt", rxllm.StreamError, False),
        ],
    )
    def test_response_failed_is_a_stream_error_after_its_chunk(
        self, code: str, cls: type[rxllm.StreamError], retryable: bool
    ) -> None:
        events = Events().start().message("Part").failed(code, "It broke.").events
        chunks, mapper = mapped(events)
        assert len(chunks) == len(events)  # the failed event is delivered first
        assert mapper.done
        with pytest.raises(rxllm.StreamError) as caught:
            mapper.end()
        assert type(caught.value) is cls
        assert caught.value.retryable is retryable
        assert "It broke." in str(caught.value) and code in str(caught.value)
        assert caught.value.body == {"code": code, "message": "It broke."}
        acc = Accumulator()
        acc.extend(chunks)
        partial = acc.response()
        assert partial.text == "Part" and partial.finish_reason is None
        assert partial.raw.status == "failed"  # the SDK's own failed Response
        assert partial.raw.error.code == code

    @pytest.mark.parametrize(
        "event",
        [
            # as documented: the error's fields at the top level
            {
                "type": "error",
                "sequence_number": 4,
                "code": "server_error",
                "message": "The server had an error.",
                "param": None,
            },
            # as the API also sends it: nested
            {
                "type": "error",
                "sequence_number": 4,
                "error": {
                    "type": "server_error",
                    "code": "server_error",
                    "message": "The server had an error.",
                    "param": None,
                },
            },
        ],
    )
    def test_error_events_raise_where_they_arrive(self, event: dict[str, Any]) -> None:
        mapper = responses_events()
        for earlier in Events().start().events:
            mapper.map(None, earlier)
        with pytest.raises(rxllm.errors.ServerStreamError) as caught:
            mapper.map("error", event, json.dumps(event).encode())
        assert caught.value.retryable
        assert "The server had an error." in str(caught.value)

    def test_rate_limit_error_event_is_retryable(self) -> None:
        event = {
            "type": "error",
            "sequence_number": 2,
            "error": {
                "type": "too_many_requests",
                "code": "rate_limit_exceeded",
                "message": "Too Many Requests",
                "param": None,
            },
        }
        with pytest.raises(rxllm.RateLimitError) as caught:
            responses_events().map("error", event)
        assert caught.value.retryable

    def test_a_body_that_ends_early_is_interrupted(self) -> None:
        events = Events().start().message("Hel").events[:-3]
        _, mapper = mapped(events)
        with pytest.raises(rxllm.StreamInterrupted):
            mapper.end()


UNMODELED = [
    # web search
    (
        "response.output_item.added",
        {
            "output_index": 0,
            "item": {"id": "ws_1", "type": "web_search_call", "status": "in_progress"},
        },
    ),
    ("response.web_search_call.in_progress", {"output_index": 0, "item_id": "ws_1"}),
    ("response.web_search_call.searching", {"output_index": 0, "item_id": "ws_1"}),
    ("response.web_search_call.completed", {"output_index": 0, "item_id": "ws_1"}),
    (
        "response.output_item.done",
        {
            "output_index": 0,
            "item": {
                "id": "ws_1",
                "type": "web_search_call",
                "status": "completed",
                "action": {"type": "search", "query": "oslo weather"},
            },
        },
    ),
    # code interpreter
    (
        "response.output_item.added",
        {
            "output_index": 1,
            "item": {
                "id": "ci_1",
                "type": "code_interpreter_call",
                "status": "in_progress",
                "code": "",
                "container_id": "cntr_1",
                "outputs": None,
            },
        },
    ),
    ("response.code_interpreter_call.in_progress", {"output_index": 1, "item_id": "ci_1"}),
    (
        "response.code_interpreter_call_code.delta",
        {"output_index": 1, "item_id": "ci_1", "delta": "print(1)"},
    ),
    (
        "response.code_interpreter_call_code.done",
        {"output_index": 1, "item_id": "ci_1", "code": "print(1)"},
    ),
    ("response.code_interpreter_call.interpreting", {"output_index": 1, "item_id": "ci_1"}),
    ("response.code_interpreter_call.completed", {"output_index": 1, "item_id": "ci_1"}),
    (
        "response.output_item.done",
        {
            "output_index": 1,
            "item": {
                "id": "ci_1",
                "type": "code_interpreter_call",
                "status": "completed",
                "code": "print(1)",
                "container_id": "cntr_1",
                "outputs": [{"type": "logs", "logs": "1\n"}],
            },
        },
    ),
    # MCP, image generation, a custom tool, file search
    ("response.mcp_call_arguments.delta", {"output_index": 2, "item_id": "mcp_1", "delta": "{}"}),
    (
        "response.image_generation_call.partial_image",
        {
            "output_index": 3,
            "item_id": "ig_1",
            "partial_image_index": 0,
            "partial_image_b64": "iVBORw0KGgo=",
        },
    ),
    (
        "response.custom_tool_call_input.delta",
        {"output_index": 4, "item_id": "ctc_1", "delta": "SELECT"},
    ),
    ("response.file_search_call.searching", {"output_index": 5, "item_id": "fs_1"}),
    (
        "response.output_text.annotation.added",
        {
            "output_index": 6,
            "item_id": "msg_6",
            "content_index": 0,
            "annotation_index": 0,
            "annotation": {
                "type": "url_citation",
                "url": "https://example.com",
                "title": "Ex",
                "start_index": 0,
                "end_index": 3,
            },
        },
    ),
    # an event type that does not exist yet
    ("response.brand_new.thing", {"output_index": 7, "payload": {"x": 1}}),
]


class TestUnmodeledEvents:
    def test_they_are_empty_chunks_whose_raw_is_the_sdk_event(self) -> None:
        stream = Events().start()
        for kind, fields in UNMODELED:
            stream.add(kind, **fields)
        stream.add("keepalive")
        stream.message("Sunny.")
        stream.completed()
        chunks, mapper = mapped(stream.events)
        assert mapper.done
        assert len(chunks) == len(stream.events) - 1  # all but the keepalive
        unmodeled = chunks[2 : 2 + len(UNMODELED)]
        for chunk, (kind, _) in zip(unmodeled, UNMODELED, strict=True):
            assert chunk.is_empty, kind
            assert chunk.raw.type == kind
        by_type = {type(c.raw).__name__ for c in unmodeled}
        assert {
            "ResponseWebSearchCallSearchingEvent",
            "ResponseCodeInterpreterCallCodeDeltaEvent",
            "ResponseImageGenCallPartialImageEvent",
            "ResponseMcpCallArgumentsDeltaEvent",
            "ResponseCustomToolCallInputDeltaEvent",
            "ResponseOutputTextAnnotationAddedEvent",
        } <= by_type
        response = respond(stream.events)
        assert response.text == "Sunny." and response.tool_calls == ()
        assert response.finish_reason == "stop"  # server-side tools are no tool calls

    def test_a_keepalive_is_no_chunk(self) -> None:
        assert (
            responses_events().map("keepalive", {"type": "keepalive", "sequence_number": 9}) is None
        )


class TestResponseRaw:
    def test_a_stream_cut_short_gives_the_accumulators_snapshot(self) -> None:
        events = Events().start().message("Hello", " there").events[:-3]  # in the text
        chunks, _ = mapped(events)
        acc = Accumulator()
        acc.extend(chunks)
        raw = acc.response().raw
        assert isinstance(raw, ParsedResponseSnapshot)
        assert raw.status == "in_progress"
        assert raw.output[0].content[0].text == "Hello there"

    def test_without_response_created_there_is_no_snapshot(self) -> None:
        events = Events().start().message("Hi").events[2:5]
        chunks, _ = mapped(events)
        acc = Accumulator()
        acc.extend(chunks)
        assert acc.response().raw is None

    def test_a_resumed_stream_gives_the_last_responses_own(self) -> None:
        first = Events().start().message("Part one").events[:-3]
        second = Events().start().message(" and two.").completed().events
        for event in second:
            if "response" in event:
                event["response"]["id"] = "resp_second"
        response = respond(first + second)
        assert response.raw.id == "resp_second"
        assert response.raw.output_text == " and two."

    def test_a_pydantic_response_format_is_parsed(self) -> None:
        class City(BaseModel):
            name: str

        ok = respond(
            Events().start().message('{"name":', ' "Oslo"}').completed().events,
            response_format=City,
        )
        assert ok.raw.output_parsed == City(name="Oslo")
        bad = respond(Events().start().message("not json").completed().events, response_format=City)
        assert bad.raw.output_text == "not json"  # replayed without the format


def test_chat_chunks_still_build_chat_raws() -> None:
    # Both APIs are provider "openai": each chunk's codec builds its own kind of raw.
    event = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
    }
    payload = json.dumps(event).encode()
    chat = ChatCodec(Request(messages=({"role": "user", "content": "hi"},)), model="m")
    chunk = chat.events().map(None, event, payload)
    assert chunk is not None and isinstance(chunk.raw, ChatCompletionChunk)
    acc = Accumulator()
    acc.extend([chunk])
    assert acc.response().raw.choices[0].message.content == "Hi"


def test_responses_raw_of_no_events_is_none() -> None:
    assert responses_raw([], rxllm.Response()) is None


def test_deltas_without_indexes_are_not_repeated_from_the_final_output() -> None:
    # A proxy that leaves out output_index / content_index: the final output is not
    # mistaken for parts nobody delivered.
    events = Events().start().message("Hi", " there").completed().events
    for event in events:
        if event["type"] == "response.output_text.delta":
            del event["output_index"], event["content_index"]
    assert respond(events).text == "Hi there"


def test_a_calls_events_are_matched_by_item_id_when_the_index_is_missing() -> None:
    events = Events().start().call("call_1", "f", '{"a":', " 1}").call("call_2", "g", "{}")
    events.completed()
    for event in events.events:
        if event["type"].startswith("response.function_call_arguments"):
            del event["output_index"]
    response = respond(events.events)
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_1", "f", '{"a": 1}'),
        ("call_2", "g", "{}"),
    ]
