"""Score functions: higher wins. Binpack and spread are two functions, not two classes.

Each takes, for every requested class, the fraction of the node's total that
would be left free after placing the request (0 = full, 1 = untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from symphony.scheduler.objects import Strategy

ScoreFn = Callable[[Sequence[float]], float]


def binpack(free_after: Sequence[float]) -> float:
    """Best fit, as Nomad's BestFit: ``-Σ 10^free``.

    Convex in the free fraction, so a node left nearly full in *every* class beats
    one left full in one class and empty in another; a perfect fit scores ``-n``.
    """
    return -float(sum(10.0**f for f in free_after))


def spread(free_after: Sequence[float]) -> float:
    """Least allocated, as Kubernetes' LeastAllocated: the mean free fraction after."""
    return sum(free_after) / len(free_after) if free_after else 1.0


SCORES: dict[Strategy, ScoreFn] = {Strategy.BINPACK: binpack, Strategy.SPREAD: spread}


def score_fn(strategy: Strategy) -> ScoreFn:
    return SCORES[strategy]
