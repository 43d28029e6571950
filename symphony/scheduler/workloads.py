"""Workloads → requests: an Experiment is one gang, a Deployment is replicas placed one by one."""

from __future__ import annotations

from collections.abc import Iterable

from symphony.errors import ManifestError, Problem
from symphony.model import Deployment, Experiment, ManifestSet
from symphony.scheduler.objects import Request


def experiment_requests(experiment: Experiment, *, priority: int = 0) -> list[Request]:
    """One request per process (replicas already unrolled), all in the gang named after it.

    The process is named by its key: ``agent-3``, or ``group/process`` inside a group.
    """
    return [
        Request(
            workload=experiment.name,
            process=p.key,
            capacity_requests=p.capacity_requests,
            node_group=p.node_group,
            gang=experiment.name,
            priority=priority,
        )
        for p in experiment.processes
    ]


def deployment_requests(deployment: Deployment, *, priority: int = 0) -> list[Request]:
    """``name-0`` … ``name-(replicas-1)``, no gang; a stopped deployment asks for nothing."""
    if deployment.desired_state == "stopped":
        return []
    return [
        Request(
            workload=deployment.name,
            process=f"{deployment.name}-{i}",
            capacity_requests=deployment.capacity_requests,
            node_group=deployment.node_group,
            priority=priority,
        )
        for i in range(deployment.replicas)
    ]


def manifest_requests(manifests: ManifestSet) -> list[Request]:
    """Every request of a manifest set, experiments first, in document order.

    Raises :class:`ManifestError` when an Experiment and a Deployment share a name
    (their requests would be indistinguishable).
    """
    experiments = {e.name: e for e in manifests.experiments}
    clashes = [d for d in manifests.deployments if d.name in experiments]
    if clashes:
        raise ManifestError(
            [
                Problem(
                    f"Deployment '{d.name}' has the name of an Experiment "
                    f"({experiments[d.name].source}); rename one of them",
                    d.source.file,
                    d.source.line,
                )
                for d in clashes
            ]
        )
    return [
        *_all(experiment_requests(e) for e in manifests.experiments),
        *_all(deployment_requests(d) for d in manifests.deployments),
    ]


def _all(lists: Iterable[list[Request]]) -> list[Request]:
    return [r for rs in lists for r in rs]
