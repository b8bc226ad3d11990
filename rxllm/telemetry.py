"""OpenTelemetry for every call: one span per call and one per tool run, as the GenAI
semantic conventions describe them, through `opentelemetry-api` only.

Without an OpenTelemetry SDK configured by the application every span is the API's no-op
one; with one, each subscription of a call is a `chat {model}` span (kind CLIENT) that
starts at the subscription and ends exactly once: completed (status unset), failed
(status ERROR, `error.type` = the error's class name, the exception recorded with every
credential scrubbed) or cancelled (`rxllm.cancelled = true`; a `take_until` stop is a
cancellation, not an error). Its parent is the span current where the call was
subscribed — the bridge captures that context at subscription, since the call runs on a
thread or a task of its own. The attributes at the end come from the response the bridge
accumulates anyway (usage, model, id, finish reason): nothing is done per chunk except at
the first one (an event, and `gen_ai.response.time_to_first_chunk`).

Two contexts matter while a call runs. Until its first chunk (the request: the SDK's HTTP
call and its retries) the call's span is the current span, so an HTTP client's own spans
are its children. From the first chunk on, and for every notification, the context of
the subscription is current again, so what subscribers start (a retry, the next call of a
batch) is not made a child of the call that happened to notify them; the call's span
rides along under a key of rxllm's own (`tool_parent`), where `ops.tool_results` finds the
call that asked for a tool. An operator that subscribes later calls from its own
notifications (`ops.tool_loop`, `ops.retry`) carries the context of its own subscription
(`subscription_context` / `within`).

Message content (`gen_ai.input.messages`, `gen_ai.output.messages`,
`gen_ai.system_instructions`, a tool's arguments and result) is recorded only when
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is `true` when the call starts, as
the conventions' JSON, with the call's credentials scrubbed. Log records (one DEBUG line
per call, on the `rxllm` logger) never hold a key either.

Why ~560 lines in one module: a call's span from subscription to its one end, the contexts
it is carried in, and tool spans, with the GenAI conventions' attributes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from rxllm._genai import input_messages, output_messages, tool_arguments
from rxllm.errors import scrub

if TYPE_CHECKING:
    from rxllm.accumulator import Accumulator
    from rxllm.models import ToolCall
    from rxllm.request import Request

__all__ = [
    "CAPTURE_CONTENT",
    "CallInfo",
    "CallTrace",
    "ToolTrace",
    "provider_name",
    "start_call",
    "start_tool",
    "subscription_context",
    "tool_parent",
    "within",
]

_T = TypeVar("_T")

_log = logging.getLogger("rxllm")


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("rxllm")
    except Exception:  # run from a source tree without being installed
        return None


_tracer = trace.get_tracer("rxllm", _version())
"""A proxy until the application sets a tracer provider: spans go to whichever is set."""

CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The environment variable that opts in to recording messages (`true`), read per call."""

_CAPTURING = frozenset({"true", "span_only", "span_and_event"})

_CALL_SPAN = otel_context.create_key("rxllm.call_span")
"""Where the delivery context of a call keeps the call's span (for `tool_parent`)."""

_PROVIDER_NAMES: Mapping[str, str] = {
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "openai-responses": "openai",
}
"""rxllm's provider names whose GenAI conventions' well-known value differs."""

_PARAMS: Mapping[str, tuple[str, type]] = {
    "temperature": ("gen_ai.request.temperature", float),
    "top_p": ("gen_ai.request.top_p", float),
    "top_k": ("gen_ai.request.top_k", float),
    "frequency_penalty": ("gen_ai.request.frequency_penalty", float),
    "presence_penalty": ("gen_ai.request.presence_penalty", float),
    "max_tokens": ("gen_ai.request.max_tokens", int),
    "max_completion_tokens": ("gen_ai.request.max_tokens", int),
    "max_output_tokens": ("gen_ai.request.max_tokens", int),
    "seed": ("gen_ai.request.seed", int),
}
"""Request parameters the conventions name, with the attribute and its type."""


def provider_name(name: str) -> str:
    """`gen_ai.provider.name` for an rxllm provider name: the conventions' well-known value
    where there is one, else rxllm's own name.

    >>> provider_name("xai"), provider_name("anthropic"), provider_name("ollama")
    ('x_ai', 'anthropic', 'ollama')
    """
    return _PROVIDER_NAMES.get(name, name)


def subscription_context() -> Context:
    """The context current now: what an operator keeps at its subscription, to subscribe its
    later calls in (`within`), whatever thread or notification it does that from."""
    return otel_context.get_current()


def within(ctx: Context, fn: Callable[[], _T]) -> _T:
    """`fn()` with `ctx` as the current context (a call subscribed there is a child of the
    span current in `ctx`)."""
    token = otel_context.attach(ctx)
    try:
        return fn()
    finally:
        otel_context.detach(token)


def tool_parent() -> Context:
    """The context a tool run's span starts in: the current one, with the span of the call
    that is delivering right now (the call that asked for the tool) as its parent."""
    current = otel_context.get_current()
    span = otel_context.get_value(_CALL_SPAN, current)
    if isinstance(span, Span):
        return trace.set_span_in_context(span, current)
    return current


def _capturing() -> bool:
    return os.environ.get(CAPTURE_CONTENT, "").strip().lower() in _CAPTURING


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What a call's span says about its request: the provider's name, the model, the
    request (its parameters and, when content is captured, its messages), and where to
    find the credentials to scrub when the call fails before it is even made (a missing
    key, a client that cannot be built); once it is made, its codec says."""

    provider: str
    model: str | None = None
    request: Request | None = None
    secrets: Callable[[], Sequence[str]] | None = None


def start_call(info: CallInfo | None) -> CallTrace:
    """Start the span of one call, now (at its subscription), as a child of the span
    current here. `info` None: a call built without a request (`call_observable`): the
    provider's name is taken from the call in `CallTrace.bind`."""
    return CallTrace(info, otel_context.get_current())


class CallTrace:
    """The span of one call and the contexts its notifications run in; the bridge's hooks.

    Every method is safe to call from any thread and never raises: telemetry must not break
    a call. The span is ended once, by the first of `completed` / `failed` / `cancelled`.
    """

    __slots__ = (
        "_call",
        "_capture",
        "_ended",
        "_lock",
        "_server",
        "_started_at",
        "call_context",
        "delivery_context",
        "info",
        "recording",
        "span",
    )

    def __init__(self, info: CallInfo | None, parent: Context) -> None:
        self.info = info
        self._call: Any = None
        self._ended = False
        self._lock = threading.Lock()
        self._server = False
        self._capture = False
        self._started_at = time.monotonic()
        model = info.model if info is not None else None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.stream": True,
        }
        if info is not None:
            attributes["gen_ai.provider.name"] = provider_name(info.provider)
        if model:
            attributes["gen_ai.request.model"] = model
        self.span: Span = _tracer.start_span(
            f"chat {model}" if model else "chat",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        self.recording = self.span.is_recording()
        self.call_context = trace.set_span_in_context(self.span, parent)
        """Current while the call sends its request (until the first chunk)."""
        self.delivery_context = otel_context.set_value(_CALL_SPAN, self.span, parent)
        """Current while the call's notifications are delivered: the subscriber's context,
        with the call's span where `tool_parent` finds it."""

    # --- the bridge's hooks ------------------------------------------------------------

    def bind(self, call: Any) -> None:
        """The call was made (at subscription): what it adds to the span — the provider of
        a call without `CallInfo`, the server, the request's parameters and, when
        captured, its messages."""
        self._call = call
        if not self.recording:
            return
        try:
            span = self.span
            if self.info is None:
                span.set_attribute("gen_ai.provider.name", provider_name(str(call.provider)))
            self._set_server()
            request = self.info.request if self.info is not None else None
            if request is None:
                return
            span.set_attributes(_request_attributes(request))
            self._capture = _capturing()
            if self._capture:
                secrets = self._secrets()
                span.set_attribute(
                    "gen_ai.input.messages", _json(input_messages(request.messages), secrets)
                )
                if request.system:
                    span.set_attribute(
                        "gen_ai.system_instructions",
                        _json([{"type": "text", "content": request.system}], secrets),
                    )
        except Exception as error:
            _log.debug("rxllm could not describe a call's request on its span: %r", type(error))

    def first_chunk(self) -> None:
        """The first chunk arrived: the event, and the time to it from the subscription."""
        if not self.recording:
            return
        try:
            elapsed = time.monotonic() - self._started_at
            self.span.set_attribute("gen_ai.response.time_to_first_chunk", elapsed)
            self.span.add_event(
                "rxllm.first_chunk", {"gen_ai.response.time_to_first_chunk": elapsed}
            )
        except Exception as error:
            _log.debug("rxllm could not record the first chunk on a span: %r", type(error))

    def completed(self, received: Accumulator) -> None:
        """The call completed: the response's attributes, status unset."""
        if self._end_once():
            self._close(received, "completed")

    def failed(self, error: BaseException, received: Accumulator | None = None) -> None:
        """The call failed with `error` (what its subscriber receives): status ERROR."""
        if self._end_once():
            self._close(received, "failed", error)

    def cancelled(self, received: Accumulator | None = None) -> None:
        """The call was disposed (a Stop, `take_until`, a closed client): not an error."""
        if self._end_once():
            self._close(received, "cancelled")

    @property
    def ended(self) -> bool:
        """Whether the span was ended."""
        return self._ended

    # --- inside ------------------------------------------------------------------------

    def _end_once(self) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    def _secrets(self) -> tuple[str, ...]:
        call = self._call
        try:
            if call is not None:
                return tuple(call.codec.secrets())
            if self.info is not None and self.info.secrets is not None:
                return tuple(self.info.secrets())
        except Exception:
            pass
        return ()

    def _set_server(self) -> None:
        if self._server or self._call is None:
            return
        url = getattr(self._call, "server_url", None)
        if not isinstance(url, str) or not url:
            return
        attributes = _server_attributes(url)
        if attributes:
            self.span.set_attributes(attributes)
            self._server = True

    def _close(
        self, received: Accumulator | None, outcome: str, error: BaseException | None = None
    ) -> None:
        span = self.span
        try:
            if self.recording:
                self._set_server()  # the SDK's default host is known once its client is made
                if received is not None and len(received):
                    span.set_attributes(_response_attributes(received))
                    if self._capture:
                        span.set_attribute(
                            "gen_ai.output.messages",
                            _json(
                                output_messages(received.response(), outcome, error is not None),
                                self._secrets(),
                            ),
                        )
                if outcome == "cancelled":
                    span.set_attribute("rxllm.cancelled", True)
                elif error is not None:
                    _record_error(span, error, self._secrets())
            if _log.isEnabledFor(logging.DEBUG):
                self._log(outcome, error)
        except Exception as failure:
            _log.debug("rxllm could not describe a call's end on its span: %r", type(failure))
        finally:
            span.end()

    def _log(self, outcome: str, error: BaseException | None) -> None:
        """One DEBUG record, made with the call's span current (a logging handler of
        OpenTelemetry's links it to the span)."""
        info = self.info
        name = f"{info.provider}:{info.model}" if info is not None else "a call"
        token = otel_context.attach(self.call_context)
        try:
            if error is None:
                _log.debug("%s %s", name, outcome)
            else:
                message = scrub(str(error), *self._secrets())
                _log.debug("%s failed: %s: %s", name, type(error).__name__, message)
        finally:
            otel_context.detach(token)


def _server_attributes(url: str) -> dict[str, Any]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {}
    if not parts.hostname:
        return {}
    if port is None:
        port = 80 if parts.scheme == "http" else 443
    return {"server.address": parts.hostname, "server.port": port}


def _request_attributes(request: Request) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    params = request.params
    for name, (attribute, kind) in _PARAMS.items():
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = kind(value)
    stop = params.get("stop", params.get("stop_sequences"))
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    choices = params.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attributes["gen_ai.request.choice.count"] = choices
    if request.response_format is not None:
        attributes["gen_ai.output.type"] = "json"
    elif request.audio is not None:
        attributes["gen_ai.output.type"] = "speech"
    return attributes


def _response_attributes(received: Accumulator) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if received.model:
        attributes["gen_ai.response.model"] = received.model
    if received.id:
        attributes["gen_ai.response.id"] = received.id
    if received.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [received.finish_reason]
    usage = received.usage
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cache_read_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
        if usage.cache_write_tokens:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
        if usage.reasoning_tokens:
            attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    return attributes


def _record_error(span: Span, error: BaseException, secrets: Sequence[str]) -> None:
    """Status ERROR, `error.type`, and the exception as the conventions' event, its message
    and stack trace (with every chained cause) scrubbed of credentials."""
    kind = type(error)
    message = scrub(str(error), *secrets)
    module = kind.__module__
    qualified = (
        f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__
    )
    span.set_attribute("error.type", kind.__name__)
    span.add_event(
        "exception",
        {
            "exception.type": qualified,
            "exception.message": message,
            "exception.stacktrace": scrub("".join(traceback.format_exception(error)), *secrets),
        },
    )
    span.set_status(Status(StatusCode.ERROR, message[:1000]))


def _json(value: Any, secrets: Sequence[str]) -> str:
    return scrub(json.dumps(value, ensure_ascii=False, default=_fallback), *secrets)


def _fallback(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    return repr(value)


# --- tool runs -------------------------------------------------------------------------


def start_tool(call: ToolCall, parent: Context | None = None) -> ToolTrace:
    """Start the `execute_tool {name}` span of one tool run, a child of the span current in
    `parent` (`tool_parent()` where the tool call arrived: the call that asked for it)."""
    return ToolTrace(call, otel_context.get_current() if parent is None else parent)


class ToolTrace:
    """The span of one tool run (kind INTERNAL); ended once, by the first of `succeeded`,
    `failed` and `cancelled`."""

    __slots__ = ("_capture", "_ended", "_lock", "context", "span")

    def __init__(self, call: ToolCall, parent: Context) -> None:
        self._ended = False
        self._lock = threading.Lock()
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.type": "function",
        }
        if call.id:
            attributes["gen_ai.tool.call.id"] = call.id
        self.span: Span = _tracer.start_span(
            f"execute_tool {call.name}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        self.context = trace.set_span_in_context(self.span, parent)
        self._capture = self.span.is_recording() and _capturing()
        if self._capture:
            try:
                self.span.set_attribute(
                    "gen_ai.tool.call.arguments", _json(tool_arguments(call.arguments), ())
                )
            except Exception as error:
                _log.debug("rxllm could not record a tool's arguments: %r", type(error))

    @contextmanager
    def current(self) -> Iterator[None]:
        """The tool's span as the current one (spans the tool makes are its children)."""
        token = otel_context.attach(self.context)
        try:
            yield
        finally:
            otel_context.detach(token)

    def _end_once(self) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    def succeeded(self, output: Any) -> None:
        """The tool returned `output`."""
        if not self._end_once():
            return
        try:
            if self._capture:
                self.span.set_attribute("gen_ai.tool.call.result", _json(output, ()))
        except Exception as error:
            _log.debug("rxllm could not record a tool's result: %r", type(error))
        finally:
            self.span.end()

    def failed(self, error: BaseException | str, error_type: str = "_OTHER") -> None:
        """The tool raised `error`, or could not run (`error` the message why, `error_type`
        what it was, e.g. "unknown_tool")."""
        if not self._end_once():
            return
        try:
            if self.span.is_recording():
                if isinstance(error, str):
                    self.span.set_attribute("error.type", error_type)
                    self.span.set_status(Status(StatusCode.ERROR, scrub(error)))
                else:
                    _record_error(self.span, error, ())
        except Exception as failure:
            _log.debug("rxllm could not record a tool's failure: %r", type(failure))
        finally:
            self.span.end()

    def cancelled(self) -> None:
        """The tool run was cancelled by a Stop."""
        if not self._end_once():
            return
        try:
            self.span.set_attribute("rxllm.cancelled", True)
        finally:
            self.span.end()
