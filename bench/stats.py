"""The two kinds of figure the benchmark reports: a rate and a latency distribution."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """`events` done in `seconds`."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.inf

    def as_json(self) -> dict[str, float]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 4),
            "per_second": round(self.per_second, 1),
        }


@dataclass(frozen=True)
class Latency:
    """Milliseconds per operation: the median and the 99th percentile of `samples` runs."""

    median_ms: float
    p99_ms: float
    samples: int

    def as_json(self) -> dict[str, float]:
        return {
            "median_ms": round(self.median_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "samples": self.samples,
        }


def latency_of(seconds: list[float]) -> Latency:
    if not seconds:
        raise ValueError("no samples")
    ordered = sorted(seconds)
    # Nearest-rank percentile: the smallest sample with at least 99% of the samples at or below.
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return Latency(statistics.median(ordered) * 1000, p99 * 1000, len(ordered))
