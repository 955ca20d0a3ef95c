"""Percentiles and summaries, and how figures are printed."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an already sorted sequence; NaN if empty."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def percentile_of(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an unsorted sequence."""
    return percentile(sorted(values), p)


@dataclass(frozen=True)
class Latency:
    """p50 / p99 / max of a latency sample, in milliseconds."""

    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, ordered_ms: Sequence[float], digits: int = 2) -> Latency:
        return cls(
            round(percentile(ordered_ms, 50), digits),
            round(percentile(ordered_ms, 99), digits),
            round(ordered_ms[-1], digits) if ordered_ms else math.nan,
        )

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class NanosSummary:
    """Median / p90 / min / max of nanosecond samples, in microseconds."""

    median_us: float
    p90_us: float
    min_us: float
    max_us: float
    samples: int

    @classmethod
    def of(cls, samples: Sequence[int]) -> NanosSummary:
        return cls(
            round(statistics.median(samples) / 1000, 2),
            round(percentile_of(samples, 90) / 1000, 2),
            round(min(samples) / 1000, 2),
            round(max(samples) / 1000, 2),
            len(samples),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: Any, digits: int = 1) -> str:
    """A figure for a table: thousands separators, '-' for missing or NaN."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def out(text: str = "") -> None:
    """Progress and results go to stdout at once (the runs are long)."""
    print(text, flush=True)
