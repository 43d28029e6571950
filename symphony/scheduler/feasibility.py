"""Feasibility: may this request go on this node at all? Pure predicates.

The cluster state calls :func:`fits` on every candidate its index proposes;
the group constraint is honoured by choosing the group's index, and checked
here too for callers (and tests) that hold plain nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EPS = 1e-9
"""Slack for float sums: ``0.1 + 0.2`` units of free capacity still hold a ``0.3`` request."""


def fits(free: Mapping[str, float], requests: Iterable[tuple[str, float]]) -> bool:
    """Free ≥ requested in every requested class (an undeclared class has 0 free)."""
    return all(free.get(c, 0.0) + EPS >= r for c, r in requests)


def in_group(groups: Iterable[str], node_group: str | None) -> bool:
    """The node belongs to the requested group, or no group was requested."""
    return node_group is None or node_group in groups


def shortfall(free: Mapping[str, float], requests: Iterable[tuple[str, float]]) -> dict[str, float]:
    """How much is missing per class (only the classes that do not fit)."""
    return {c: r - free.get(c, 0.0) for c, r in requests if free.get(c, 0.0) + EPS < r}
