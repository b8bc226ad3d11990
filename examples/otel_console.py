"""OpenTelemetry traces to the console: every call a span, every tool run a child span.

Shows rxllm's tracing (it depends on `opentelemetry-api` only; the application brings the
SDK, here `opentelemetry-sdk` with the console exporter) on three requests to a loopback
server speaking OpenAI's protocol through the real SDK:

1. a tool loop inside a span of the application: two `chat` spans (one per call) and an
   `execute_tool weather` span, child of the call that asked for it;
2. a call stopped by `take_until`: its span ends once, marked `rxllm.cancelled`, not an
   error;
3. a call that fails mid-stream: status ERROR, `error.type` the rxllm error's class.

Each span is printed as one indented line (name, kind of end, the GenAI attributes); drop
`formatter=` to see the exporter's full JSON, or use an OTLP exporter to send them to a
backend.

Run:  python examples/otel_console.py     (needs `pip install opentelemetry-sdk`)
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

SHOWN = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.tool.name",
    "rxllm.cancelled",
    "error.type",
)

names: dict[int, str] = {}  # span id -> name, to show each span's parent by its name


class Names(SpanProcessor):
    """Notes each span's name when it starts (a parent ends after its children)."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        names[span.context.span_id] = span.name


def one_line(span: ReadableSpan) -> str:
    """A span as one line: its name, its parent, how it ended, the attributes that matter."""
    parent = names.get(span.parent.span_id, "?") if span.parent is not None else "-"
    attributes: dict[str, Any] = {
        key.removeprefix("gen_ai."): value
        for key, value in (span.attributes or {}).items()
        if key in SHOWN
    }
    status = span.status.status_code.name
    return f"  span {span.name!r} (parent: {parent}) {status} {attributes}\n"


def main() -> None:
    # What an application does once at start-up (SimpleSpanProcessor prints at each span's
    # end; a BatchSpanProcessor is the usual choice in production).
    provider = TracerProvider()
    provider.add_span_processor(Names())
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    trace.set_tracer_provider(provider)
    app = trace.get_tracer("my-app")

    import rxllm
    from rxllm import Chunk, ToolCallDelta, ops
    from rxllm.testing import Script, Server

    def weather(city: str) -> str:
        """The weather in a city."""
        return "light snow"

    with Server() as server:
        llm = rxllm.openai("gpt-4o-mini", base_url=server.url, api_key="test", max_retries=0)

        print("1. a tool loop (spans print as they end: children first)")
        call = ToolCallDelta(index=0, id="call_1", name="weather", arguments='{"city": "Oslo"}')
        server.push(Script([Chunk(tool_calls=(call,))]))
        server.push(Script("Light snow in Oslo."))
        with app.start_as_current_span("handle request"):
            loop = llm.stream("Weather in Oslo?", tools=[weather]).pipe(ops.tool_loop())
            print(f"  answer: {rxllm.collect(loop).text!r}")

        print("2. a call stopped early")
        server.push(Script([f"word{i} " for i in range(200)], delay=0.01))
        stopped = llm.stream("Talk.").pipe(ops.take_until(lambda c: "word3" in c.content))
        print(f"  shown: {rxllm.collect(stopped).text!r}")
        print(f"  the server saw the client leave: {server.last.wait_closed(5)}")

        print("3. a call that fails mid-stream")
        server.push(Script("Half an ans", error_event="server_error"))
        try:
            rxllm.collect(llm.stream("Fail."))
        except rxllm.LLMError as error:
            print(f"  {type(error).__name__}, kept {error.partial.text!r}")
    provider.shutdown()


if __name__ == "__main__":
    main()
