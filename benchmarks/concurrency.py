"""5. Many streams in one process: as fast as possible (5a), and at a realistic pace (5b).

Every run is a fresh `benchmarks.worker` process (peak RSS is per process), pinned to the
client's CPU; rxllm and the bare SDK alternate, run by run.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.config import Config
from benchmarks.measure import Emit
from benchmarks.results import Row, Sample, fmt_ratio
from benchmarks.stack import budget_note

__all__ = ["paced", "saturated", "threads"]

_EVERY = 0.01  # 100 chunks/s per stream
_KEEPS_UP = 0.90  # a stream keeps real time at >= 90% of the paced rate
_QUORUM = 0.95  # a step passes when >= 95% of its streams keep real time
_TARGET_SATURATED = 1.0
_TARGET_PACED = 3.0
_TARGET_MEMORY = 1.1  # peak RSS at 1000 streams, rxllm / the bare SDK (issue 19)
_TARGET_FLOOR = 0.8  # paced streams on aiohttp: rxllm / the floor reader on aiohttp


def run_worker(args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one worker process; its first stdout line is the result (JSON)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.worker", json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(process, timeout)
        if not line:
            _, err = process.communicate(timeout=30)
            raise RuntimeError(f"worker failed: {err.strip()[-1500:]}")
        return json.loads(line)
    finally:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                process.kill()
                raise TimeoutError(f"worker gave no result within {timeout:g} s")
            if selector.select(remaining):
                return process.stdout.readline()
    finally:
        selector.close()


def _throughput_rows(
    emit: Emit,
    section: str,
    label: str,
    results: dict[str, list[dict[str, Any]]],
    target: float | None,
) -> None:
    rates = {kind: [r["chunks"] / r["seconds"] for r in runs] for kind, runs in results.items()}
    ratio = Sample.of([a / b for a, b in zip(rates["rxllm"], rates["sdk"], strict=True)])
    aiohttp = "rxllm@aiohttp"
    bad = sum(r["bad"] for runs in results.values() for r in runs)
    emit(
        Row(
            section,
            f"{label}: aggregate throughput",
            {kind: Sample.of([v / 1000 for v in vs], "k chunks/s") for kind, vs in rates.items()},
            ratio,
            "rxllm / SDK",
            f">= {target:g}x" if target is not None else "",
            # a run that read wrong text has not kept up, however fast it was
            (ratio.median >= target and not bad) if target is not None else None,
            note="; ".join(
                part
                for part in (
                    f"{bad} streams with wrong text" if bad else "",
                    f"rxllm on aiohttp / SDK: {fmt_ratio(_ratios(rates, aiohttp, 'sdk'))}"
                    if aiohttp in rates
                    else "",
                )
                if part
            ),
        )
    )
    peaks = {kind: [r["rss_peak_mb"] for r in runs] for kind, runs in results.items()}
    bases = [r["rss_base_mb"] for runs in results.values() for r in runs]
    cpu = {
        kind: Sample.of([r["cpu_s"] / r["chunks"] * 1e6 for r in runs], "µs CPU/chunk")
        for kind, runs in results.items()
    }
    memory_target = f"<= {_TARGET_MEMORY:g}x" if target is not None else ""
    memory = Sample.of([a / b for a, b in zip(peaks["rxllm"], peaks["sdk"], strict=True)])
    emit(
        Row(
            section,
            f"{label}: peak RSS of the process",
            {
                **{kind: Sample.of(vs, "MB") for kind, vs in peaks.items()},
                "before the streams (all)": Sample.of(bases, "MB"),
            },
            memory,
            "rxllm / SDK",
            memory_target,
            memory.median <= _TARGET_MEMORY if memory_target else None,
            note="; ".join(
                [
                    "CPU: " + "; ".join(f"{k} {v}" for k, v in cpu.items()),
                    *(
                        [f"rxllm on aiohttp / SDK: {fmt_ratio(_ratios(peaks, aiohttp, 'sdk'))}"]
                        if aiohttp in peaks
                        else []
                    ),
                ]
            ),
        )
    )


def _ratios(values: dict[str, list[float]], top: str, bottom: str) -> Sample:
    """`top / bottom` per repetition."""
    return Sample.of([a / b for a, b in zip(values[top], values[bottom], strict=True)])


def _runs(
    url: str, config: Config, task: str, protocol: str, streams: int, cpu: int | None
) -> dict[str, list[dict[str, Any]]]:
    """`config.concurrency_reps` fresh-process runs of `task` per reader, interleaved."""
    readers = config.concurrency_readers if task == "concurrent" else ("rxllm", "sdk")
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in readers}
    for _ in range(config.concurrency_reps):
        for kind, runs in results.items():
            args = {
                "task": task,
                "url": url,
                "kind": kind,
                "protocol": protocol,
                "streams": streams,
                "chunks": config.concurrent_chunks,
                "cpu": cpu,
            }
            runs.append(run_worker(args, timeout=900))
    return results


def saturated(url: str, config: Config, emit: Emit, cpu: int | None) -> None:
    """5a. N asyncio streams of 1k chunks at once, as fast as possible."""
    streams, chunks = config.concurrent_streams, config.concurrent_chunks
    for protocol in config.concurrency_protocols:
        _throughput_rows(
            emit,
            "5a concurrency",
            f"{protocol} async, {streams} streams x {chunks // 1000}k chunks",
            _runs(url, config, "concurrent", protocol, streams, cpu),
            _TARGET_SATURATED,
        )


def threads(url: str, config: Config, emit: Emit, cpu: int | None) -> None:
    """5a. The sync path: one thread per stream."""
    streams, chunks = config.threads, config.concurrent_chunks
    for protocol in config.threads_protocols:
        _throughput_rows(
            emit,
            "5a concurrency",
            f"{protocol} sync, {streams} threads x {chunks // 1000}k chunks",
            _runs(url, config, "threads", protocol, streams, cpu),
            None,
        )


def _step(
    url: str, kind: str, protocol: str, streams: int, window: float, cpu: int | None
) -> dict[str, Any]:
    try:
        result = run_worker(
            {
                "task": "paced",
                "url": url,
                "kind": kind,
                "protocol": protocol,
                "streams": streams,
                "every": _EVERY,
                "window": window,
                "ramp": 4.0,
                "cpu": cpu,
            },
            timeout=window + 60,
        )
    except (RuntimeError, TimeoutError) as exc:
        return {"streams": streams, "passed": False, "failure": str(exc)[-300:], "rates": []}
    rates = result["rates"]
    nominal = result["nominal"]
    keeping = sum(rate >= _KEEPS_UP * nominal for rate in rates) / len(rates)
    server = result["server"]
    # The server is one process on one core: at some N it cannot pace every stream itself.
    server_rate = server["chunks"] / server["wall_s"] / streams if server["wall_s"] else 0.0
    result["keeping"] = keeping
    result["server_limited"] = server_rate < _KEEPS_UP * nominal
    result["passed"] = (
        keeping >= _QUORUM
        and not result["not_started"]
        and not result["error_count"]
        and not result["server_limited"]
    )
    return result


def _bracket(
    url: str, config: Config, kind: str, protocol: str, cpu: int | None, log: Any
) -> tuple[int, int | None, list[dict[str, Any]], str]:
    """Double N from the first step until a step fails: (last kept, first failed, steps, limit).

    `limit` says why there is nothing to bisect (the server could not pace the failing step,
    or no step failed); it is empty when the bracket can be refined.
    """
    steps: list[dict[str, Any]] = []
    best = 0
    for streams in config.paced_steps:
        step = _step(url, kind, protocol, streams, config.paced_window, cpu)
        steps.append(step)
        log(step, kind, protocol)
        if step["passed"]:
            best = streams
            continue
        limit = f"server-limited at {streams}" if step.get("server_limited") else ""
        return best, streams, steps, limit
    return best, None, steps, f"highest step tried ({best})"


def _bisect(
    url: str,
    config: Config,
    kind: str,
    protocol: str,
    cpu: int | None,
    log: Any,
    low: int,
    high: int,
) -> tuple[int, list[dict[str, Any]]]:
    """One repetition: geometric bisection of N between `low` (taken as kept) and `high`."""
    steps: list[dict[str, Any]] = []
    for _ in range(config.paced_refine):
        middle = round(math.sqrt(low * high))
        if middle in (low, high) or high - low < max(10, low // 10):
            break
        step = _step(url, kind, protocol, middle, config.paced_window, cpu)
        steps.append(step)
        log(step, kind, protocol)
        if step["passed"]:
            low = middle
        else:
            high = middle
    return low, steps


def paced(url: str, config: Config, emit: Emit, cpu: int | None) -> None:
    """5b. The most streams paced at 100 chunks/s one process keeps at >= 90% of real time."""

    def log(step: dict[str, Any], kind: str, protocol: str) -> None:
        rates = step.get("rates") or [0.0]
        print(
            f"    5b {protocol} {kind}: {step['streams']} streams -> "
            f"{'keeps up' if step['passed'] else 'falls behind'} "
            f"(p5 {rates[len(rates) // 20]:.0f}/s, median {rates[len(rates) // 2]:.0f}/s, "
            f"client CPU {step.get('client_cpu', 0):.0%}, "
            f"errors {step.get('error_count', step.get('failure', 0))})",
            flush=True,
        )

    kinds = tuple(config.paced_readers)
    for protocol in config.paced_protocols:
        brackets = {kind: _bracket(url, config, kind, protocol, cpu, log) for kind in kinds}
        steps = {kind: list(brackets[kind][2]) for kind in kinds}
        kept: dict[str, list[int]] = {kind: [] for kind in kinds}
        notes: list[str] = []
        for kind in kinds:
            best, failed, _, limit = brackets[kind]
            if failed is None or limit or not best:
                kept[kind].append(best)  # nothing to refine: the doubling's answer stands
                notes.append(f"{kind}: {limit or f'no step kept ({failed} failed)'}, not repeated")
        # The repetitions of the readers are interleaved, so a slow minute hits them alike.
        for _ in range(config.paced_reps):
            for kind in kinds:
                best, failed, _, limit = brackets[kind]
                if failed is None or limit or not best:
                    continue
                result, more = _bisect(
                    url, config, kind, protocol, cpu, log, max(1, best // 2), failed
                )
                kept[kind].append(result)
                steps[kind].extend(more)
        notes.append(
            f"N doubled from {config.paced_steps[0]} until a step failed (one run per step), "
            f"then {config.paced_reps} repetition(s), interleaved across the readers, each a "
            f"geometric bisection ({config.paced_refine} steps) between half the last kept N "
            f"and the first failed N; {config.paced_window:g} s window"
        )
        rows = [
            _paced_row(protocol, transport, kept, notes, steps)
            for transport in ("", "@aiohttp")
            if f"rxllm{transport}" in kept and "sdk" in kept
        ]
        for position, row in enumerate(rows):
            if position:  # the search's steps (every reader's) go with the first row only
                row.extra.pop("steps")
            emit(row)


def _paced_row(
    protocol: str,
    transport: str,
    kept: dict[str, list[int]],
    notes: list[str],
    steps: dict[str, list[dict[str, Any]]],
) -> Row:
    """The row of rxllm on one transport ("" httpx2, "@aiohttp") against the bare SDK on its
    default transport (the user's baseline), with the floor of rxllm's own transport."""
    mine, floor_kind = f"rxllm{transport}", f"floor{transport}"
    median = {kind: statistics.median(values) for kind, values in kept.items() if values}
    sdk, rx, floor = median.get("sdk", 0), median.get(mine, 0), median.get(floor_kind, 0)
    notes = list(notes)
    on = "the SDKs' aiohttp transport" if transport else "httpx2/httpcore2/h11"
    if sdk:
        notes.append(budget_note(round(sdk), _TARGET_PACED) + " (see 5c)")
        if 0 < floor < _TARGET_PACED * sdk:
            notes.append(
                f"the floor itself keeps only {floor / sdk:.2f}x the SDK's streams: no reader "
                f"that leaves the HTTP body to {on} reaches {_TARGET_PACED:g}x on this machine"
            )
    if floor:
        notes.append(f"rxllm keeps {rx / floor:.0%} of the floor on the same transport")
    paired = len(kept[mine]) == len(kept["sdk"]) and all(kept["sdk"])
    ratios = (
        [r / s for r, s in zip(kept[mine], kept["sdk"], strict=True)]
        if paired
        else [rx / sdk]
        if sdk
        else []
    )
    ratio: Sample | str = Sample.of(ratios) if ratios else "n/a (SDK kept up with none)"
    values: dict[str, Sample | str] = {"sdk": Sample.of(kept["sdk"], "streams")}
    values[f"rxllm{' on aiohttp' if transport else ''}"] = Sample.of(kept[mine], "streams")
    for kind, counts in kept.items():
        on_this_transport = kind.partition("@")[2] == transport.lstrip("@")
        if kind not in ("sdk", mine) and on_this_transport:
            values[f"{kind.replace('@', ' on ')} (reference)"] = Sample.of(counts, "streams")
    target = f">= {_TARGET_PACED:g}x"
    passed = (Sample.of(ratios).median >= _TARGET_PACED) if ratios else rx > 0
    if transport and floor:
        target += f", >= {_TARGET_FLOOR:.0%} of the floor"
        passed = passed and rx >= _TARGET_FLOOR * floor
    return Row(
        "5b paced streams",
        f"{protocol} async{' on aiohttp' if transport else ''}, each stream paced at 100 "
        "chunks/s: most concurrent streams kept at >= 90% of real time",
        values,
        ratio,
        "rxllm / SDK on httpx2" if transport else "rxllm / SDK",
        target,
        passed,
        note="; ".join(notes),
        extra={"protocol": protocol, "transport": transport or "httpx", "steps": steps},
    )
