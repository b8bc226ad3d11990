"""The report: `docs/performance.md` (machine, method, every row, the verdicts) and a plot."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.results import Row, Sample, fmt_value

__all__ = ["machine", "plot", "write_markdown"]

_PACKAGES = ("rxllm", "openai", "anthropic", "httpx2", "reactivex", "jiter", "pydantic")

_SECTIONS = {
    "1 throughput": (
        "1. Throughput",
        "One stream of small chunks (1-4 characters each) read to the end, per chunk. "
        "**raw** is the wire path's practical limit: `httpx2` line splitting + `json.loads`, "
        "no SDK. **sdk** is bare SDK iteration (`chat.completions.create(stream=True)`, "
        "`messages.create(stream=True)`) joining the text deltas. **rxllm** is "
        "`collect(llm.stream(p).pipe(accumulate(), take_until(never())))` "
        "(`acollect` in asyncio) on the same SDK client. The ratio is throughput "
        "(= the other's time / rxllm's time), per repetition. The raw path is measured in "
        "the same run, so the >= 0.55x target follows this machine's wire speed. The "
        "rows *async on aiohttp* read with rxllm on the SDKs' aiohttp transport "
        "(`rxllm[aiohttp]`, the default of the clients rxllm makes when installed) against "
        "the bare SDK on its default httpx2 transport (the user's baseline), and against "
        "the raw wire on aiohttp (aiohttp's line reader + `json.loads`).",
    ),
    "2 first chunk": (
        "2. Time to first chunk",
        "From the call to the first text chunk, warm connection pool, a 20-chunk stream "
        "written at once. rxllm is the same pipeline as in 1, timed at its first "
        "`on_next` with text. In the rows *async on aiohttp*, rxllm reads on the SDKs' "
        "aiohttp transport and **sdk** is still the bare SDK on its default one "
        "(**sdk@aiohttp**, the bare SDK on aiohttp, for reference).",
    ),
    "3 cancellation": (
        "3. Cancellation",
        "The server paces one chunk every 1 ms or 5 ms and records the `time.monotonic()` "
        "of every write and of the moment it sees the client's socket close (CLOCK_MONOTONIC "
        "is shared by the processes). The client stops at its 30th text chunk "
        "(`take_until(predicate)`), or a Stop button (`take_until(subject)`) fires at an "
        "arbitrary moment between two chunks; the stop time is taken in the client just "
        "before it stops. *Events written after the stop* are chunks the server wrote "
        "later than that moment.",
    ),
    "4 tee": (
        "4. tee",
        "`rxllm.tee(llm.stream(p), 3)`, each branch `accumulate()`d and collected, vs one "
        "stream with the same pipeline, vs three separate calls of it at once.",
    ),
    "5a concurrency": (
        "5a. Concurrent streams, as fast as possible",
        "One fresh process per run: N streams at once (asyncio tasks on one loop, or one "
        "thread per stream on the sync path), each 1k chunks, read to the end. Aggregate "
        "throughput is all chunks / wall time; peak RSS is the process's high-water mark "
        "(`VmHWM`), with the memory it had before the streams started for comparison. The "
        "asyncio run uses the Anthropic SDK by default, the faster of the two and so the "
        "stricter baseline: the bare OpenAI SDK needs ~95 s per run of 1000 x 1k chunks "
        "(add it with `--concurrency-protocols anthropic,openai`, ~8 more minutes). "
        "**rxllm@aiohttp** is rxllm on the SDKs' aiohttp transport (`rxllm[aiohttp]`, "
        "the default of the async clients rxllm makes when installed); the ratios are "
        "against the bare SDK on its default httpx2 transport.",
    ),
    "5b paced streams": (
        "5b. Concurrent streams at a realistic pace",
        "The server paces every stream at 100 chunks/s. One fresh asyncio process per step "
        "opens N streams; once all have started, a thread counts each stream's chunks over "
        "the window. A step passes when >= 95% of its streams get >= 90 chunks/s with no "
        "error (and the server itself kept the pace). N is doubled until a step fails; then "
        "each repetition bisects N (geometric steps) between half the last kept N and the "
        "first failed one, the readers' repetitions interleaved; the row shows the median "
        "[min-max] of the repetitions and the per-repetition ratio. **floor** is a "
        "reference, not a contestant: the SDK's "
        "streaming-response request with its body read through httpx2/httpcore2/h11 exactly "
        "as rxllm reads it, and then thrown away (no SSE, no JSON, no chunks): the most "
        "streams any reader that leaves HTTP to those libraries can keep. The rows *on "
        "aiohttp* run rxllm and the floor on the SDKs' own aiohttp transport "
        "(`DefaultAioHttpClient`, `rxllm[aiohttp]`), still against the bare SDK on its "
        "default httpx2 transport (the user's baseline); their floor is the same reader "
        "on aiohttp.",
    ),
    "5c paced chunk cost": (
        "5c. Where a paced chunk's CPU goes",
        "A paced server flushes each SSE event on its own, so each event is one HTTP chunk "
        "of the chunked transfer encoding, and h11, httpcore2 and httpx2 handle every one "
        "separately, however many arrive per socket read. Here the server's exact bytes go "
        "through the real `AsyncAnthropic` -> httpx2 -> httpcore2 -> h11 stack from "
        "httpcore2's `AsyncMockBackend` (no socket, no event-loop wake-ups), 1 or 20 HTTP "
        "chunks per read, and the CPU per chunk of each reader is measured: **floor** is the "
        "SDK's streaming response read with `aiter_raw()` and thrown away, i.e. the HTTP "
        "stack alone. Compare it with 5b's budget: 3x the bare SDK's paced streams leaves "
        "the CPU per chunk named in 5b's note for *everything* — the HTTP stack included.",
    ),
    "7 many prompts": (
        "7. Many prompts: one process, Ray Data, a hand-written loop",
        "N prompts (Anthropic Messages, each answered by an unpaced stream), the same total "
        "concurrency for each variant, each in a fresh process allowed on every CPU (the "
        "server keeps its own): a hand-written `asyncio.Semaphore` loop over the bare "
        "`AsyncAnthropic` (its default transport), `rxllm.batch(prompts, llm.stream)` read "
        "with `aiterate` in one process (the clients rxllm makes), and "
        "`rxllm.ray.map_batches(dataset, llm.stream, workers=2)` on a local Ray instance "
        "(`ray.init` not timed, the workers' start timed). Every answer's text is checked. "
        "On a 2-core machine whose other core serves the streams, Ray's second worker has "
        "little CPU of its own: this measures what Ray costs, not how it scales out.",
    ),
    "6 accumulate scaling": (
        "6. accumulate() scaling",
        "The rxllm pipeline of 1 (OpenAI, sync) end to end at growing sizes, and "
        "`accumulate()` alone over chunks already in memory. Linear means the time ratio "
        "stays within 1.1x the chunk ratio.",
    ),
}


_ANALYSIS = {
    "5a concurrency": (
        "**Where the memory goes** (measured once with `tracemalloc`, not by this run: a "
        "script over `benchmarks.clients`' readers, 300 concurrent Anthropic streams of 1k "
        "chunks, a snapshot every 0.5 s, the largest kept). Before issue 19 rxllm peaked at "
        "1.41x the bare SDK; 60% of what it traced were the events' JSON bytes (116 B per "
        "chunk) that the accumulator kept for `Response.raw`. Now an Anthropic text delta "
        "that says nothing but its text keeps its content block's index (a small int) and "
        "`MessagesCodec.text_event(index, text)` rebuilds the very event from it and the text "
        "piece the accumulator keeps anyway, for `Response.raw` and `Chunk.raw` alike "
        "(`tests/providers/test_fast_path_parity.py -k keep_no_bytes`). What rxllm still "
        "traces beyond the bare SDK reader are the accumulator's two lists (8 B per chunk "
        "each) and the joined text at the end; the text pieces themselves the bare reader "
        "keeps too. On aiohttp httpcore2's per-connection objects are gone, so rxllm peaks "
        "below the bare SDK on httpx2. OpenAI's chunks still keep their bytes: each carries "
        "a random `obfuscation` field, so no template rebuilds it.",
    ),
    "5b paced streams": (
        "**Why 80% of the aiohttp floor is out of reach.** The floor reader sends the SDK's "
        "request and counts the text events in the body's bytes with one C-level scan: "
        "socket, event loop, aiohttp (its C HTTP parser, and a read timeout it re-arms on "
        "every read) and httpx2's stream wrapper are all it pays per event. 80% of its "
        "streams leaves, per event, 25% of the floor's own CPU for what any reader that "
        "delivers chunks must do: decode the SSE, parse the JSON, map it to a chunk, "
        "accumulate it and deliver it. That is ~4-5 µs in rxllm (section 1, end to end per "
        "chunk; the raw wire path of line splitting and `json.loads` alone is ~3 µs on "
        "httpx2 and slower on aiohttp's line reader) and 15-80 µs in the bare SDKs, against "
        "a floor that costs ~5-6 µs per event all in. A py-spy profile of rxllm at 1,200 "
        "paced Anthropic streams on aiohttp (`benchmarks.worker` task `paced`, start-up "
        "imports left out) puts ~23% of the samples in aiohttp, ~13% in asyncio, ~5% in "
        "httpx2's stream wrapper (all of which the floor pays too), and ~47% in rxllm's "
        "per-event path: SSE decoding 6%, JSON parsing and the read loop 11%, the codec's "
        "mapping 5%, building chunks 6%, the accumulator 11%, delivery and `take_until` 8%. "
        "No one part of it is large enough that removing it would reach 80%.",
    ),
}


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    info: dict[str, str] = {}
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info["CPU"] = f"{cpu}, {os.cpu_count()} cores"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
    info["OS"] = platform.platform()
    info["Python"] = platform.python_version() + f" ({platform.python_implementation()})"
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    info["packages"] = ", ".join(versions)
    info["rxllm source"] = _source_state()
    return info


def _source_state() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "rxllm"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (" + uncommitted changes in rxllm/" if dirty else "")


def _cell(value: Sample | str) -> str:
    return value if isinstance(value, str) else fmt_value(value)


def _values(row: Row) -> str:
    return "<br>".join(f"{key}: {_cell(value)}" for key, value in row.values.items())


def _table(rows: list[Row]) -> list[str]:
    lines = [
        "| measurement | median [min-max] | ratio | target | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = row.ratio_text()
        if ratio and row.ratio_label:
            ratio = f"{ratio}<br>({row.ratio_label})"
        name = row.name + (f"<br>*{row.note}*" if row.note else "")
        verdict = f"**{row.verdict}**" if row.passed is not None else row.verdict
        lines.append(f"| {name} | {_values(row)} | {ratio} | {row.target or '—'} | {verdict} |")
    return lines


def write_markdown(
    path: Path,
    rows: list[Row],
    *,
    mode: str,
    command: str,
    seconds: float,
    info: dict[str, str],
    setup: list[str],
    plot_name: str | None,
) -> None:
    """Write the whole report (it is regenerated by every run; do not edit it by hand)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    targeted = [row for row in rows if row.target]
    passed = sum(1 for row in targeted if row.passed)
    failed = [row for row in targeted if row.passed is False]
    out = [
        "# Performance",
        "",
        f"<!-- Generated by `{command}`; edits are overwritten by the next run. -->",
        "",
        "How fast rxllm reads LLM streams compared with the bare OpenAI and Anthropic SDKs "
        "(Chat Completions, Messages, and in 1-3 the Responses API too), measured against "
        "a loopback SSE server that sends what the real APIs send "
        "(issue 5's harness). Regenerate with `python -m benchmarks` (full, about 50 "
        "minutes) or `python -m benchmarks --quick` (about 2 minutes).",
        "",
        f"Run: **{mode}** mode, {now}, {seconds / 60:.1f} minutes.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        *[f"- {line}" for line in setup],
        "",
        "## How to run",
        "",
        "```sh",
        "pip install -e '.[bench]'          # matplotlib, for the plot",
        "python -m benchmarks --quick       # ~2 minutes",
        "python -m benchmarks               # full: the issue's sizes, 5 repetitions",
        "python -m benchmarks --only 1,5b   # some sections (1 2 3 4 5a 5b 5c 6 7)",
        "python -m benchmarks.hotspots      # cProfile of one 100k-chunk rxllm stream",
        "python -m benchmarks.micro         # ns per SSE event, Chunk, accumulator add; GC count",
        "```",
        "",
        "## Summary",
        "",
        f"{passed} of {len(targeted)} targets met"
        + (f"; not met: {len(failed)}." if failed else "."),
        "",
        "| measurement | result | target | verdict |",
        "| --- | --- | --- | --- |",
        *[
            f"| {row.name} | {row.ratio_text()} | {row.target} | **{row.verdict}** |"
            for row in targeted
        ],
        "",
    ]
    if plot_name:
        out += [f"![throughput, pacing and scaling]({plot_name})", ""]
    sections: dict[str, list[Row]] = {}
    for row in rows:
        sections.setdefault(row.section, []).append(row)
    for key, section_rows in sections.items():
        title, method = _SECTIONS.get(key, (key, ""))
        out += [f"## {title}", "", method, "", *_table(section_rows), ""]
        if key == "5b paced streams":
            out += _paced_details(section_rows)
        for paragraph in _ANALYSIS.get(key, ()):
            out += [paragraph, ""]
    out += [
        "## Method",
        "",
        "- The server (`benchmarks/server.py`) is one asyncio process that serves pre-encoded "
        "bodies made by `rxllm.testing`'s encoder, with HTTP/1.1 keep-alive and chunked "
        "bodies; the client under test is another process. With 2 or more CPUs the two are "
        "pinned to different CPUs, so the client has one core to itself.",
        "- Every measurement is repeated (counts under Machine); repetitions of the variants "
        "compared are interleaved, ratios are taken per repetition and shown as median "
        "[min-max]. Sections 1-5a check every text read against the text sent (a mismatch "
        "fails the row); the paced search (5b) counts chunks per second only.",
        "- Clients are made once and reused, as an application would; rxllm is given the same "
        "SDK client objects as the bare SDK readers, so both have the same connection "
        "settings (`max_retries=0`).",
        "- Verdicts are computed from the medians, except for cancellation, judged on the worst "
        "repetition.",
        "",
    ]
    path.write_text("\n".join(out), encoding="utf-8")


def _paced_details(rows: list[Row]) -> list[str]:
    out = [
        "Steps of the search (p5 / median chunks/s per stream, share of streams at >= 90/s, "
        "client and server CPU in the window):",
        "",
    ]
    for row in rows:
        protocol = row.extra.get("protocol", "")
        for kind, steps in row.extra.get("steps", {}).items():
            parts = []
            for step in steps:
                rates = step.get("rates") or []
                if not rates:
                    parts.append(f"{step['streams']}: failed ({step.get('failure', '')[:80]})")
                    continue
                server = step.get("server", {})
                server_cpu = (
                    server.get("cpu_s", 0) / server["wall_s"] if server.get("wall_s") else 0
                )
                parts.append(
                    f"{step['streams']}: {'ok' if step['passed'] else 'behind'} "
                    f"(p5 {rates[len(rates) // 20]:.0f}, median {rates[len(rates) // 2]:.0f}, "
                    f"{step.get('keeping', 0):.0%} keep up, client CPU "
                    f"{step.get('client_cpu', 0):.0%}, server CPU {server_cpu:.0%}"
                    + (f", CPU steal {step['steal']:.0%}" if step.get("steal") else "")
                    + (f", {step['error_count']} errors" if step.get("error_count") else "")
                    + (", server-limited" if step.get("server_limited") else "")
                    + ")"
                )
            out.append(f"- {protocol} {kind}: " + "; ".join(parts))
    out.append("")
    return out


def plot(path: Path, rows: list[Row]) -> bool:
    """Draw throughput, paced-stream search and scaling; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    _plot_throughput(axes[0], rows)
    _plot_paced(axes[1], rows)
    _plot_scaling(axes[2], rows)
    figure.suptitle("rxllm vs the bare SDKs (loopback server; lower µs/chunk is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _plain_ticks(axis: Any, ticks: list[int]) -> None:
    """Plain numbers at `ticks` on a log axis (not 10^x, no minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def _plot_throughput(ax: Any, rows: list[Row]) -> None:
    picked = [r for r in rows if r.section == "1 throughput" and "times" in r.extra]
    if not picked:
        ax.set_title("1. throughput (not run)")
        return
    largest = max(r.extra["n"] for r in picked)
    picked = [r for r in picked if r.extra["n"] == largest]
    kinds = ["raw", "rxllm", "sdk"]
    colors = {"raw": "#999999", "rxllm": "#1f77b4", "sdk": "#d62728"}
    width = 0.27
    for i, kind in enumerate(kinds):
        medians = []
        for row in picked:
            value = row.values.get(kind)
            medians.append(value.median if isinstance(value, Sample) else 0.0)
        xs = [j + (i - 1) * width for j in range(len(picked))]
        bars = ax.bar(xs, medians, width, label=kind, color=colors[kind])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(picked)))
    ax.set_xticklabels([f"{r.extra['protocol']}\n{r.extra['mode']}" for r in picked], fontsize=9)
    ax.set_yscale("log")
    _plain_ticks(ax.yaxis, [1, 2, 5, 10, 20, 50, 100, 200])
    ax.set_ylabel("µs per chunk (median, log scale)")
    ax.set_title(f"1. throughput, {largest // 1000}k-chunk stream")
    ax.legend(fontsize=8)


def _plot_paced(ax: Any, rows: list[Row]) -> None:
    picked = [r for r in rows if r.section == "5b paced streams" and "steps" in r.extra]
    if not picked:
        ax.set_title("5b. paced streams (not run)")
        return
    styles = {
        "rxllm": "-o",
        "sdk": "--s",
        "floor": ":^",
        "rxllm@aiohttp": "-D",
        "floor@aiohttp": ":v",
        "sdk@aiohttp": "--x",
    }
    colors = {"openai": "#1f77b4", "anthropic": "#d62728"}
    tried: set[int] = set()
    for row in picked:
        for kind, steps in row.extra["steps"].items():
            # Repetitions try some N more than once: plot the median p5 rate at each N.
            at: dict[int, list[float]] = {}
            for s in steps:
                if s.get("rates"):
                    rate = 100 * s["rates"][len(s["rates"]) // 20] / s["nominal"]
                    at.setdefault(s["streams"], []).append(rate)
            points = sorted((n, statistics.median(rates)) for n, rates in at.items())
            tried.update(p[0] for p in points)
            if points:
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    styles.get(kind, "-"),
                    color=colors.get(row.extra["protocol"]),
                    label=f"{row.extra['protocol']} {kind}",
                )
    ax.axhline(90, color="gray", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    _plain_ticks(ax.xaxis, sorted(n for n in tried if n in (25, 50, 100, 200, 400, 800, 1600)))
    ax.set_xlabel("concurrent streams paced at 100 chunks/s")
    ax.set_ylabel("p5 stream rate, % of real time")
    ax.set_ylim(0, 110)
    ax.set_title("5b. streams one process keeps in real time")
    ax.legend(fontsize=8)


def _plot_scaling(ax: Any, rows: list[Row]) -> None:
    picked = [r for r in rows if r.section == "6 accumulate scaling" and "times" in r.extra]
    if not picked:
        ax.set_title("6. accumulate scaling (not run)")
        return
    seen: set[str] = set()
    for row in picked:
        what = row.extra["what"]
        if what in seen:
            continue
        seen.add(what)
        sizes = row.extra["sizes"]
        times = row.extra["times"]
        medians = [sorted(times[str(n)])[len(times[str(n)]) // 2] / n * 1e6 for n in sizes]
        ax.plot(sizes, medians, "-o", label=what)
    ax.set_xscale("log")
    _plain_ticks(ax.xaxis, list(picked[0].extra["sizes"]))
    ax.set_xlabel("chunks in the stream")
    ax.set_ylabel("µs per chunk (median); flat = linear")
    ax.set_ylim(bottom=0)
    ax.set_title("6. accumulate() scaling")
    ax.legend(fontsize=8)
