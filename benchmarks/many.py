"""7. Many prompts: `rxllm.batch` in one process vs `rxllm.ray.map_batches` on 2 Ray workers
vs a hand-written asyncio + semaphore loop over the bare async SDK.

Every variant sends the same N prompts (Anthropic Messages, each answered by an unpaced
stream of `many_chunks` chunks) with the same total concurrency, in a fresh process
(`benchmarks.worker`, task `many`) allowed on every CPU (the harness pins itself to one:
Ray's workers would inherit it). Every answer's text is checked.

- `loop`: `asyncio.Semaphore(concurrency)` around `AsyncAnthropic.messages.create(stream=
  True)`, the text deltas joined: what one writes by hand (the SDK's default transport);
- `batch`: `rxllm.batch(prompts, llm.stream, concurrency=...)` read with `aiterate` in one
  asyncio process (the clients rxllm makes: aiohttp when installed);
- `ray`: `rxllm.ray.map_batches(dataset, llm.stream, workers=2, concurrency=.../2)` on a
  local Ray instance (`ray.init` is not timed; the workers' start is).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from benchmarks import bodies
from benchmarks.clients import AsyncClients, model_name
from benchmarks.config import Config
from benchmarks.measure import Emit
from benchmarks.results import Row, Sample, fmt_ratio

__all__ = ["many", "run_variant"]

VARIANTS = ("loop", "batch", "ray")
_WORKERS = 2


def run_variant(args: dict[str, Any]) -> dict[str, Any]:
    """One variant in this (fresh) process: wall time, CPU and how many answers were right."""
    if hasattr(os, "sched_setaffinity"):  # every CPU: the harness pinned this process to one
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
    variant = args["variant"]
    runner = {"loop": _loop, "batch": _batch, "ray": _ray}[variant]
    return runner(args)


def _prompts(args: dict[str, Any]) -> list[str]:
    return [f"prompt {i}" for i in range(args["prompts"])]


def _loop(args: dict[str, Any]) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        clients = AsyncClients(args["url"])
        model = model_name(args["chunks"])
        await clients.sdk("anthropic", model)  # warm: imports, first connection
        gate = asyncio.Semaphore(args["concurrency"])

        async def one(_: str) -> str:
            async with gate:
                return await clients.sdk("anthropic", model)

        cpu, start = time.process_time(), time.perf_counter()
        texts = await asyncio.gather(*(one(p) for p in _prompts(args)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await clients.close()
        return _result(args, elapsed, cpu, texts)

    return asyncio.run(main())


def _batch(args: dict[str, Any]) -> dict[str, Any]:
    import rxllm

    async def main() -> dict[str, Any]:
        llm = rxllm.anthropic(
            model_name(args["chunks"]), base_url=args["url"], api_key="bench", max_retries=0
        )
        await rxllm.acollect(llm.stream("warm"))
        results = rxllm.batch(
            _prompts(args), llm.stream, concurrency=args["concurrency"], progress=False
        )
        cpu, start = time.process_time(), time.perf_counter()
        texts = [
            outcome.text if isinstance(outcome, rxllm.Response) else repr(outcome)
            async for _, outcome in rxllm.aiterate(results)
        ]
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        return _result(args, elapsed, cpu, texts)

    return asyncio.run(main())


def _ray(args: dict[str, Any]) -> dict[str, Any]:
    import ray

    import rxllm
    import rxllm.ray

    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        llm = rxllm.anthropic(
            model_name(args["chunks"]), base_url=args["url"], api_key="bench", max_retries=0
        )

        def answers(prompts: list[str]) -> Any:
            dataset = ray.data.from_items([{"prompt": p} for p in prompts]).materialize()
            return rxllm.ray.map_batches(
                dataset,
                llm.stream,
                workers=_WORKERS,
                concurrency=max(1, args["concurrency"] // _WORKERS),
                num_cpus=0.5,  # the driver and Ray's own tasks keep room on a 2-core machine
            )

        # What starting a pool of workers costs: the same run with a handful of prompts
        few = answers(["a few"] * _WORKERS)
        start = time.perf_counter()
        few.take_all()
        startup = time.perf_counter() - start
        everything = answers(_prompts(args))  # in the object store before the clock starts
        start = time.perf_counter()
        rows = everything.take_all()
        elapsed = time.perf_counter() - start
        texts = [row["text"] if row["error"] is None else row["error"] for row in rows]
        return {**_result(args, elapsed, float("nan"), texts), "startup_s": startup}
    finally:
        ray.shutdown()


def _result(args: dict[str, Any], elapsed: float, cpu: float, texts: list[str]) -> dict[str, Any]:
    expected = bodies.text(args["chunks"])
    return {
        "seconds": elapsed,
        "cpu_s": cpu,
        "answers": len(texts),
        "bad": sum(text != expected for text in texts) + args["prompts"] - len(texts),
    }


def many(url: str, config: Config, emit: Emit) -> None:
    """7. The variants, interleaved, `config.many_reps` times each."""
    from benchmarks.concurrency import run_worker

    prompts, chunks, concurrency = config.many_prompts, config.many_chunks, config.many_concurrency
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for _ in range(config.many_reps):
        for variant in VARIANTS:
            args = {
                "task": "many",
                "variant": variant,
                "url": url,
                "prompts": prompts,
                "chunks": chunks,
                "concurrency": concurrency,
            }
            result = run_worker(args, timeout=1800)
            print(f"    7 {variant}: {result['seconds']:.1f} s, {result['bad']} bad", flush=True)
            runs[variant].append(result)
    rates = {v: [prompts / r["seconds"] for r in rs] for v, rs in runs.items()}
    bad = sum(r["bad"] for rs in runs.values() for r in rs)
    names = {
        "loop": "asyncio loop, bare SDK",
        "batch": "rxllm.batch, 1 process",
        "ray": f"rxllm.ray, {_WORKERS} workers",
    }
    values: dict[str, Sample | str] = {
        names[v]: Sample.of(rs, "prompts/s") for v, rs in rates.items()
    }
    cpu = {
        v: Sample.of([r["cpu_s"] / prompts * 1e3 for r in rs], "ms CPU/prompt")
        for v, rs in runs.items()
        if v != "ray"
    }
    startup = Sample.of([r["startup_s"] for r in runs["ray"]], "s")
    emit(
        Row(
            "7 many prompts",
            f"{prompts:,} prompts x {chunks} chunks (anthropic), {concurrency} calls at once: "
            "prompts per second",
            values,
            Sample.of([b / a for a, b in zip(rates["loop"], rates["batch"], strict=True)]),
            "rxllm.batch / asyncio loop",
            note="; ".join(
                [
                    "rxllm.ray / rxllm.batch: "
                    + fmt_ratio(
                        Sample.of(
                            [r / b for b, r in zip(rates["batch"], rates["ray"], strict=True)]
                        )
                    )
                    + f" (starting its workers, included: {startup})",
                    "CPU: " + "; ".join(f"{names[k]} {v}" for k, v in cpu.items()),
                    *([f"{bad} wrong answers"] if bad else []),
                ]
            ),
            extra={"runs": runs},
        )
    )
