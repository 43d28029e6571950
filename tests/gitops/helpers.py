"""Test doubles for the GitOps loop: a source held in memory, a clock that only moves when told,
and a recording cluster that also keeps experiment labels (as tmux does)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from symphony.clusters.base import ExperimentSummary
from symphony.clusters.memory import MemoryCluster
from symphony.errors import OperationFailed
from symphony.model import ClusterSpec, Experiment
from symphony.plan import Plan
from symphony.reconciler import Reconciler
from symphony.sources.base import Snapshot
from symphony.sources.reading import FileText, build_snapshot


def experiment(name: str, processes: dict[str, str], *, cluster: str | None = None) -> str:
    """An Experiment manifest: process name -> command."""
    lines = [
        "apiVersion: symphony/v1",
        "kind: Experiment",
        f"metadata: {{name: {name}}}",
        "spec:",
    ]
    if cluster:
        lines.append(f"  cluster: {cluster}")
    lines.append("  processes:")
    lines += [f"    - {{name: {p}, command: {cmd!r}}}" for p, cmd in sorted(processes.items())]
    return "\n".join(lines) + "\n"


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class MemorySource:
    """Files held in a dict; ``fail`` makes the next polls raise, like an unreachable remote."""

    files: dict[str, str] = field(default_factory=dict)
    id: str = "mem-test"
    kind: str = "git"
    target: str = "memory"
    interval: float = 1.0
    fail: str | None = None
    polls: int = 0
    _seen: dict[str, str] | None = None
    notify: Callable[[], None] | None = None

    def poll(self) -> bool:
        self.polls += 1
        if self.fail:
            raise OperationFailed(self.fail)
        return self._seen != self.files

    def snapshot(self) -> Snapshot:
        if self.fail:
            raise OperationFailed(self.fail)
        self._seen = dict(self.files)
        return build_snapshot(FileText(n, t, "/tmp") for n, t in self.files.items())

    def start(self, wake: Callable[[], None]) -> None:
        self.notify = wake

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.kind}


@dataclass
class LabelledCluster(MemoryCluster):
    """MemoryCluster plus session-like labels, refreshed only when a plan touches the experiment."""

    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    down: bool = False

    def observe(self, *, experiments: Sequence[str] | None = None) -> list[Any]:
        if self.down:
            raise OperationFailed(f"cluster {self.spec.name}: unreachable")
        return super().observe(experiments=experiments)

    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        super().apply(plan, desired)
        for e in desired:
            if any(p.experiment == e.name for p in plan.create + plan.update):
                self.labels[e.name] = dict(e.labels)
        live = {exp for exp, _ in self.live}
        self.labels = {n: v for n, v in self.labels.items() if n in live}

    def delete_experiment(self, name: str) -> None:
        super().delete_experiment(name)
        self.labels.pop(name, None)

    def experiments(self) -> list[ExperimentSummary]:
        names = sorted({exp for exp, _ in self.live})
        return [
            ExperimentSummary(n, self.spec.name, 0, 0, dict(self.labels.get(n, {}))) for n in names
        ]

    def processes(self) -> dict[tuple[str, str], str]:
        return {k: o.spec_hash for k, o in self.live.items()}


def recording() -> tuple[Reconciler, dict[str, LabelledCluster]]:
    made: dict[str, LabelledCluster] = {}

    def connect(spec: ClusterSpec) -> LabelledCluster:
        if spec.name not in made:
            made[spec.name] = LabelledCluster(spec)
        return made[spec.name]

    return Reconciler(connect=connect), made
