"""An in-memory cluster that records what it was asked to do.

For tests of the reconciler and the planner (a harness like Nomad's): every
``apply`` is recorded, and the plan is carried out on a dict so that
``observe`` reflects it. Processes "run" at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from symphony.model import LOCAL, ClusterSpec, Experiment, ObservedProcess, ProcessState
from symphony.plan import Plan


@dataclass
class MemoryCluster:
    spec: ClusterSpec = LOCAL
    live: dict[tuple[str, str], ObservedProcess] = field(default_factory=dict)
    applied: list[Plan] = field(default_factory=list)
    deleted_experiments: list[str] = field(default_factory=list)

    def observe(self, *, experiments: Sequence[str] | None = None) -> list[ObservedProcess]:
        wanted = None if experiments is None else set(experiments)
        return [o for (exp, _), o in sorted(self.live.items()) if wanted is None or exp in wanted]

    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        if plan.empty:
            return  # nothing asked: like the real adapters, an empty plan is not an action
        self.applied.append(plan)
        for gone in plan.delete:
            self.live.pop((gone.experiment, gone.key), None)
        for process in (*plan.create, *plan.update):
            restarts = 0
            self.live[(process.experiment, process.key)] = ObservedProcess(
                experiment=process.experiment,
                key=process.key,
                spec_hash=process.spec_hash(),
                state=ProcessState.RUNNING,
                restarts=restarts,
                cluster=self.spec.name,
                ready=True,
            )

    def delete_experiment(self, name: str) -> None:
        self.deleted_experiments.append(name)
        for key in [k for k in self.live if k[0] == name]:
            del self.live[key]
