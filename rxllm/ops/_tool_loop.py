"""`tool_loop()`: call → run the tools it asked for → call again, streamed as one answer.

The model's tool calls are run (by `tool_results`), their results go back in the next
call's messages, and so on until an answer asks for no tool, or `max_steps` calls were
made. Downstream sees one stream of chunks: each call's chunks in turn, and after each
call whose tools ran one chunk carrying the step's `tool_results`. That chunk is what makes
the stream readable as steps: `accumulate()`, `to_response()` and `collect` start a new
step's response after it (the finished ones go to `Response.steps`), `tool_calls()` and
`partial()` start over, `sentences()` ends the step's last sentence, and `text()` simply
goes on with the next call's text.

Why ~470 lines in one module: the loop's steps, usage limits, pause turns and which stage a
Stop disposes are one operator's state machine.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import abc
from reactivex import operators as rx
from reactivex.disposable import Disposable

from rxllm import telemetry
from rxllm._checks import is_int
from rxllm.accumulator import Accumulator
from rxllm.errors import LLMError, UsageLimitExceeded
from rxllm.limits import StreamTally, UsageLimits, UsageMeter
from rxllm.llm import CallStream
from rxllm.models import Chunk, Response, ToolResult, Usage
from rxllm.ops._chunk_input import not_chunks
from rxllm.ops._tool_results import Registry, registry_of, tool_results
from rxllm.request import tool_name

__all__ = ["tool_loop"]

Pipe = Callable[[reactivex.Observable[Chunk]], reactivex.Observable[Chunk]]

_NO_TOOLS_AFTER = frozenset({"length", "content_filter"})
"""Finish reasons after which the calls are not run: their arguments may be cut off."""

_PAUSED = "pause_turn"
"""Anthropic's stop reason for a turn it paused (a server tool such as web search ran long):
the answer goes back as it is, and the model goes on with it."""

_FORCING = frozenset({"any", "tool", "function"})
"""`tool_choice` types that force a tool call (with OpenAI's "required"): sent with the first
call only, or the model would call tools for ever (the OpenAI Agents SDK resets it too)."""


def tool_loop(
    tools: Registry | None = None,
    *,
    max_steps: int = 8,
    concurrency: int = 1,
    per_call: Pipe | None = None,
    limits: UsageLimits | None = None,
) -> Callable[[reactivex.Observable[Chunk]], reactivex.Observable[Chunk]]:
    """Run the tools the model calls and call it again with their results, until it answers.

    Applied to a provider stream (what `llm.stream(..., tools=[...])` returns): each step is
    one call. When a call ends asking for tools, they are run as `tool_results` runs them
    (validated arguments; a failure or an unknown tool is a result the model reads; async
    tools on the loop; `concurrency` of them at once), one chunk carrying the step's
    `tool_results` is emitted, and the next call is made with the same request (a
    `tool_choice` that forces a tool goes with the first call only: it would never let the
    model answer) plus the answer (`Response.message()`) and the results
    (`ToolResult.messages`) in the provider's format.

    The stream completes after an answer that asks for no tool; after the tools of the
    `max_steps`-th call ran (no further call: its `finish_reason` says "tool_calls" and
    `messages()` is still a conversation the providers take, every call answered); or when
    the model calls a tool offered as a pydantic model class, a final-answer tool (no call
    of that step is run: read it from `answer.tool_calls`). The calls of an answer cut off
    at max_tokens or filtered are not run. An answer Anthropic paused (`pause_turn`: a
    server tool such as web search ran long) is not an end: it goes back as it is and the
    next call continues it, as the same step (no chunk between the two, the paused one's
    finish reason left out, the step's usage both calls'); at `max_steps` the loop ends
    with it, `finish_reason` "pause_turn".

    `tools`: functions to run, as a list or a mapping from the names the model calls them
    by, over the request's own `tools=` that are Python functions (those run by default);
    a tool offered to the model as a dict with a schema needs one here (a provider's own
    tool, e.g. Anthropic's `{"type": "web_search_20250305", ...}`, runs without: the
    provider runs it). `per_call`: an operator applied
    to every call that keeps it a stream of chunks, e.g. `ops.retry()` (a retry resumes
    within its step). `limits` (`rxllm.UsageLimits`) caps the calls, tokens and cost of
    the whole loop: no call starts once a limit is reached, and a call whose usage crosses
    one is stopped (its HTTP call closed); either way the stream fails with
    `rxllm.UsageLimitExceeded`, the answer so far as its `partial` (a call retried by
    `per_call` counts once, with the usage of all its attempts).

    Downstream it is one stream: `collect` gives the last answer, with the earlier steps in
    `Response.steps` (each with its `tool_results`), `total_usage` for all of them, and
    `messages()` for the whole exchange; `text()` streams every step's text; `tool_calls()`
    each step's calls. Disposing (a Stop) cancels the call in flight, or the async tools
    running on the loop, starts no further tool and makes no further call (a tool already
    running on a thread finishes there; its result is dropped). An error carries the whole
    answer so far: `error.partial` is the step it broke in, with the finished ones in
    `steps`. A call without an id (some compatible servers send none) gets one,
    `call_<step>_<n>`, so that its result can refer to it.

    Traces (`rxllm.telemetry`): every call is a span, a child of the span current where the
    loop was subscribed (also the later ones, which the loop subscribes from a tool's
    completion, wherever that runs); the tools' `execute_tool` spans are children of the
    span of the call that asked for them.

        call 1:   -"Let me check."-[weather(Oslo)]-|
        tools:                                      R("sunny")
        call 2:                                       -"It is sunny."-|
        tool_loop()
        output:   -"Let me check."-[weather(Oslo)]-R-"It is sunny."-|

    >>> import rxllm
    >>> from rxllm import Chunk, ToolCallDelta, ops
    >>> def weather(city: str) -> str:
    ...     '''The weather in a city.'''
    ...     return "sunny"
    >>> call = ToolCallDelta(index=0, id="c1", name="weather", arguments='{"city": "Oslo"}')
    >>> llm = rxllm.scripted([Chunk(tool_calls=(call,))], then=["It is sunny in Oslo."])
    >>> question = llm.stream("Weather in Oslo?", tools=[weather])
    >>> answer = rxllm.collect(question.pipe(ops.tool_loop()))
    >>> answer.text, answer.steps[0].tool_results[0].output
    ('It is sunny in Oslo.', 'sunny')
    """
    if not is_int(max_steps) or max_steps < 1:
        raise ValueError(f"max_steps must be an int >= 1 (calls in all), not {max_steps!r}")
    if per_call is not None and not callable(per_call):
        raise TypeError(f"per_call must be an operator such as ops.retry(), not {per_call!r}")
    if limits is not None and not isinstance(limits, UsageLimits):
        raise TypeError(
            f"limits must be rxllm.UsageLimits(...), e.g. UsageLimits(requests=5), not {limits!r}"
        )
    if tools is not None:
        registry_of(tools)  # a list of lambdas, two tools of one name: refused now
    tool_results({}, concurrency=concurrency)  # its argument checks, now

    def operator(source: reactivex.Observable[Chunk]) -> reactivex.Observable[Chunk]:
        if not isinstance(source, CallStream):
            raise TypeError(
                "tool_loop() makes the next calls itself, so it goes first, on what "
                "llm.stream(..., tools=[...]) returns: llm.stream(...).pipe(ops.tool_loop(), "
                "...); for retries put them inside: ops.tool_loop(per_call=ops.retry())"
            )
        registry, final = _registry(source, tools)
        run = tool_results(registry, concurrency=concurrency)
        if per_call is not None:
            source.pipe(per_call)  # an operator that does not fit fails here, not mid-loop
        rules = _Rules(run, final, max_steps, per_call, limits)

        def subscribe(
            observer: abc.ObserverBase[Chunk], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return _Loop(source, observer, scheduler, rules).start()

        return reactivex.create(subscribe)

    return operator


def _registry(
    source: CallStream, given: Registry | None
) -> tuple[dict[str, Callable[..., Any]], frozenset[str]]:
    """The functions to run (the request's own, `given` over them) and the names of the
    final-answer tools (model classes); every other tool offered must have a function."""
    offered = list(source.request.tools or ())
    if not offered:
        raise ValueError(
            "tool_loop(): this call offers the model no tools: pass them to the call, "
            "llm.stream(prompt, tools=[my_function]).pipe(ops.tool_loop())"
        )
    registry: dict[str, Callable[..., Any]] = {}
    final: set[str] = set()
    names: list[str] = []
    for position, tool in enumerate(offered):
        name = tool_name(position, tool)
        if name is None:  # a provider's own tool (web search): the provider runs it
            continue
        if not _provider_tool(tool):
            names.append(name)
        if isinstance(tool, type):
            final.add(name)
        elif callable(tool):
            registry[name] = tool
    if given is not None:
        mine = (
            given.items()
            if isinstance(given, Mapping)
            else zip(registry_of(given), given, strict=True)
        )
        registry.update(mine)
    final -= registry.keys()
    missing = [name for name in names if name not in registry and name not in final]
    if missing:
        raise ValueError(
            f"tool_loop(): no function to run for {', '.join(map(repr, missing))} (offered "
            "to the model as a dict): pass the functions, e.g. "
            f"ops.tool_loop({{{missing[0]!r}: my_function}})"
        )
    return registry, frozenset(final)


def _provider_tool(tool: Any) -> bool:
    """A tool the provider defines (a dict with a versioned `type` and no schema: Anthropic's
    web search, code execution, ...), not a function the model asks us to run."""
    return (
        isinstance(tool, Mapping)
        and "input_schema" not in tool
        and tool.get("type") not in (None, "custom", "function")
    )


def _later_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of the calls after the first: a forcing `tool_choice` left out (an
    Anthropic one keeps its `disable_parallel_tool_use` as an "auto" choice)."""
    later = dict(params)
    choice = later.get("tool_choice")
    if choice == "required":
        del later["tool_choice"]
    elif isinstance(choice, Mapping) and choice.get("type") in _FORCING:
        if "disable_parallel_tool_use" in choice:
            later["tool_choice"] = {
                "type": "auto",
                "disable_parallel_tool_use": choice["disable_parallel_tool_use"],
            }
        else:
            del later["tool_choice"]
    return later


@dataclasses.dataclass(frozen=True)
class _Rules:
    """What every subscription of one `tool_loop(...)` shares."""

    run: Callable[[reactivex.Observable[Any]], reactivex.Observable[ToolResult]]
    final: frozenset[str]
    max_steps: int
    per_call: Pipe | None
    limits: UsageLimits | None


class _Loop:
    """One subscription of a tool loop: the step in flight and what the steps said."""

    def __init__(
        self,
        source: CallStream,
        observer: abc.ObserverBase[Chunk],
        scheduler: abc.SchedulerBase | None,
        rules: _Rules,
    ) -> None:
        self._source = source
        self._observer = observer
        self._scheduler = scheduler
        self._rules = rules
        self._lock = threading.RLock()
        self._stage = 0  # counts the calls and tool runs started: whose subscription is held
        self._held: abc.DisposableBase | None = None
        self._stopped = False
        self._steps: list[Response] = []
        self._meter = UsageMeter(rules.limits) if rules.limits is not None else None
        self._context = telemetry.subscription_context()  # where every call is subscribed

    def start(self) -> abc.DisposableBase:
        self._call(self._source, 0)
        return Disposable(self._dispose)

    def _dispose(self) -> None:
        with self._lock:
            self._stopped = True
            held, self._held = self._held, None
        if held is not None:
            held.dispose()

    def _hold(self, stage: int, subscribe: Callable[[], abc.DisposableBase]) -> None:
        """Subscribe the stage's work and keep its subscription for a Stop, unless the loop
        already moved on (the work finished while subscribing: it ran synchronously) or was
        stopped meanwhile (then it is disposed at once)."""
        with self._lock:
            if self._stopped:
                return
            self._stage = stage
        subscription = subscribe()
        with self._lock:
            if self._stopped:
                late = subscription
            elif self._stage == stage:
                self._held, late = subscription, None
            else:
                late = None
        if late is not None:
            late.dispose()

    def _running(self, _: object = None) -> bool:
        return not self._stopped

    def _finish(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._observer.on_completed()

    def _fail(self, error: Exception) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._observer.on_error(error)

    def _over_limit(self, error: UsageLimitExceeded, partial: Response) -> None:
        """A usage limit stops the loop: the call in flight is cancelled (its HTTP call
        closed), and the error carries the answer so far."""
        error.partial = partial.model_copy(update={"steps": tuple(self._steps)})
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            held, self._held = self._held, None
        if held is not None:
            held.dispose()
        self._observer.on_error(error)

    def _start_call(self, stream: CallStream) -> StreamTally | UsageLimitExceeded | None:
        """Count the call about to start against the limits: its tally (None without
        limits), or the error when a limit is already reached."""
        if self._meter is None:
            return None
        return self._meter.start(requested_model=stream.provider.model)

    def _call(self, stream: CallStream, step: int, carry: Usage | None = None) -> None:
        """Make call number `step`; `carry`: the usage of the paused calls it continues."""
        acc = Accumulator()
        per_call = self._rules.per_call
        calls = stream if per_call is None else stream.pipe(per_call)
        named: set[int] = set()  # the calls (indexes) that have an id
        tally = self._start_call(stream)
        if isinstance(tally, UsageLimitExceeded):
            self._over_limit(tally, Response(provider=stream.provider.name))
            return

        def on_next(chunk: Chunk) -> None:
            if not isinstance(chunk, Chunk):
                raise TypeError(
                    f"{not_chunks('tool_loop', chunk)}: per_call must keep each call a stream "
                    "of chunks (e.g. ops.retry()); put other operators after tool_loop()"
                )
            if chunk.tool_calls:
                chunk = _with_ids(chunk, step, named)
            acc.push(chunk)
            shown = chunk
            if carry is not None and chunk.usage is not None:
                shown = shown.model_copy(update={"usage": carry + chunk.usage})
            if chunk.finish_reason == _PAUSED and not named and self._goes_on(step):
                shown = shown.model_copy(update={"finish_reason": None})  # the turn goes on
            self._observer.on_next(shown)
            if tally is not None:
                crossed = tally.see(chunk)
                if crossed is not None:
                    tally.end()
                    self._over_limit(crossed, acc.response())

        def on_error(error: Exception) -> None:
            if tally is not None:
                tally.end()
            if isinstance(error, LLMError) and self._steps:
                partial = error.partial or Response(provider=stream.provider.name)
                error.partial = partial.model_copy(update={"steps": tuple(self._steps)})
            self._fail(error)

        def on_completed() -> None:
            if tally is not None:
                tally.end()
            answer = acc.response()
            if answer.finish_reason == _PAUSED and not answer.tool_calls and self._goes_on(step):
                self._resume(stream, answer, step, carry)
                return
            if (
                not answer.tool_calls
                or answer.finish_reason in _NO_TOOLS_AFTER
                or any(call.name in self._rules.final for call in answer.tool_calls)
            ):
                self._finish()
                return
            self._tools(stream, answer, step)

        self._hold(
            2 * step,
            lambda: telemetry.within(
                self._context,
                lambda: calls.subscribe(on_next, on_error, on_completed, scheduler=self._scheduler),
            ),
        )

    def _goes_on(self, step: int) -> bool:
        """Whether another call may follow call number `step`."""
        return step + 1 < self._rules.max_steps

    def _resume(self, stream: CallStream, paused: Response, step: int, carry: Usage | None) -> None:
        """Continue a paused turn: the same request with the paused answer, as sent."""
        try:
            following = stream.follow_up(paused, ())  # the answer, and no tool results
        except Exception as error:  # an answer that cannot go back (arguments cut off)
            self._fail(error)
            return
        usage = paused.usage if carry is None else carry + (paused.usage or Usage())
        self._call(following, step + 1, usage)

    def _tools(self, stream: CallStream, answer: Response, step: int) -> None:
        results: list[ToolResult] = []
        last = step + 1 >= self._rules.max_steps

        def on_completed() -> None:
            with self._lock:
                if self._stopped:
                    return
            done = tuple(results)
            try:
                following = None if last else self._next_call(stream, answer, done)
                self._observer.on_next(Chunk(tool_results=done, provider=answer.provider))
            except Exception as error:  # a subscriber's on_next raised, or no next message
                self._fail(error)
                return
            if following is None:
                self._finish()
                return
            self._steps.append(answer.model_copy(update={"tool_results": done}))
            self._call(following, step + 1)

        # each call is handed over only while nobody stopped the loop: sync tools run one
        # after the other inside this subscribe, so a Stop must hold back the next one
        calls = reactivex.from_iterable(answer.tool_calls).pipe(rx.take_while(self._running))
        self._hold(
            2 * step + 1,
            lambda: calls.pipe(self._rules.run).subscribe(
                results.append, self._fail, on_completed, scheduler=self._scheduler
            ),
        )

    def _next_call(
        self, stream: CallStream, answer: Response, results: tuple[ToolResult, ...]
    ) -> CallStream:
        """The same request with the answer and the tools' results added to its messages
        (in the provider's protocol), a forcing `tool_choice` left out."""
        following = stream.follow_up(answer, results)
        request = following.request
        return CallStream(
            following.provider,
            dataclasses.replace(request, params=_later_params(request.params)),
        )


def _with_ids(chunk: Chunk, step: int, named: set[int]) -> Chunk:
    """The chunk, the first fragment of a call that came without an id given one (a result
    must name its call; some compatible servers send none); `named` keeps which calls have
    one, so that every reader downstream sees the same id."""
    deltas = list(chunk.tool_calls)
    changed = False
    for n, delta in enumerate(deltas):
        if delta.index in named:
            continue
        named.add(delta.index)
        if not delta.id:
            deltas[n] = delta.model_copy(update={"id": f"call_{step}_{delta.index}"})
            changed = True
    return chunk.model_copy(update={"tool_calls": tuple(deltas)}) if changed else chunk
