"""Scheduling numbers for ``GET /metrics``: how long jobs wait to be placed.

A job starts waiting the first time the conductor tries to place it (it was just
created, its node was lost, or it was started again) and stops waiting when it gets a
node. The wait and the time the placement decision itself took are kept as
cumulative histograms, the shape Prometheus expects, so memory stays constant.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

# Seconds. Waits cover "placed at once" up to "waited minutes for capacity".
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass
class Histogram:
    """Counts per upper bound (``le``) plus an overflow bucket, a sum and a count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(self.bounds):
            raise ValueError("histogram bounds must be increasing")
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, observations <= le)`` per bound, ending with ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass
class SchedulingStats:
    wait: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    decision: Histogram = field(default_factory=lambda: Histogram(DECISION_BUCKETS))
    waiting_since: dict[str, float] = field(default_factory=dict)

    def waiting(self, job_id: str, now: float) -> None:
        self.waiting_since.setdefault(job_id, now)

    def decided(self, seconds: float) -> None:
        self.decision.observe(seconds)

    def placed(self, job_id: str, now: float) -> None:
        since = self.waiting_since.pop(job_id, None)
        if since is not None:
            self.wait.observe(max(0.0, now - since))

    def forget(self, job_id: str) -> None:
        self.waiting_since.pop(job_id, None)

    def keep_only(self, job_ids: Iterable[str]) -> None:
        """Forget jobs that no longer wait (deleted, or stopped while pending)."""
        keep = set(job_ids)
        for job_id in [j for j in self.waiting_since if j not in keep]:
            del self.waiting_since[job_id]
