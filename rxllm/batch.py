"""`batch`: many calls with bounded concurrency, rate limits, progress and a checkpoint.

Each input goes through `pipeline(input)` (an observable of chunks, snapshots or a
`Response`) and comes out as `(input, Response)` — or `(input, LLMError)`: per-item
failures are results, so one bad item never sinks the run (an exception that is not an
`LLMError`, e.g. `stream()`'s `ValueError` for one input's arguments, comes wrapped in one,
with the original as its `__cause__`). A JSONL checkpoint records
every finished item; running the same batch again with it skips what already succeeded.

Why ~430 lines in one module: the rate limiter, the checkpoint and the progress line live
and die with one batch run and are never used apart from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import timedelta
from math import inf
from pathlib import Path
from typing import IO, Any, TypeVar

import pydantic
import reactivex
from pydantic import BaseModel
from reactivex import abc
from reactivex import operators as rx
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable

from rxllm._checks import is_int, is_number
from rxllm._loops import timer_scheduler
from rxllm.accumulator import materialize
from rxllm.errors import LLMError, UsageLimitExceeded
from rxllm.limits import UsageLimits, UsageMeter
from rxllm.llm import CallStream
from rxllm.models import Response
from rxllm.ops._completion import complete_with

__all__ = ["batch"]

_log = logging.getLogger("rxllm.batch")

I = TypeVar("I")  # noqa: E741 - the input type

Result = tuple[Any, Response | LLMError]


def _default_key(item: Any) -> str:
    """A hash of the item's JSON: the same in every run, or ValueError when it has none."""
    try:
        text = json.dumps(item, sort_keys=True, default=_json_value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"batch(checkpoint=...) names each input by its JSON, and {item!r:.80} has none "
            f"({exc}); pass key=... , a function that returns a stable name for an input "
            "(e.g. key=lambda row: row.id)"
        ) from None
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _named(name_of: Callable[[Any], Any], item: Any) -> str:
    """The item's key as a str (a `key=` function may return an int id)."""
    name = name_of(item)
    if isinstance(name, str):
        return name
    if isinstance(name, int | float) and not isinstance(name, bool):
        return str(name)
    raise ValueError(
        f"key({item!r:.60}) returned {type(name).__name__}: it must return a str (or a number)"
    )


def _json_value(value: Any) -> Any:
    """What stands for a pydantic model or a dataclass in a key; anything else has no key
    (its repr may name a memory address, which changes from run to run)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class _Limiter:
    """Start times and token use over the last minute (or `period` seconds: then the limits
    are per period); says how long to wait to start."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
        period: float = 60.0,
    ) -> None:
        self.clock = clock
        self.period = period
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self._starts: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds to wait before the next call may start; the slot is taken now."""
        with self._lock:
            now = self.clock()
            start = now
            if self.rpm:
                # At most `burst` starts in any `window`: 60 s for a whole rpm; for a
                # fraction, e.g. 0.5, one start per 120 s (2.5: two per 48 s).
                burst = max(1, int(self.rpm))
                window = self.period * burst / self.rpm
                while self._starts and self._starts[0] <= now - window:
                    self._starts.popleft()
                if len(self._starts) >= burst:
                    start = max(start, self._starts[-burst] + window)
            if self.tpm:
                while self._tokens and self._tokens[0][0] <= now - self.period:
                    self._tokens.popleft()
                used = sum(n for _, n in self._tokens)
                for at, n in self._tokens:
                    if used < self.tpm:
                        break
                    used -= n
                    start = max(start, at + self.period)
            self._starts.append(start)
            return start - now

    def spent(self, response: Response) -> None:
        usage = response.total_usage  # every call of a tool loop's steps
        if self.tpm and usage is not None:
            tokens = usage.total_tokens
            if response.provider == "anthropic":  # cache reads do not count to its limits
                tokens -= usage.cache_read_tokens
            with self._lock:
                self._tokens.append((self.clock(), tokens))


class _Progress:
    """A one-line progress bar on a terminal; a line every 10% elsewhere."""

    def __init__(self, total: int, stream: IO[str] | None) -> None:
        self.total = total
        self.stream = stream
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def advance(self, failed: bool) -> None:
        if self.stream is None:
            return
        with self._lock:
            self.done += 1
            self.failed += failed
            rate = self.done / max(1e-9, time.monotonic() - self.started)
            width = 24
            filled = int(width * self.done / max(1, self.total))
            line = (
                f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                f"  {self.failed} failed  {rate:.1f}/s"
            )
            if self._tty:
                self.stream.write("\r" + line)
                if self.done == self.total:
                    self.stream.write("\n")
            elif self.done == self.total or (
                10 * self.done // self.total > 10 * (self.done - 1) // self.total
            ):
                self.stream.write(line + "\n")  # a line per tenth done
            self.stream.flush()


class _Checkpoint:
    """Append-only JSONL of finished items: successes are reused, failures are retried."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, Response] = {}
        if path.exists():
            data = path.read_bytes()
            lines = data.split(b"\n")
            torn = lines.pop()  # after the last newline: b"" unless the last line is cut
            for number, line in enumerate(lines, 1):
                self._read(number, line)
            if torn.strip():
                try:
                    self._load(torn)
                except ValueError:
                    # The last record was cut short (the run was killed as it wrote):
                    # that item is simply done again. Cut it off.
                    _log.warning("checkpoint %s: dropping a cut-off last line", path)
                    with path.open("r+b") as out:
                        out.truncate(len(data) - len(torn))
                else:  # whole, but without its newline (e.g. saved by an editor)
                    with path.open("ab") as out:
                        out.write(b"\n")
        self._lock = threading.Lock()
        self._closed = False  # the batch was disposed: its file is final

    def close(self) -> None:
        """No more records: a call finishing as its batch is disposed (`iterate(...).close()`,
        a `take`) is not written after the dispose returns, so the file a caller reads then
        is the checkpoint a resume will read (that item is simply done again)."""
        with self._lock:
            self._closed = True

    def _read(self, number: int, line: bytes) -> None:
        if not line.strip():
            return
        try:
            self._load(line)
        except ValueError as exc:
            raise ValueError(
                f"checkpoint {self.path} line {number} is not a checkpoint record ({exc}); "
                "fix or delete that line to resume"
            ) from None

    def _load(self, line: bytes) -> None:
        record = json.loads(line)
        key = record.get("key") if isinstance(record, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise ValueError('expected a JSON object with a "key"')
        response = record.get("response")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if response is not None:
            try:
                # through JSON mode, so the audio's base64 is decoded
                self.done[str(key)] = Response.model_validate_json(json.dumps(response))
            except pydantic.ValidationError as exc:
                raise ValueError(f"its response is not a Response: {exc}") from None

    def write(self, key: str, outcome: Response | LLMError) -> None:
        if isinstance(outcome, Response):
            record: dict[str, Any] = {
                "key": key,
                "response": outcome.model_dump(mode="json"),
            }
        else:
            record = {
                "key": key,
                "error": {
                    "type": type(outcome).__name__,
                    "message": str(outcome),
                    "retryable": outcome.retryable,
                },
            }
        line = json.dumps(record).encode() + b"\n"
        with self._lock:
            if self._closed:
                return
            with self.path.open("ab") as out:
                out.write(line)


def batch(
    inputs: Iterable[I],
    pipeline: Callable[[I], reactivex.Observable[Any]],
    *,
    concurrency: int,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    checkpoint: str | Path | None = None,
    progress: bool | IO[str] | None = True,
    key: Callable[[I], str] | None = None,
    limits: UsageLimits | None = None,
) -> reactivex.Observable[tuple[I, Response | LLMError]]:
    """Run `pipeline` over `inputs`, at most `concurrency` calls at once.

    Emits `(input, Response)` or `(input, LLMError)` in completion order. Calls start no
    faster than `requests_per_minute`, and wait while the tokens reported in the last
    minute exceed `tokens_per_minute` (Anthropic's cache reads left out, as its limits
    leave them out; a pipeline of several calls, e.g. `ops.tool_loop()`, counts as one
    request and with the tokens of all its calls). With `checkpoint` (a JSONL path) every
    finished item
    is appended, and items that already succeeded there are emitted from it without a
    call. `progress` draws a bar on stderr (or on the given stream). `key(input)` names an
    item in the checkpoint (default: a hash of its JSON).

    `limits` (`rxllm.UsageLimits`) caps the whole batch: once a limit is reached no item
    starts (each one left comes out as `(input, UsageLimitExceeded)`), and when the usage
    of the items running crosses one, they are stopped (their HTTP calls closed) and come
    out as `(input, UsageLimitExceeded)` with what they had received as `partial`. An item
    counts as one request (a tool loop inside a pipeline counts once; give it its own
    `limits` to cap its calls); its tokens and cost are all its calls'.

        inputs:   a  b  c                                   (concurrency=2)
        call a:   ---"ok"--|
        call b:   -----X(RateLimitError)
        call c:             ---"ok"--|                      (starts when a is done)
        out:      ---------(a,Response)(b,RateLimitError)---(c,Response)--|

    Read the results with `rxllm.iterate` (a Ctrl-C then cancels the calls in flight;
    reactivex's `.run()` would leave them running), or subscribe.

    >>> import rxllm
    >>> llm = rxllm.scripted("ok")
    >>> results = rxllm.batch(["a", "b"], llm.stream, concurrency=2, progress=False)
    >>> sorted((item, r.text) for item, r in rxllm.iterate(results))
    [('a', 'ok'), ('b', 'ok')]
    """
    _check_arguments(inputs, pipeline, concurrency, progress, key)
    if limits is not None and not isinstance(limits, UsageLimits):
        raise TypeError(
            f"limits must be rxllm.UsageLimits(...), e.g. UsageLimits(cost=5), not {limits!r}"
        )
    for name, value in (
        ("requests_per_minute", requests_per_minute),
        ("tokens_per_minute", tokens_per_minute),
    ):
        if value is not None and (not is_number(value) or not 0 < value < inf):
            raise ValueError(f"{name} must be positive (or None for no limit), not {value!r}")
    items = list(inputs)
    name_of = key or _default_key
    keys: list[str] = []
    if checkpoint is not None:
        folder = Path(checkpoint).parent
        if not folder.is_dir():
            raise ValueError(
                f"checkpoint {checkpoint}: the folder {folder} does not exist; create it or "
                "choose another path"
            )
        if Path(checkpoint).is_dir():
            raise ValueError(f"checkpoint {checkpoint} is a folder: give a file's path")
        keys = [_named(name_of, item) for item in items]  # every key now: a bad one fails here

    def subscribe(
        observer: abc.ObserverBase[tuple[I, Response | LLMError]],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        store = _Checkpoint(Path(checkpoint)) if checkpoint is not None else None
        limiter = _Limiter(requests_per_minute, tokens_per_minute)
        stream = sys.stderr if progress is True else (progress or None)
        bar = _Progress(len(items), stream)
        timer = timer_scheduler()
        meter = UsageMeter(limits) if limits is not None else None

        def finished(item: I, item_key: str, outcome: Response | LLMError) -> Result:
            if isinstance(outcome, Response):
                limiter.spent(outcome)
            if store is not None:
                store.write(item_key, outcome)
            bar.advance(failed=isinstance(outcome, LLMError))
            return (item, outcome)

        def run(position: int) -> reactivex.Observable[Result]:
            item = items[position]
            item_key = keys[position] if keys else ""
            if store is not None and item_key in store.done:
                bar.advance(failed=False)
                return reactivex.just((item, store.done[item_key]))

            def call(_: Any = None) -> reactivex.Observable[Result]:
                def done(outcome: Response | LLMError) -> Result:
                    return finished(item, item_key, outcome)

                return _one(item, pipeline, meter).pipe(rx.map(done))

            def start() -> reactivex.Observable[Result]:
                refused = meter.refused() if meter is not None else None
                if refused is not None:  # no waiting for a rate limit to say so
                    return reactivex.just(finished(item, item_key, refused))
                wait = limiter.reserve()
                if wait <= 0:
                    return call()
                return reactivex.timer(timedelta(seconds=wait), scheduler=timer).pipe(
                    rx.flat_map(call)
                )

            return reactivex.defer(lambda _: start())

        merged = reactivex.from_iterable(range(len(items))).pipe(
            rx.map(run), rx.merge(max_concurrent=concurrency)
        )
        subscription = merged.subscribe(observer, scheduler=scheduler)
        if store is None:
            return subscription
        return CompositeDisposable(Disposable(store.close), subscription)  # in this order

    return reactivex.create(subscribe)


def _check_arguments(inputs: Any, pipeline: Any, concurrency: Any, progress: Any, key: Any) -> None:
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Iterable):
        raise TypeError(
            f"inputs must be a list (or another iterable) of inputs, not "
            f"{type(inputs).__name__}: for one text, pass [text]"
        )
    if not callable(pipeline):
        raise TypeError(
            "pipeline must be a function of an input returning an Observable (e.g. "
            f"llm.stream, or lambda item: llm.stream(item)), not {type(pipeline).__name__}"
        )
    if not is_int(concurrency) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1 (calls at once), not {concurrency!r}")
    if (
        progress is not None
        and not isinstance(progress, bool)
        and not callable(getattr(progress, "write", None))
    ):
        raise TypeError(
            f"progress must be True, False (or None) or a text stream (e.g. sys.stdout), "
            f"not {progress!r}"
        )
    if key is not None and not callable(key):
        raise TypeError(f"key must be a function of an input returning a str, not {key!r}")


def _one(
    item: Any, pipeline: Callable[[Any], reactivex.Observable[Any]], meter: UsageMeter | None
) -> reactivex.Observable[Response | LLMError]:
    """One item's outcome: its `Response`, or its `LLMError` as a value; with a `meter`, its
    usage counted against the batch's limits (and the item stopped when they are crossed)."""

    def subscribe(
        observer: abc.ObserverBase[Response | LLMError],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        builder = materialize()
        lock = threading.Lock()  # the item's own thread and a stop from another item's
        subscription = SingleAssignmentDisposable()
        ended = False

        def settle(outcome: Response | LLMError) -> None:
            nonlocal ended
            with lock:
                if ended:
                    return
                ended = True
            if tally is not None:
                tally.end()
            complete_with(observer, outcome)

        def on_error(error: Exception) -> None:
            settle(_as_result(error))

        def on_completed() -> None:
            try:
                with lock:
                    response = builder.response()
            except Exception as error:
                on_error(error)
                return
            settle(response)

        def stop(error: UsageLimitExceeded) -> None:
            """A limit was crossed: cancel this item's calls, keep what it received."""
            subscription.dispose()
            with lock:
                if not ended:
                    try:
                        error.partial = builder.response()
                    except Exception:  # e.g. an item that is not a chunk: nothing to keep
                        error.partial = None
            settle(error)

        def on_next(value: Any) -> None:
            with lock:
                if ended:
                    return
                builder.add(value)
            crossed = tally.see(value) if tally is not None else None
            if crossed is not None:
                stop(crossed)

        tally = None
        try:
            source = pipeline(item)
            if not isinstance(source, reactivex.Observable):
                raise TypeError(  # noqa: TRY301 - reported like any failure of the pipeline
                    "the pipeline must return an Observable (e.g. lambda item: "
                    f"llm.stream(item)), not {type(source).__name__}"
                )
        except Exception as error:
            on_error(error)
            return reactivex.disposable.Disposable()
        if meter is not None:
            started = meter.start(
                requested_model=source.provider.model if isinstance(source, CallStream) else None,
                on_stop=stop,
            )
            if isinstance(started, UsageLimitExceeded):
                settle(started)
                return reactivex.disposable.Disposable()
            tally = started
        subscription.disposable = source.subscribe(
            on_next if tally is not None else builder.add,  # no lock per chunk without limits
            on_error,
            on_completed,
            scheduler=scheduler,
        )
        return subscription

    return reactivex.create(subscribe)


def _as_result(error: Exception) -> LLMError:
    """An item's failure as a result: an `LLMError` as is; anything else (e.g. a `ValueError`
    from `stream()` for this input's arguments) wrapped, with the original as its cause."""
    if isinstance(error, LLMError):
        _drop_tracebacks(error)  # the provider's failure: its frames hold the connection
        return error
    # The pipeline's own bug keeps its traceback: it says where the code failed.
    wrapped = LLMError(f"this input's pipeline failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


def _drop_tracebacks(error: BaseException) -> None:
    """A failure kept as a value does not need the frames it was raised through: they hold
    the call's connection objects alive (40-60 KB per error; a batch keeps thousands)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
