"""Pair what should run with what runs, and bucket the difference. Pure.

Like Argo's gitops-engine: pair desired with observed by identity
(experiment, process key); a missing side means create or delete, a differing
spec hash means update, an equal hash means unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from symphony.model import Experiment, ObservedProcess, ProcessSpec


@dataclass(frozen=True)
class Plan:
    create: tuple[ProcessSpec, ...] = ()
    update: tuple[ProcessSpec, ...] = ()
    delete: tuple[ObservedProcess, ...] = ()
    unchanged: tuple[ProcessSpec, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to do: the cluster already matches."""
        return not (self.create or self.update or self.delete)

    @property
    def actions(self) -> int:
        return len(self.create) + len(self.update) + len(self.delete)

    def experiments_touched(self) -> set[str]:
        return {p.experiment for p in self.create + self.update} | {
            o.experiment for o in self.delete
        }


def diff(
    desired: Iterable[Experiment],
    observed: Iterable[ObservedProcess],
    *,
    prune: bool = False,
) -> Plan:
    """The actions that turn ``observed`` into ``desired``.

    Processes of a desired experiment that are no longer declared are always
    deleted. Whole experiments absent from ``desired`` are deleted only with
    ``prune`` (kubectl's ``apply --prune``).
    """
    experiments = list(desired)
    desired_names = {e.name for e in experiments}
    wanted: dict[tuple[str, str], ProcessSpec] = {
        (e.name, p.key): p for e in experiments for p in e.processes
    }
    live: dict[tuple[str, str], ObservedProcess] = {(o.experiment, o.key): o for o in observed}

    create: list[ProcessSpec] = []
    update: list[ProcessSpec] = []
    unchanged: list[ProcessSpec] = []
    for ident in sorted(wanted):
        process = wanted[ident]
        current = live.get(ident)
        if current is None:
            create.append(process)
        elif current.spec_hash != process.spec_hash():
            update.append(process)
        else:
            unchanged.append(process)
    delete = [
        live[ident]
        for ident in sorted(live)
        if ident not in wanted and (prune or ident[0] in desired_names)
    ]
    return Plan(tuple(create), tuple(update), tuple(delete), tuple(unchanged))
