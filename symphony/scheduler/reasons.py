"""Why a request was not placed, in words a person can act on. Pure string builders."""

from __future__ import annotations

from collections.abc import Iterable


def num(value: float) -> str:
    """``30.0`` → ``30``, ``2.5`` → ``2.5``."""
    return f"{value:g}"


def _of(group: str | None) -> str:
    return f" of '{group}'" if group is not None else ""


def amounts(items: Iterable[tuple[str, float]]) -> str:
    """``[("A", 30), ("B", 5)]`` → ``A=30, B=5``."""
    return ", ".join(f"{c}={num(v)}" for c, v in items)


def no_nodes(group: str | None, *, total: int) -> str:
    if group is None:
        return "no nodes" if total == 0 else f"no schedulable node (all {total} are unschedulable)"
    if total == 0:
        return f"no node in group '{group}'"
    return f"no schedulable node in group '{group}' (all {total} are unschedulable)"


def class_undeclared(cls: str, group: str | None) -> str:
    return f"class '{cls}' is declared by no node{_of(group)}"


def never_fits(cls: str, need: float, largest: float, group: str | None) -> str:
    return (
        f"needs {cls}={num(need)}; no node{_of(group)} has that much {cls} even when idle "
        f"(largest: {num(largest)})"
    )


def too_little_free(cls: str, need: float, most_free: float, group: str | None) -> str:
    return (
        f"needs {cls}={num(need)}; the most free {cls} on any node{_of(group)} is {num(most_free)}"
    )


def not_together(
    items: Iterable[tuple[str, float]],
    most_free: Iterable[tuple[str, float, str]],
    group: str | None,
) -> str:
    where = ", ".join(f"{c}={num(v)} on {n}" for c, v, n in most_free)
    return (
        f"needs {amounts(items)} on one node; no node{_of(group)} has all of it free "
        f"(most free: {where})"
    )


def gang(gang_id: str, needed: int, fitted: int) -> str:
    return f"gang '{gang_id}' needs {needed} places, {fitted} fit"
