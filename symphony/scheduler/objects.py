"""The scheduler's inputs and outputs: frozen dataclasses, validated on construction.

Capacities are *virtual* units per class (``{"A": 100, "B": 200}``); a class a node
does not declare counts as 0 there. Zero-valued requests are dropped, so
``{"A": 0}`` asks for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Strategy(StrEnum):
    """How to choose among feasible nodes: a swapped score function, nothing more."""

    BINPACK = "binpack"  # best fit: fill the fullest node that still fits (Nomad BestFit)
    SPREAD = "spread"  # least allocated: balance work over the nodes

    @classmethod
    def parse(cls, value: str | Strategy) -> Strategy:
        """``"binpack"`` → :attr:`BINPACK`; raises ``ValueError`` naming the choices."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown strategy {value!r} (choose from {choices})") from None


def _check_capacities(what: str, values: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: class names must be non-empty strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{what}.{name}: must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{what}.{name}: must be a finite number ≥ 0, got {value!r}")
        checked[name] = float(value)
    return checked


@dataclass(frozen=True)
class Node:
    """A place to run work: a conductor node as it registered.

    ``capacities_used`` is capacity taken by work the scheduler does not track
    (reported by the node); it is subtracted from the total before placing.
    An unschedulable node keeps what it runs but receives nothing new.
    """

    node_id: str
    groups: tuple[str, ...] = ()
    capacities_total: Mapping[str, float] = field(default_factory=dict)
    capacities_used: Mapping[str, float] = field(default_factory=dict)
    schedulable: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, str) or not self.node_id:
            raise ValueError(f"node_id must be a non-empty string, got {self.node_id!r}")
        groups = tuple(self.groups)
        if not all(isinstance(g, str) and g for g in groups):
            raise ValueError(f"node {self.node_id}: groups must be non-empty strings")
        object.__setattr__(self, "groups", tuple(dict.fromkeys(groups)))
        object.__setattr__(
            self, "capacities_total", _check_capacities("capacities_total", self.capacities_total)
        )
        object.__setattr__(
            self, "capacities_used", _check_capacities("capacities_used", self.capacities_used)
        )


@dataclass(frozen=True)
class Request:
    """One thing to place: a process of an experiment or one deployment replica.

    Requests sharing a ``gang`` (in one call) are placed all together or not at all.
    Higher ``priority`` is placed first; ``strategy`` overrides the cluster's.
    """

    workload: str
    process: str
    capacity_requests: Mapping[str, float] = field(default_factory=dict)
    node_group: str | None = None
    gang: str | None = None
    priority: int = 0
    strategy: Strategy | None = None

    def __post_init__(self) -> None:
        caps = _check_capacities("capacity_requests", self.capacity_requests)
        asked = {c: v for c, v in sorted(caps.items()) if v > 0}  # sorted: one shape, one key
        object.__setattr__(self, "capacity_requests", asked)
        if self.strategy is not None:
            object.__setattr__(self, "strategy", Strategy.parse(self.strategy))

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the request: ``(workload, process)``."""
        return (self.workload, self.process)


class _AboutARequest:
    """Names of the request an outcome is about (``workload``, ``process``, ``key``)."""

    request: Request

    @property
    def workload(self) -> str:
        return self.request.workload

    @property
    def process(self) -> str:
        return self.request.process

    @property
    def key(self) -> tuple[str, str]:
        return self.request.key


@dataclass(frozen=True)
class Placement(_AboutARequest):
    """``request`` runs on ``node``; holds the request so its capacity can be released."""

    request: Request
    node: str


@dataclass(frozen=True)
class Unschedulable(_AboutARequest):
    """A request that could not be placed, and why, in words a person can act on."""

    request: Request
    reason: str


@dataclass(frozen=True)
class PlacementResult:
    """What one :meth:`ClusterState.place` call decided, both in request order."""

    placements: tuple[Placement, ...] = ()
    unschedulable: tuple[Unschedulable, ...] = ()

    @property
    def complete(self) -> bool:
        """Every request was placed."""
        return not self.unschedulable
