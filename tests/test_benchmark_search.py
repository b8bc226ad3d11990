"""The paced search of the benchmarks (5b) finds the largest N a reader keeps, with a fake step."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import concurrency, config


def _fake_steps(monkeypatch: pytest.MonkeyPatch, capacity: int) -> list[int]:
    tried: list[int] = []

    def step(
        url: str, kind: str, protocol: str, streams: int, window: float, cpu: int | None
    ) -> dict[str, Any]:
        tried.append(streams)
        return {"streams": streams, "passed": streams <= capacity, "rates": []}

    monkeypatch.setattr(concurrency, "_step", step)
    return tried


def test_bracket_doubles_until_a_step_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    tried = _fake_steps(monkeypatch, 300)
    best, failed, _, limit = concurrency._bracket(
        "", config.full(), "rxllm", "openai", None, lambda *a: None
    )
    assert (best, failed, limit) == (200, 400, "")
    assert tried == [25, 50, 100, 200, 400]


def test_bisection_narrows_to_within_a_fifth_of_the_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for capacity in (110, 150, 230, 300, 390):
        _fake_steps(monkeypatch, capacity)
        kept, steps = concurrency._bisect(
            "", config.full(), "rxllm", "openai", None, lambda *a: None, 100, 400
        )
        assert kept <= capacity < kept * 1.2, (capacity, kept)
        assert len(steps) == config.full().paced_refine


def test_paced_repeats_each_reader_and_reports_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    capacities = {"sdk": 90, "rxllm": 700, "floor": 1000, "rxllm@aiohttp": 800}
    capacities["floor@aiohttp"] = 900
    order: list[str] = []

    def step(
        url: str, kind: str, protocol: str, streams: int, window: float, cpu: int | None
    ) -> dict[str, Any]:
        order.append(kind)
        return {"streams": streams, "passed": streams <= capacities[kind], "rates": []}

    monkeypatch.setattr(concurrency, "_step", step)
    rows: list[Any] = []
    cfg = config.full()
    concurrency.paced("", cfg, rows.append, None)
    # per protocol: rxllm on httpx2, and on aiohttp, each against the SDK on httpx2
    assert len(rows) == 2 * len(cfg.paced_protocols)
    row, aiohttp = rows[0], rows[1]
    assert len(row.values["rxllm"].values) == cfg.paced_reps
    assert 600 <= row.values["rxllm"].median <= 700
    assert 75 <= row.values["sdk"].median <= 90
    # one ratio per repetition, rxllm's over the SDK's of the same repetition
    pairs = zip(row.values["rxllm"].values, row.values["sdk"].values, strict=True)
    assert row.ratio.values == pytest.approx([rx / sdk for rx, sdk in pairs])
    assert len(row.ratio.values) == cfg.paced_reps
    assert 700 <= aiohttp.values["rxllm on aiohttp"].median <= 800
    assert aiohttp.values["sdk"].values == row.values["sdk"].values  # the same SDK runs
    assert aiohttp.ratio.median == pytest.approx(
        aiohttp.values["rxllm on aiohttp"].median / aiohttp.values["sdk"].median, rel=0.2
    )
    assert "floor on aiohttp (reference)" in aiohttp.values and "floor" in aiohttp.target
    assert "steps" in row.extra and "steps" not in aiohttp.extra
    # interleaved: after the doubling, the readers take turns
    readers = len(cfg.paced_readers)
    bisections = order[-readers * cfg.paced_refine * cfg.paced_reps :]
    assert bisections[: cfg.paced_refine] == ["sdk"] * cfg.paced_refine
    assert bisections[cfg.paced_refine : 2 * cfg.paced_refine] == ["rxllm"] * cfg.paced_refine
