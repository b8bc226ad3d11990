"""`tool_results(registry)`: run the Python functions the model called; their results out.

A tool's failure is part of the conversation, not of the stream: arguments that are not
JSON, that do not fit the function's signature, an unknown tool name, or an exception
raised by the tool all become a `ToolResult` whose `error` says what went wrong, so the
model can read it and try again. Only the source's own errors fail the stream.

Why ~400 lines in one module: the sync and the asyncio paths of one operator, which must
keep the same rules (results in call order, a Stop cancels running tools, `concurrency`) and
are tested as one.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pydantic
import reactivex
from opentelemetry.context import Context
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxllm import telemetry
from rxllm._loops import call_on_loop, run_awaitable
from rxllm.models import ToolCall, ToolResult
from rxllm.telemetry import ToolTrace

__all__ = ["Registry", "ToolResult", "registry_of", "tool_results"]

Registry = Mapping[str, Callable[..., Any]] | Sequence[Callable[..., Any]]


def tool_results(
    registry: Registry, *, concurrency: int = 1
) -> Callable[[reactivex.Observable[ToolCall]], reactivex.Observable[ToolResult]]:
    """Run each tool call's Python function and emit its `ToolResult`, in order.

    `registry` maps tool names to functions, or is a sequence of functions named by their
    `__name__`. The call's JSON arguments are validated and coerced against the function's
    signature by `pydantic.validate_call` (callable objects: their `__call__`; builtins are
    called as they are). Tools run one at a time, in the order of the calls; with
    `concurrency=n`, up to `n` run at once (sync tools on worker threads, async ones as
    tasks on the loop) and the results still come out in the order of the calls.

    A failure is a result, not an error: `error` is set (and `content` says it) when the
    arguments are not a JSON object or do not fit the signature, when the tool is unknown
    ("unknown tool 'x'; known: a, b"), or when the function raises. Errors of the source
    pass through (calls not yet run are dropped). A tool that raises `SystemExit` or
    `KeyboardInterrupt` (a `sys.exit()` in it) ends the stream with that exception as its
    error, whatever thread or task ran the tool: `collect` / `iterate` / `acollect` raise it
    again where the stream is read, where it means what it always means.

    Each run is an OpenTelemetry `execute_tool {name}` span (`rxllm.telemetry`), a child of
    the span of the call that asked for the tool, current while the tool runs; its status is
    ERROR when the tool raised, could not take its arguments or is unknown.

    Sync functions run on the thread that delivers the call. Async functions (or any
    function returning an awaitable): subscribed inside a running asyncio loop, every tool
    runs in a task on that loop (sync ones too, so they stay in order; a slow sync tool
    blocks the loop as it would anywhere, unless `concurrency` > 1 sends it to a worker
    thread — so a sync function that needs the running loop, e.g. one returning a Task,
    must be an `async def` there) and results are delivered on the loop's thread;
    disposing cancels the running tools. Subscribed outside a loop, an async tool runs to
    completion with `asyncio.run` on the thread that runs it; with `concurrency` > 1 tools
    run on worker threads and the results are delivered from them, one at a time.

        calls:    -weather(Oslo)------nope()-----|
        tool_results([weather])
        output:   -R(output="sunny")--R(error="unknown tool 'nope'; known: weather")-|

    >>> import rxllm
    >>> from rxllm import Chunk, ToolCallDelta, ops
    >>> def add(a: int, b: int) -> int:
    ...     return a + b
    >>> call = ToolCallDelta(index=0, id="c1", name="add", arguments='{"a": 1, "b": "2"}')
    >>> llm = rxllm.scripted([Chunk(tool_calls=(call,))])
    >>> results = llm.stream("1+2?").pipe(ops.tool_calls(), ops.tool_results([add]))
    >>> [r.output for r in rxllm.iterate(results)]
    [3]
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"tool_results(concurrency=...) must be an int >= 1, not {concurrency!r}")
    tools = registry_of(registry)

    def operator(calls: reactivex.Observable[ToolCall]) -> reactivex.Observable[ToolResult]:
        def subscribe(
            observer: abc.ObserverBase[ToolResult], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                if concurrency > 1:
                    return _run_in_threads(tools, calls, observer, scheduler, concurrency)
                return _run_blocking(tools, calls, observer, scheduler)
            return _run_on_loop(tools, calls, observer, scheduler, loop, concurrency=concurrency)

        return reactivex.create(subscribe)

    return operator


def _validated(function: Callable[..., Any]) -> Callable[..., Any]:
    for candidate in (function, getattr(function, "__call__", None)):  # noqa: B004 - a callable object's method
        if candidate is None:
            continue
        try:
            return pydantic.validate_call(candidate)
        except pydantic.PydanticUserError:
            continue
    return function  # a builtin: pydantic cannot read its signature


def registry_of(registry: Registry) -> dict[str, Callable[..., Any]]:
    if isinstance(registry, Mapping):
        named = list(registry.items())
    elif isinstance(registry, Sequence) and not isinstance(registry, str):
        named = []
        for function in registry:
            name = getattr(function, "__name__", None)
            if not isinstance(name, str) or name == "<lambda>":
                raise ValueError(
                    f"tool {function!r} has no usable __name__: pass a mapping "
                    "{'name': function} instead of a list"
                )
            named.append((name, function))
    else:
        raise TypeError(
            "tool_results() takes a mapping of name -> function or a list of functions, "
            f"not {type(registry).__name__}"
        )
    tools: dict[str, Callable[..., Any]] = {}
    for name, function in named:
        if not callable(function):
            raise TypeError(f"tool {name!r} is not callable: {function!r}")
        if name in tools:
            raise ValueError(f"two tools are named {name!r}: pass a mapping to rename one")
        tools[name] = _validated(function)
    return tools


class _Aborted(Exception):
    """A tool raised `SystemExit` or `KeyboardInterrupt`. Carried as an ordinary exception
    out of worker threads, executors and tasks (which would die with it silently, leave the
    stream without an end, or take the event loop down), then handed to `on_error` as the
    original `error`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__} in a tool")
        self.error = error


def _abort(observer: abc.ObserverBase[Any], aborted: _Aborted) -> None:
    """End the stream with the tool's own `SystemExit` / `KeyboardInterrupt`: raised again
    by `collect`, `iterate`, `acollect` where the stream is read."""
    observer.on_error(aborted.error)  # type: ignore[arg-type]


def _start(
    tools: Mapping[str, Callable[..., Any]], call: ToolCall, parent: Context | None = None
) -> ToolResult | _Pending:
    """Run `call`: its result, or an awaitable of it when the tool is async. Its span is a
    child of the span current in `parent` (where the call arrived). Raises `_Aborted` when
    the tool raised `SystemExit` or `KeyboardInterrupt`."""
    span = telemetry.start_tool(call, parent)
    tool = tools.get(call.name)
    if tool is None:
        known = ", ".join(tools) or "(none)"
        result = ToolResult(call=call, error=f"unknown tool {call.name!r}; known: {known}")
        span.failed(result.error or "", "unknown_tool")
        return result
    try:
        with span.current():
            output = tool(**call.args)
            if isinstance(output, Iterator):  # read once, here: the model and the result see it
                output = list(output)  # pyright: ignore[reportUnknownArgumentType]
    except Exception as error:
        span.failed(error)
        return ToolResult(call=call, error=_describe(call, error))
    except (SystemExit, KeyboardInterrupt) as error:  # the span still ends
        span.failed(error)
        raise _Aborted(error) from None
    except BaseException as error:
        span.failed(error)
        raise
    if inspect.isawaitable(output):
        return _Pending(call, output, span)
    span.succeeded(output)
    return ToolResult(call=call, output=output)


class _Pending:
    """An async tool's run, to be awaited where it can run; if it never is (`close`), its
    span still ends."""

    __slots__ = ("call", "output", "span")

    def __init__(self, call: ToolCall, output: Awaitable[Any], span: ToolTrace) -> None:
        self.call = call
        self.output = output
        self.span = span

    def __await__(self) -> Generator[Any, None, ToolResult]:
        return _finish(self.call, self.output, self.span).__await__()

    def close(self, reason: str) -> None:
        """Drop the run unstarted: its coroutine closed, its span failed with `reason`."""
        if inspect.iscoroutine(self.output):
            self.output.close()
        self.span.failed(reason, "async_tool_without_loop")


async def _finish(call: ToolCall, output: Awaitable[Any], span: ToolTrace) -> ToolResult:
    try:
        with span.current():
            value = await output
    except Exception as error:
        span.failed(error)
        return ToolResult(call=call, error=_describe(call, error))
    except (SystemExit, KeyboardInterrupt) as error:
        span.failed(error)
        raise _Aborted(error) from None
    except asyncio.CancelledError as error:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            span.cancelled()
            raise  # a Stop: this task is being cancelled
        # something the tool awaited was cancelled, not the tool: a failure like any other
        span.failed(error)
        return ToolResult(call=call, error=f"{call.name} was cancelled (CancelledError)")
    except BaseException as error:
        span.failed(error)
        raise
    span.succeeded(value)
    return ToolResult(call=call, output=value)


def _describe(call: ToolCall, error: Exception) -> str:
    if isinstance(error, pydantic.ValidationError):
        problems = "; ".join(
            ".".join(str(part) for part in e["loc"]) + ": " + e["msg"]
            for e in error.errors(include_url=False)
        )
        return f"invalid arguments for {call.name}: {problems}"
    if isinstance(error, ValueError) and str(error).startswith(f"tool call {call.name!r}"):
        return str(error)  # ToolCall.args: the arguments are not a JSON object
    return f"{type(error).__name__}: {error}"


def _run_blocking(
    tools: Mapping[str, Callable[..., Any]],
    calls: reactivex.Observable[ToolCall],
    observer: abc.ObserverBase[ToolResult],
    scheduler: abc.SchedulerBase | None,
) -> abc.DisposableBase:
    def on_next(call: ToolCall) -> None:
        if not isinstance(call, ToolCall):
            observer.on_error(_not_a_call(call))
            return
        try:
            outcome = _start(tools, call, telemetry.tool_parent())
            if not isinstance(outcome, ToolResult):
                outcome = _await_here(call, outcome)
        except _Aborted as aborted:
            _abort(observer, aborted)
            return
        observer.on_next(outcome)

    return calls.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)


def _await_here(call: ToolCall, outcome: _Pending) -> ToolResult:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_awaitable(outcome)
    error = (
        f"async tool {call.name!r} cannot run here: the call arrived on a thread running "
        "an asyncio loop, but tool_results() was subscribed outside it"
    )
    outcome.close(error)
    return ToolResult(call=call, error=error)


def _run_on_loop(
    tools: Mapping[str, Callable[..., Any]],
    calls: reactivex.Observable[ToolCall],
    observer: abc.ObserverBase[ToolResult],
    scheduler: abc.SchedulerBase | None,
    loop: asyncio.AbstractEventLoop,
    *,
    concurrency: int = 1,
) -> abc.DisposableBase:
    queue: deque[tuple[ToolCall, Context]] = deque()  # with where each arrived (its span's parent)
    running: deque[asyncio.Future[ToolResult]] = deque()  # started, in the calls' order
    # sync tools get threads of their own, not the loop's default executor (which is
    # smaller than n on small machines and also resolves the loop's DNS lookups)
    pool = (
        ThreadPoolExecutor(concurrency, thread_name_prefix="rxllm-tool")
        if concurrency > 1
        else None
    )
    task: asyncio.Task[None] | None = None
    upstream_done = False
    stopped = False

    def on_loop(action: Callable[[], None]) -> None:
        call_on_loop(loop, action)

    async def run_one(call: ToolCall, parent: Context) -> ToolResult:
        if pool is not None and not _is_async(tools, call):
            outcome = await loop.run_in_executor(pool, _start, tools, call, parent)
        else:
            outcome = _start(tools, call, parent)
        return outcome if isinstance(outcome, ToolResult) else await outcome

    def free() -> bool:
        """Whether fewer than `concurrency` tools are running (finished ones waiting for an
        earlier result to go out first hold no slot)."""
        return sum(not started.done() for started in running) < concurrency

    def refill(_: object = None) -> None:
        """Start queued calls while slots are free (also each time a tool finishes)."""
        while queue and free() and not stopped:
            started = loop.create_task(run_one(*queue.popleft()))
            started.add_done_callback(refill)
            running.append(started)

    async def drain() -> None:
        nonlocal task, stopped
        try:
            while (queue or running) and not stopped:
                refill()
                result = await running[0]
                running.popleft()
                if stopped:
                    return
                observer.on_next(result)
            if upstream_done and not stopped:
                stopped = True
                if pool is not None:
                    pool.shutdown(wait=False)
                observer.on_completed()
        except Exception as error:  # a tool aborted, or a subscriber's on_next raised
            if not stopped:
                task = None  # this task ends here: stop() must not cancel it
                stop()
                if isinstance(error, _Aborted):
                    _abort(observer, error)
                else:
                    observer.on_error(error)
        finally:
            task = None

    def enqueue(call: ToolCall, parent: Context) -> None:
        nonlocal task, stopped
        if stopped:
            return
        if not isinstance(call, ToolCall):
            fail(_not_a_call(call))
            return
        queue.append((call, parent))
        refill()  # a free slot: it starts now
        if task is None:
            task = loop.create_task(drain())

    def fail(error: Exception) -> None:
        nonlocal stopped
        if stopped:
            return
        stop()
        observer.on_error(error)

    def complete() -> None:
        nonlocal upstream_done, stopped
        upstream_done = True
        if task is None and not stopped:
            stopped = True
            if pool is not None:
                pool.shutdown(wait=False)
            observer.on_completed()

    def stop() -> None:
        nonlocal stopped
        stopped = True
        queue.clear()
        for started in running:
            started.cancel()
        running.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if task is not None:
            task.cancel()

    def arrived(call: ToolCall) -> None:
        parent = telemetry.tool_parent()  # here: the call that asked for it is delivering
        on_loop(lambda: enqueue(call, parent))

    upstream = calls.subscribe(
        arrived,
        lambda error: on_loop(lambda: fail(error)),
        lambda: on_loop(complete),
        scheduler=scheduler,
    )
    return CompositeDisposable(upstream, Disposable(lambda: on_loop(stop)))


def _is_async(tools: Mapping[str, Callable[..., Any]], call: ToolCall) -> bool:
    """Whether the call's tool is a coroutine function (validate_call keeps the wrapped one)."""
    tool = tools.get(call.name)
    original = getattr(tool, "__wrapped__", tool)
    return inspect.iscoroutinefunction(original) or inspect.iscoroutinefunction(
        getattr(original, "__call__", None)  # noqa: B004 - an async callable object
    )


def _run_in_threads(
    tools: Mapping[str, Callable[..., Any]],
    calls: reactivex.Observable[ToolCall],
    observer: abc.ObserverBase[ToolResult],
    scheduler: abc.SchedulerBase | None,
    concurrency: int,
) -> abc.DisposableBase:
    """Outside a loop with `concurrency` > 1: up to that many tools at once on worker
    threads; results and the completion go out in the calls' order, one at a time."""
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="rxllm-tool")
    pending: deque[Future[ToolResult]] = deque()
    lock = threading.RLock()
    state = {"upstream_done": False, "stopped": False}

    def run(call: ToolCall, parent: Context) -> ToolResult:
        outcome = _start(tools, call, parent)
        return outcome if isinstance(outcome, ToolResult) else _await_here(call, outcome)

    def flush() -> None:
        with lock:
            try:
                while pending and pending[0].done() and not state["stopped"]:
                    observer.on_next(pending.popleft().result())
            except _Aborted as aborted:  # the tool raised SystemExit / KeyboardInterrupt
                fail(aborted.error)  # type: ignore[arg-type]
                return
            except Exception as error:  # a subscriber's on_next raised: it goes to on_error
                fail(error)
                return
            if state["upstream_done"] and not pending and not state["stopped"]:
                state["stopped"] = True
                pool.shutdown(wait=False)
                observer.on_completed()

    def on_next(call: ToolCall) -> None:
        if not isinstance(call, ToolCall):
            fail(_not_a_call(call))
            return
        with lock:
            if state["stopped"]:
                return
            started = pool.submit(run, call, telemetry.tool_parent())
            pending.append(started)
        started.add_done_callback(lambda _: flush())

    def on_completed() -> None:
        with lock:
            state["upstream_done"] = True
        flush()

    def stop() -> None:
        with lock:
            state["stopped"] = True
            pending.clear()
        pool.shutdown(wait=False, cancel_futures=True)

    def fail(error: Exception) -> None:
        with lock:
            if state["stopped"]:
                return
            stop()
            observer.on_error(error)

    upstream = calls.subscribe(on_next, fail, on_completed, scheduler=scheduler)
    return CompositeDisposable(upstream, Disposable(stop))


def _not_a_call(item: object) -> TypeError:
    return TypeError(
        f"tool_results() takes an observable of ToolCall, got {type(item).__name__}; "
        "put ops.tool_calls() before it"
    )
