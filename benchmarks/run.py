"""The harness's command line: start the server, run the sections, write the report."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import concurrency, many, measure, stack
from benchmarks.config import Config, full, quick
from benchmarks.report import machine, plot, write_markdown
from benchmarks.results import Row
from benchmarks.server import raise_fd_limit

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parent.parent
_SECTIONS = ("1", "2", "3", "4", "5a", "5b", "5c", "6", "7")


class ServerProcess:
    """`benchmarks.server` in a child process; stops when this process closes its stdin."""

    def __init__(self, prepare: list[int], cpu: int | None) -> None:
        command = [
            sys.executable,
            "-m",
            "benchmarks.server",
            "--prepare",
            ",".join(map(str, sorted(set(prepare)))),
        ]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # bodies are encoded first: may take seconds
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _sections(only: str | None) -> list[str]:
    if not only:
        return list(_SECTIONS)
    wanted = {part.strip() for part in only.split(",") if part.strip()}
    if "5" in wanted:
        wanted |= {"5a", "5b", "5c"}
    unknown = wanted - set(_SECTIONS) - {"5"}
    if unknown:
        raise SystemExit(f"--only takes sections {', '.join(_SECTIONS)}, not {sorted(unknown)}")
    return [s for s in _SECTIONS if s in wanted]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure rxllm against the bare OpenAI/Anthropic SDKs over loopback "
        "and write docs/performance.md + docs/performance.png.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller and fewer: ~2 minutes")
    parser.add_argument("--only", help="comma-separated sections: 1,2,3,4,5a,5b,5c,6,7")
    parser.add_argument("--reps", type=int, help="override the number of repetitions")
    parser.add_argument(
        "--concurrency-protocols",
        help="providers for 5a (default: anthropic in full mode; the bare OpenAI SDK needs "
        "~95 s per run of 1000 x 1k chunks), e.g. openai,anthropic",
    )
    parser.add_argument("--paced-reps", type=int, help="repetitions of 5b's bisection")
    parser.add_argument("--paced-protocols", help="providers of 5b, e.g. anthropic,openai")
    parser.add_argument(
        "--paced-steps",
        help="5b's numbers of streams tried in turn until one fails (default: 25,50,...,1600), "
        "e.g. 1600,2000,2400 to look for a floor above the default's last step",
    )
    parser.add_argument(
        "--paced-readers",
        help="readers of 5b (default: sdk,rxllm,floor,rxllm@aiohttp,floor@aiohttp; "
        "sdk@aiohttp is the bare SDK on aiohttp)",
    )
    parser.add_argument(
        "--concurrency-readers",
        help="readers of 5a's asyncio run (default: rxllm,sdk,rxllm@aiohttp)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client CPUs")
    parser.add_argument("--out", default=str(_ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--json", help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)

    config: Config = quick() if args.quick else full()
    overrides: dict[str, object] = {}
    if args.reps:
        overrides["reps"] = overrides["concurrency_reps"] = overrides["scaling_reps"] = args.reps
        overrides["many_reps"] = args.reps
    if args.paced_reps:
        overrides["paced_reps"] = args.paced_reps
    if args.paced_steps:
        overrides["paced_steps"] = tuple(int(n) for n in args.paced_steps.split(","))
    if args.paced_protocols:
        overrides["paced_protocols"] = tuple(args.paced_protocols.split(","))
    if args.concurrency_protocols:
        overrides["concurrency_protocols"] = tuple(args.concurrency_protocols.split(","))
    if args.paced_readers:
        overrides["paced_readers"] = tuple(args.paced_readers.split(","))
    if args.concurrency_readers:
        overrides["concurrency_readers"] = tuple(args.concurrency_readers.split(","))
    if overrides:
        from dataclasses import replace

        config = replace(config, **overrides)  # type: ignore[arg-type]
    sections = _sections(args.only)

    client_cpu = server_cpu = None
    setup: list[str] = []
    if not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
        cpus = sorted(os.sched_getaffinity(0))
        client_cpu, server_cpu = cpus[0], cpus[1]
        os.sched_setaffinity(0, {client_cpu})
        setup.append(f"client pinned to CPU {client_cpu}, server process to CPU {server_cpu}")
    else:
        setup.append("processes not pinned to CPUs")
    raise_fd_limit()
    setup.append(
        f"repetitions: {config.reps} (throughput, tee), {config.scaling_reps} (scaling), "
        f"{config.ttfc_reps} (first "
        f"chunk), {config.cancel_reps} (cancellation), {config.concurrency_reps} (5a, a fresh "
        "process each)"
    )

    prepare = [
        20,
        500,
        config.many_chunks,
        config.concurrent_chunks,
        *config.sizes,
        *config.scaling_sizes,
        config.tee_chunks,
    ]
    started = time.monotonic()
    print(f"rxllm benchmarks, {config.name} mode: sections {', '.join(sections)}", flush=True)
    print("  starting the loopback server (encoding the bodies) ...", flush=True)
    server = ServerProcess(prepare, server_cpu)
    rows: list[Row] = []

    def emit(row: Row) -> None:
        rows.append(row)
        print(row.line(), flush=True)

    runs: dict[str, Callable[[], None]] = {
        "1": lambda: measure.throughput(server.url, config, emit),
        "2": lambda: measure.time_to_first_chunk(server.url, config, emit),
        "3": lambda: measure.cancellation(server.url, config, emit),
        "4": lambda: measure.tee(server.url, config, emit),
        "5a": lambda: (
            concurrency.saturated(server.url, config, emit, client_cpu),
            concurrency.threads(server.url, config, emit, client_cpu),
        ),
        "5b": lambda: concurrency.paced(server.url, config, emit, client_cpu),
        "5c": lambda: stack.stack(config, emit),
        "6": lambda: measure.accumulate_scaling(server.url, config, emit),
        "7": lambda: many.many(server.url, config, emit),
    }
    try:
        for section in sections:
            print(f"  section {section} ...", flush=True)
            section_start = time.monotonic()
            try:
                runs[section]()
            except Exception as exc:  # one broken section must not lose the others
                traceback.print_exc()
                emit(
                    Row(
                        f"{section} error",
                        f"section {section} failed: {type(exc).__name__}: {str(exc)[:200]}",
                        target="runs",
                        passed=False,
                    )
                )
            print(f"  section {section}: {time.monotonic() - section_start:.0f} s", flush=True)
    finally:
        server.close()
    elapsed = time.monotonic() - started

    targeted = [row for row in rows if row.target]
    print(
        f"\n{sum(1 for r in targeted if r.passed)} of {len(targeted)} targets met "
        f"in {elapsed / 60:.1f} minutes",
        flush=True,
    )
    for row in targeted:
        if row.passed is False:
            print(f"  FAIL {row.name}: {row.ratio_text()} (target {row.target})")
    if args.json:
        Path(args.json).write_text(measure.dump(rows), encoding="utf-8")
    if args.no_write:
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    drawn = plot(png, rows)
    if not drawn:
        print("  (no plot: install matplotlib, the `bench` extra)", flush=True)
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    write_markdown(
        out,
        rows,
        mode=config.name,
        command=command,
        seconds=elapsed,
        info=machine(),
        setup=setup,
        plot_name=png.name if drawn else None,
    )
    print(f"  wrote {out}" + (f" and {png}" if drawn else ""), flush=True)
