"""A measured figure beside its baseline, the targets it is held to, and what a benchmark
hands back to the report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    text: str  # as the issue states it, e.g. ">= 50 files/s"
    met: bool
    measured: str = ""  # the figure the verdict is about, when it is not the value itself


@dataclass(frozen=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    targets: tuple[Target, ...] = ()
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or math.isnan(self.value):
            return None
        return self.value / self.baseline

    @property
    def missed(self) -> list[Target]:
        return [t for t in self.targets if not t.met]


@dataclass
class Outcome:
    """What one benchmark found: figures for the table, markdown for RESULTS.md, and a
    short text for the console (EXPLAIN index use, profile tops...)."""

    bench: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # markdown lines
    data: dict[str, object] = field(default_factory=dict)  # for later benchmarks


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 0.5)


def at_most(value: float, limit: float, text: str, measured: str = "") -> Target:
    return Target(text, not math.isnan(value) and value <= limit, measured)


def below(value: float, limit: float, text: str, measured: str = "") -> Target:
    return Target(text, not math.isnan(value) and value < limit, measured)


def at_least(value: float, floor: float, text: str, measured: str = "") -> Target:
    return Target(text, not math.isnan(value) and value >= floor, measured)
