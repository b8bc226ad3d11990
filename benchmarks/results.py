"""Results: repeated measurements summarized as median [min-max], and rows of the report.

A `Sample` is the repetitions of one measurement; a `Row` is one line of the report: the
values it compares, the ratio that the target is about, the target, and the verdict
(`True` PASS, `False` FAIL, `None` when the row has no target or could not run).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Row", "Sample", "fmt_ratio", "fmt_value"]


@dataclass(frozen=True)
class Sample:
    """The repetitions of one measurement (seconds, chunks/s, MB, ... as `unit` says)."""

    values: tuple[float, ...]
    unit: str = ""

    @classmethod
    def of(cls, values: Sequence[float], unit: str = "") -> Sample:
        return cls(tuple(float(v) for v in values), unit)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def map(self, fn: Callable[[float], float], unit: str | None = None) -> Sample:
        return Sample(tuple(fn(v) for v in self.values), self.unit if unit is None else unit)

    def __str__(self) -> str:
        return fmt_value(self)


def _num(value: float) -> str:
    if value != value:  # nan
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.3f}"


def fmt_value(sample: Sample) -> str:
    """`median [min-max] unit`, or just the value when all repetitions agree."""
    unit = f" {sample.unit}" if sample.unit else ""
    if not sample.values:
        return "n/a"
    if len(sample.values) == 1 or sample.low == sample.high:
        return f"{_num(sample.median)}{unit}"
    return f"{_num(sample.median)} [{_num(sample.low)}-{_num(sample.high)}]{unit}"


def fmt_ratio(sample: Sample) -> str:
    """A ratio as `2.5x [2.1-2.9]`."""
    if not sample.values:
        return "n/a"
    if len(sample.values) == 1 or sample.low == sample.high:
        return f"{_num(sample.median)}x"
    return f"{_num(sample.median)}x [{_num(sample.low)}-{_num(sample.high)}]"


@dataclass
class Row:
    """One line of the report."""

    section: str
    name: str
    values: dict[str, Sample | str] = field(default_factory=dict)
    ratio: Sample | str | None = None
    ratio_label: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "—" if not self.target else "n/a"
        return "PASS" if self.passed else "FAIL"

    def ratio_text(self) -> str:
        if self.ratio is None:
            return ""
        if isinstance(self.ratio, str):
            return self.ratio
        return fmt_ratio(self.ratio)

    def line(self) -> str:
        """One line for the terminal."""
        shown = "; ".join(
            f"{key}: {value if isinstance(value, str) else fmt_value(value)}"
            for key, value in self.values.items()
        )
        parts = [f"[{self.section}] {self.name}", shown]
        if self.ratio is not None:
            parts.append(f"{self.ratio_label or 'ratio'} {self.ratio_text()}")
        if self.target:
            parts.append(f"target {self.target}: {self.verdict}")
        if self.note:
            parts.append(self.note)
        return " | ".join(part for part in parts if part)
