"""5. Many streams in one process: as fast as possible (5a), and at a realistic pace (5b).

Every run is a fresh `benchmarks.worker` process (peak RSS is per process), pinned to the
client's CPU; rxllm and the bare SDK alternate, run by run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.config import Config
from benchmarks.measure import Emit
from benchmarks.results import Row, Sample
from benchmarks.stack import budget_note

__all__ = ["paced", "saturated", "threads"]

_EVERY = 0.01  # 100 chunks/s per stream
_KEEPS_UP = 0.90  # a stream keeps real time at >= 90% of the paced rate
_QUORUM = 0.95  # a step passes when >= 95% of its streams keep real time
_TARGET_SATURATED = 1.0
_TARGET_PACED = 3.0


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
            note=f"{bad} streams with wrong text" if bad else "",
        )
    )
    peaks = {kind: [r["rss_peak_mb"] for r in runs] for kind, runs in results.items()}
    bases = [r["rss_base_mb"] for runs in results.values() for r in runs]
    cpu = {
        kind: Sample.of([r["cpu_s"] / r["chunks"] * 1e6 for r in runs], "µs CPU/chunk")
        for kind, runs in results.items()
    }
    emit(
        Row(
            section,
            f"{label}: peak RSS of the process",
            {
                **{kind: Sample.of(vs, "MB") for kind, vs in peaks.items()},
                "before the streams (both)": Sample.of(bases, "MB"),
            },
            Sample.of([a / b for a, b in zip(peaks["rxllm"], peaks["sdk"], strict=True)]),
            "rxllm / SDK",
            note="CPU: " + "; ".join(f"{k} {v}" for k, v in cpu.items()),
        )
    )


def _runs(
    url: str, config: Config, task: str, protocol: str, streams: int, cpu: int | None
) -> dict[str, list[dict[str, Any]]]:
    """`config.concurrency_reps` fresh-process runs of `task` per reader, interleaved."""
    results: dict[str, list[dict[str, Any]]] = {"rxllm": [], "sdk": []}
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


def _search(
    url: str, config: Config, kind: str, protocol: str, cpu: int | None, log: Any
) -> tuple[int, list[dict[str, Any]], str]:
    """The largest N (of the steps tried) at which the streams keep real time."""
    steps: list[dict[str, Any]] = []
    best = 0
    failed: int | None = None
    limit = ""
    for streams in config.paced_steps:
        step = _step(url, kind, protocol, streams, config.paced_window, cpu)
        steps.append(step)
        log(step, kind, protocol)
        if step["passed"]:
            best = streams
            continue
        failed = streams
        if step.get("server_limited"):
            limit = f"server-limited at {streams}"
        break
    else:
        limit = f"highest step tried ({best})"
    if failed is not None and not limit:
        low, high = best, failed
        for _ in range(config.paced_refine):
            middle = (low + high) // 2
            if middle in (low, high) or high - low < max(10, low // 10):
                break
            step = _step(url, kind, protocol, middle, config.paced_window, cpu)
            steps.append(step)
            log(step, kind, protocol)
            if step["passed"]:
                low = best = middle
            else:
                high = middle
    return best, steps, limit


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

    for protocol in config.paced_protocols:
        found: dict[str, tuple[int, list[dict[str, Any]], str]] = {}
        for kind in ("sdk", "rxllm", "floor"):
            found[kind] = _search(url, config, kind, protocol, cpu, log)
        rx, sdk, floor = found["rxllm"][0], found["sdk"][0], found["floor"][0]
        notes = [f"{kind}: {limit}" for kind, (_, _, limit) in found.items() if limit]
        notes.append(
            f"N doubled from {config.paced_steps[0]}, then {config.paced_refine} bisection "
            f"step(s): one run per step, {config.paced_window:g} s window"
        )
        if sdk:
            notes.append(budget_note(sdk, _TARGET_PACED) + " (see 5c)")
            if 0 < floor < _TARGET_PACED * sdk:
                notes.append(
                    f"the floor itself keeps only {floor / sdk:.2f}x the SDK's streams: no "
                    "reader that leaves the HTTP body to httpx2/httpcore2/h11 reaches "
                    f"{_TARGET_PACED:g}x on this machine; rxllm keeps {rx / floor:.0%} of the "
                    "floor"
                )
        ratio: Sample | str = Sample.of([rx / sdk]) if sdk else "n/a (SDK kept up with none)"
        emit(
            Row(
                "5b paced streams",
                f"{protocol} async, each stream paced at 100 chunks/s: most concurrent streams "
                f"kept at >= 90% of real time",
                {
                    "sdk": Sample.of([sdk], "streams"),
                    "rxllm": Sample.of([rx], "streams"),
                    "floor (reference)": Sample.of([floor], "streams"),
                },
                ratio,
                "rxllm / SDK",
                f">= {_TARGET_PACED:g}x",
                (rx / sdk >= _TARGET_PACED) if sdk else rx > 0,
                note="; ".join(notes),
                extra={"protocol": protocol, "steps": {k: v[1] for k, v in found.items()}},
            )
        )
