"""Deployments as the conductor runs them: natively, not lowered to processes. Pure.

The reconciler plans every cluster per process (a Deployment lowered by
:mod:`symphony.lowering` to ``NAME`` or ``NAME-0`` …) — that is what ``diff``,
``--dry-run`` and ``--wait`` show — but a cluster that runs Deployments itself says so
by implementing :class:`DeploymentApplier`, and the reconciler then hands it the
Deployments beside the plan. :func:`apply_body` turns both into one ``POST /apply``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from symphony.clusters.conductor_wire import experiment_to_wire
from symphony.lowering import DEPLOYMENT_LABEL
from symphony.model import Deployment, Experiment
from symphony.plan import Plan


@runtime_checkable
class DeploymentApplier(Protocol):
    def apply_with_deployments(
        self, plan: Plan, desired: Sequence[Experiment], deployments: Sequence[Deployment]
    ) -> None:
        """Carry out ``plan``; the experiments it touches that are ``deployments`` go as such."""
        ...


class NotNative(ValueError):
    """A lowered Deployment reached the cluster without its Deployment."""


def apply_body(
    plan: Plan, desired: Sequence[Experiment], deployments: Sequence[Deployment]
) -> dict[str, Any]:
    """``{"experiments", "deployments", "delete"}`` for every experiment ``plan`` touches.

    Experiments go whole (the conductor keeps what did not change); a Deployment goes
    with the CLI's hash of each of its lowered processes, which the conductor hands back
    so that a re-apply plans nothing; a touched name absent from both is deleted.
    """
    by_deployment = {d.name: d for d in deployments}
    by_experiment = {e.name: e for e in desired}
    experiments: list[dict[str, Any]] = []
    native: list[dict[str, Any]] = []
    delete: list[str] = []
    for name in sorted(plan.experiments_touched()):
        if name in by_deployment:
            lowered = by_experiment.get(name)
            hashes = {p.key: p.spec_hash() for p in lowered.processes} if lowered else {}
            spec = {"name": name, **by_deployment[name].to_spec()}
            native.append({"spec": spec, "process_hashes": hashes})
        elif name in by_experiment:
            experiment = by_experiment[name]
            if experiment.labels.get(DEPLOYMENT_LABEL) == "Deployment":
                raise NotNative(f"Deployment {name!r} reached the conductor without its spec")
            experiments.append(experiment_to_wire(experiment))
        else:
            delete.append(name)
    return {"experiments": experiments, "deployments": native, "delete": delete}
