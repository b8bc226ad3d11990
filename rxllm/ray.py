"""`rxllm.ray.map_batches`: the per-item pipeline of `rxllm.batch` over a Ray Data `Dataset`.

Evaluations and synthetic-data jobs over millions of prompts run on Ray Data. This runs
the same `pipeline(value) -> Observable` as `rxllm.batch` on a fixed pool of Ray actors
(`workers`), each streaming its share of the rows with at most `concurrency` calls at once
and its share of the rate limits, and returns the dataset with the answers as columns:

    input rows  | prompt         |            (column="prompt")
    output rows | prompt | text | finish_reason | input_tokens | output_tokens | cost | error

How a worker runs (one Ray actor, made once and reused for every Ray batch it gets):

- the pipeline (and the `LLM` it uses) is unpickled there once: the SDK clients are made
  again on the worker, a key given as `api_key=` travels with it, a key read from the
  environment does not (the worker reads its own: on a cluster, send it with
  `runtime_env={"env_vars": {...}}`); see `SDKProvider.__getstate__`;
- an asyncio loop on a thread of its own runs every call (the async SDK clients, one
  connection pool per worker); each Ray batch goes through `rxllm.batch` on that loop, so
  a row's failure is a result (`error`), never the dataset's;
- a gate shared by the worker's Ray batches keeps at most `concurrency` calls running at
  once and starts them no faster than the worker's share of `limits`.

Needs the `ray` extra: `pip install 'rxllm[ray]'` (Ray Data, pyarrow).

Why ~430 lines in one module: the workers, their shared gate and rate limits, and the rows'
Arrow types are one function's machinery (`map_batches`).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable, SerialDisposable

from rxllm._checks import is_int, is_number
from rxllm.batch import _Limiter, batch
from rxllm.errors import LLMError
from rxllm.models import Response
from rxllm.terminals import aiterate

if TYPE_CHECKING:
    import ray.data

__all__ = ["OUTPUT_COLUMNS", "RateLimits", "map_batches"]

OUTPUT_COLUMNS = ("text", "finish_reason", "input_tokens", "output_tokens", "cost", "error")
"""The columns `map_batches` adds to each row."""

_INSTALL_HINT = "pip install 'rxllm[ray]' (Ray Data and pyarrow)"

# Ray batches one worker runs at once (Ray actor threads): while the last calls of one
# batch finish, the next batch's calls already start, so `concurrency` stays in use.
_BATCHES_PER_WORKER = 2


def _require_ray() -> Any:
    try:
        import ray.data
    except ImportError as error:
        raise ImportError(f"rxllm.ray needs Ray Data: {_INSTALL_HINT}") from error
    return ray


@dataclass(frozen=True)
class RateLimits:
    """A provider's rate limits for a whole `map_batches` run: at most `requests` calls
    start, and calls start only while fewer than `tokens` tokens were reported, in any
    `per` seconds (a minute by default: the requests and tokens per minute of a provider's
    tier). Each of the `workers` gets `1/workers` of each (rounded down: a share of whole
    requests keeps the total in any window within the limit without the workers talking
    to each other).

    >>> RateLimits(requests=500, tokens=200_000).share(4)
    RateLimits(requests=125, tokens=50000, per=60.0)
    """

    requests: int | None = None
    """Calls that may start in any `per` seconds, over all workers."""
    tokens: int | None = None
    """Tokens (input plus output, as reported; Anthropic's cache reads left out, as its
    limits leave them out) that may be used in any `per` seconds, over all workers."""
    per: float = 60.0
    """The window, in seconds."""

    def __post_init__(self) -> None:
        for name in ("requests", "tokens"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(
                    f"RateLimits({name}=...) must be an int >= 1 or None, not {value!r}"
                )
        if not is_number(self.per) or not 0 < self.per < math.inf:
            raise ValueError(
                f"RateLimits(per=...) must be a positive number of seconds, not {self.per!r}"
            )

    def share(self, workers: int) -> RateLimits:
        """One worker's share of these limits when `workers` share them."""
        for name in ("requests", "tokens"):
            value = getattr(self, name)
            if value is not None and value < workers:
                raise ValueError(
                    f"RateLimits({name}={value}) cannot be shared by {workers} workers (each "
                    f"needs at least one per {self.per:g} s): use fewer workers, or a longer "
                    "window, e.g. RateLimits(requests=1, per=120) for one request per 2 minutes"
                )
        return RateLimits(
            requests=None if self.requests is None else self.requests // workers,
            tokens=None if self.tokens is None else self.tokens // workers,
            per=float(self.per),
        )


def map_batches(
    dataset: ray.data.Dataset,
    pipeline: Callable[[Any], reactivex.Observable[Any]],
    *,
    column: str = "prompt",
    concurrency: int = 16,
    limits: RateLimits | None = None,
    workers: int = 1,
    batch_size: int | None = None,
    **ray_args: Any,
) -> ray.data.Dataset:
    """Run `pipeline(row[column])` for every row of `dataset` on `workers` Ray actors.

    The pipeline is what `rxllm.batch` takes: a function of one value returning an
    observable of chunks, snapshots or a `Response` (`llm.stream`, `lambda p:
    llm.stream(p, system=...)`, `lambda messages: llm.stream(messages=messages).pipe(...)`).
    Each worker runs at most `concurrency` calls at once and gets its share of `limits`
    (`RateLimits`, for the whole run). The dataset it returns (lazy, as Ray Data's are) has
    the input rows plus:

    - `text`, `finish_reason`: the answer's (`Response.text`, `.finish_reason`);
    - `input_tokens`, `output_tokens`: its usage (over all calls of a tool loop), None
      when the provider reported none;
    - `cost`: its price in USD (a decimal), None when unknown;
    - `error`: None, or `"ErrorType: message"` when the row failed (the fields above are
      then what arrived before the failure, None when nothing did). A failed row never
      fails the dataset.

    `batch_size` rows go to a worker at a time (default: `4 * concurrency`); `ray_args`
    go to `Dataset.map_batches` (e.g. `num_cpus=0.5`, `runtime_env={"env_vars":
    {"OPENAI_API_KEY": ...}}` for a cluster whose workers do not have the key).

        import ray, rxllm, rxllm.ray
        llm = rxllm.openai("gpt-4o-mini", temperature=0)
        prompts = ray.data.from_items([{"prompt": p} for p in questions])
        answers = rxllm.ray.map_batches(
            prompts, llm.stream, concurrency=32, workers=4,
            limits=rxllm.ray.RateLimits(requests=5_000, tokens=2_000_000),
        )
        answers.write_parquet("answers/")

    On one machine it runs on a local Ray instance (`ray.init()`), unchanged.
    """
    installed = _require_ray()
    if not isinstance(dataset, installed.data.Dataset):
        raise TypeError(
            f"map_batches takes a ray.data.Dataset (e.g. ray.data.from_items([{{'prompt': "
            f"...}}]) or ray.data.read_parquet(...)), not {type(dataset).__name__}"
        )
    if not callable(pipeline):
        raise TypeError(
            "pipeline must be a function of a row's value returning an Observable (e.g. "
            f"llm.stream), not {type(pipeline).__name__}"
        )
    if not isinstance(column, str) or not column:
        raise TypeError(f"column must be the name of the input column, not {column!r}")
    if column in OUTPUT_COLUMNS:
        raise ValueError(
            f"column={column!r} is also an output column ({', '.join(OUTPUT_COLUMNS)}): "
            f"rename it first, e.g. dataset.rename_columns({{{column!r}: 'prompt'}})"
        )
    for name, value in (("concurrency", concurrency), ("workers", workers)):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, not {value!r}")
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1 or None, not {batch_size!r}")
    if limits is not None and not isinstance(limits, RateLimits):
        raise TypeError(
            "limits must be rxllm.ray.RateLimits(requests=..., tokens=..., per=60), the "
            f"provider's rate limits for the whole run, not {type(limits).__name__}"
        )
    reserved = {"fn_constructor_args", "fn_constructor_kwargs", "compute", "batch_format"}
    reserved |= {"fn_args", "fn_kwargs", "max_concurrency"}
    taken = sorted(reserved & set(ray_args))
    if taken:
        raise TypeError(f"map_batches sets {', '.join(taken)} itself; leave them out")
    _check_columns(dataset, column)
    job = _Job(
        pipeline=pipeline,
        column=column,
        concurrency=concurrency,
        limits=None if limits is None else limits.share(workers),
    )
    ray_args.setdefault("num_cpus", 1)
    result = dataset.map_batches(
        _Worker,
        fn_constructor_args=(job,),
        batch_size=batch_size or 4 * concurrency,
        batch_format="pyarrow",
        compute=installed.data.ActorPoolStrategy(size=workers),  # fixed: limits are split
        max_concurrency=_BATCHES_PER_WORKER,
        **ray_args,
    )
    return cast("ray.data.Dataset", result)


def _check_columns(dataset: Any, column: str) -> None:
    """The input column is there and no output column is, when the schema is known
    without running anything (the workers check each batch anyway)."""
    try:
        schema = dataset.schema(fetch_if_missing=False)
    except Exception:  # an older Ray, or a source that cannot say: the workers check
        return
    names = list(getattr(schema, "names", None) or [])
    if names:
        _check_names(names, column)


def _check_names(names: list[str], column: str) -> None:
    if column not in names:
        raise ValueError(
            f"map_batches(column={column!r}): the dataset has no column {column!r}; its "
            f"columns are {', '.join(map(repr, names))}"
        )
    clash = [name for name in OUTPUT_COLUMNS if name in names]
    if clash:
        raise ValueError(
            f"the dataset already has the column(s) {', '.join(map(repr, clash))} that "
            "map_batches adds: rename them first (dataset.rename_columns({...}))"
        )


@dataclass(frozen=True)
class _Job:
    """What every worker is given (pickled once per worker)."""

    pipeline: Callable[[Any], reactivex.Observable[Any]]
    column: str
    concurrency: int
    limits: RateLimits | None
    """This worker's share."""


class _Gate:
    """One worker's calls: at most `concurrency` at once, over all its Ray batches, started
    no faster than its share of the rate limits. Lives on the worker's loop."""

    def __init__(self, job: _Job, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots = asyncio.Semaphore(job.concurrency)
        limits = job.limits
        self.limiter = (
            _Limiter(limits.requests, limits.tokens, period=limits.per)
            if limits is not None and (limits.requests or limits.tokens)
            else None
        )

    async def _enter(self) -> None:
        await self.slots.acquire()
        try:
            if self.limiter is not None:
                wait = self.limiter.reserve()
                if wait > 0:
                    await asyncio.sleep(wait)
        except BaseException:
            self.slots.release()
            raise

    def spent(self, outcome: Response | LLMError) -> None:
        """Count a finished row's tokens against the token limit."""
        if self.limiter is not None and isinstance(outcome, Response):
            self.limiter.spent(outcome)

    def gated(
        self, pipeline: Callable[[Any], reactivex.Observable[Any]], value: Any
    ) -> reactivex.Observable[Any]:
        """`pipeline(value)`, subscribed once a slot is free and the rate allows; the slot
        is freed when it ends or is disposed."""

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            inner = SerialDisposable()
            lock = threading.Lock()
            state = {"entered": False, "left": False, "disposed": False}

            def leave() -> None:
                with lock:
                    if not state["entered"] or state["left"]:
                        return
                    state["left"] = True
                self.slots.release()

            def entered(future: Any) -> None:  # on the loop, once a slot is ours
                if future.cancelled() or future.exception() is not None:
                    return  # disposed while waiting: nothing was taken
                with lock:
                    state["entered"] = True
                    disposed = state["disposed"]
                if disposed:
                    leave()
                    return
                try:
                    source = pipeline(value)
                except Exception as error:
                    leave()
                    observer.on_error(error)  # batch makes it this row's error
                    return
                if not isinstance(source, reactivex.Observable):
                    leave()
                    observer.on_error(
                        TypeError(
                            "the pipeline must return an Observable (e.g. lambda value: "
                            f"llm.stream(value)), not {type(source).__name__}"
                        )
                    )
                    return

                def on_error(error: Exception) -> None:
                    leave()
                    observer.on_error(error)

                def on_completed() -> None:
                    leave()
                    observer.on_completed()

                inner.disposable = source.subscribe(
                    observer.on_next, on_error, on_completed, scheduler=scheduler
                )

            waiting = asyncio.run_coroutine_threadsafe(self._enter(), self.loop)
            waiting.add_done_callback(lambda f: self.loop.call_soon_threadsafe(entered, f))

            def dispose() -> None:
                with lock:
                    state["disposed"] = True
                waiting.cancel()
                inner.dispose()
                leave()

            return Disposable(dispose)

        return reactivex.create(subscribe)


class _Worker:
    """One Ray actor: its own loop thread, its gate, and `rxllm.batch` per Ray batch."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="rxllm-ray-worker", daemon=True)
        self.thread.start()
        ready.wait()
        self.gate = _Gate(job, self.loop)

    def __call__(self, table: Any) -> Any:
        """One Ray batch (a pyarrow table) -> the same rows plus the output columns."""
        import pyarrow as pa  # type: ignore[import-untyped]

        _check_names(list(table.column_names), self.job.column)
        values = table.column(self.job.column).to_pylist()
        outcomes = asyncio.run_coroutine_threadsafe(self._run(values), self.loop).result()
        rows = [_row(outcome) for outcome in outcomes]
        for name, kind in _arrow_types(pa).items():
            table = table.append_column(name, pa.array([row[name] for row in rows], type=kind))
        return table

    async def _run(self, values: list[Any]) -> list[Response | LLMError]:
        pipeline, gate = self.job.pipeline, self.gate
        outcomes: list[Response | LLMError | None] = [None] * len(values)
        results = batch(
            range(len(values)),
            lambda position: gate.gated(pipeline, values[position]),
            concurrency=self.job.concurrency,
            progress=False,
        )
        async for position, outcome in aiterate(results):
            gate.spent(outcome)
            outcomes[position] = outcome
        missing = [position for position, outcome in enumerate(outcomes) if outcome is None]
        if missing:  # never: batch emits one outcome per input
            raise RuntimeError(f"rxllm.batch gave no outcome for rows {missing[:5]}")
        return outcomes  # type: ignore[return-value]


_COST_SCALE = Decimal("1e-18")


def _arrow_types(pa: Any) -> dict[str, Any]:
    return {
        "text": pa.string(),
        "finish_reason": pa.string(),
        "input_tokens": pa.int64(),
        "output_tokens": pa.int64(),
        "cost": pa.decimal128(38, 18),
        "error": pa.string(),
    }


def _row(outcome: Response | LLMError) -> dict[str, Any]:
    """A row's output columns."""
    if isinstance(outcome, Response):
        response: Response | None = outcome
        error = None
    else:
        response = outcome.partial
        error = f"{type(outcome).__name__}: {outcome}"
    if response is None:
        return dict.fromkeys(OUTPUT_COLUMNS) | {"error": error}
    usage = response.total_usage
    cost = response.cost
    return {
        "text": response.text,
        "finish_reason": response.finish_reason,
        "input_tokens": None if usage is None else usage.input_tokens,
        "output_tokens": None if usage is None else usage.output_tokens,
        "cost": None if cost is None else Decimal(cost).quantize(_COST_SCALE),
        "error": error,
    }
