"""How big and how repeated each measurement is, in quick and in full mode."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config", "full", "quick"]


@dataclass(frozen=True)
class Config:
    """The sizes and repetitions of one run."""

    name: str
    reps: int
    """Repetitions of each throughput, tee and scaling measurement."""
    sizes: tuple[int, ...]
    """Chunks per stream for throughput (1)."""
    helper_sizes: tuple[int, ...]
    """Sizes at which the SDKs' stream helpers are measured too (they are slow)."""
    ttfc_reps: int
    cancel_reps: int
    cancel_cadences: tuple[float, ...]
    tee_chunks: int
    concurrency_reps: int
    """Repetitions of each 5a run (a fresh process each)."""
    concurrent_streams: int
    concurrent_chunks: int
    threads: int
    concurrency_protocols: tuple[str, ...]
    """Providers of the asyncio run (the bare OpenAI SDK needs ~95 s per 1000 x 1k run)."""
    concurrency_readers: tuple[str, ...]
    """Readers of the asyncio run: `rxllm`, `sdk`, and `rxllm@aiohttp` (rxllm on the SDKs'
    aiohttp transport; `sdk@aiohttp` is the bare SDK on it)."""
    threads_protocols: tuple[str, ...]
    paced_steps: tuple[int, ...]
    """Concurrent paced streams tried, in order, until one step fails."""
    paced_reps: int
    """Repetitions of the paced search's bisection (each reader, interleaved)."""
    paced_refine: int
    """Steps of each bisection between half the last kept and the first failed N."""
    paced_window: float
    """Seconds over which each paced stream's rate is measured."""
    paced_protocols: tuple[str, ...]
    paced_readers: tuple[str, ...]
    """Readers of the paced search: `sdk`, `rxllm`, `floor` on the SDKs' default httpx2
    transport, and `rxllm@aiohttp`, `floor@aiohttp` (`sdk@aiohttp`) on their aiohttp one."""
    many_prompts: int
    """Prompts of section 7 (rxllm.batch vs Ray Data vs a bare-SDK asyncio loop)."""
    many_chunks: int
    many_concurrency: int
    many_reps: int
    scaling_sizes: tuple[int, ...]
    scaling_reps: int
    """Repetitions of section 6: a 10% effect on one core that drifts by more between
    seconds needs more than 5."""


def quick() -> Config:
    """Fewer repetitions and smaller sizes: about two minutes."""
    return Config(
        name="quick",
        reps=3,
        sizes=(10_000,),
        helper_sizes=(10_000,),
        ttfc_reps=10,
        cancel_reps=3,
        cancel_cadences=(0.001, 0.005),
        tee_chunks=10_000,
        concurrency_reps=2,
        concurrent_streams=100,
        concurrent_chunks=1_000,
        threads=20,
        concurrency_protocols=("anthropic",),
        concurrency_readers=("rxllm", "sdk", "rxllm@aiohttp"),
        threads_protocols=("anthropic",),
        paced_steps=(50, 100, 200, 400, 800),
        paced_reps=1,
        paced_refine=2,
        paced_window=2.0,
        paced_protocols=("openai",),
        paced_readers=("sdk", "rxllm", "floor", "rxllm@aiohttp", "floor@aiohttp"),
        many_prompts=1_000,
        many_chunks=50,
        many_concurrency=100,
        many_reps=1,
        scaling_sizes=(10_000, 100_000),
        scaling_reps=3,
    )


def full() -> Config:
    """The issue's sizes, 5 repetitions: about 50 minutes on 2 cores."""
    return Config(
        name="full",
        reps=5,
        sizes=(10_000, 100_000),
        helper_sizes=(10_000,),
        ttfc_reps=30,
        cancel_reps=5,
        cancel_cadences=(0.001, 0.005),
        tee_chunks=30_000,
        concurrency_reps=5,
        concurrent_streams=1000,
        concurrent_chunks=1_000,
        threads=100,
        concurrency_protocols=("anthropic",),
        concurrency_readers=("rxllm", "sdk", "rxllm@aiohttp"),
        threads_protocols=("anthropic", "openai"),
        paced_steps=(25, 50, 100, 200, 400, 800, 1600),
        paced_reps=5,
        paced_refine=3,
        paced_window=3.0,
        paced_protocols=("openai", "anthropic"),
        paced_readers=("sdk", "rxllm", "floor", "rxllm@aiohttp", "floor@aiohttp"),
        many_prompts=10_000,
        many_chunks=50,
        many_concurrency=100,
        many_reps=3,
        scaling_sizes=(10_000, 100_000, 300_000),
        scaling_reps=9,
    )
