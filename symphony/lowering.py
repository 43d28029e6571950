"""Deployments as experiments, for clusters that only run processes (tmux, Kubernetes). Pure."""

from __future__ import annotations

import os

from symphony.model import Deployment, Experiment, ProcessSpec

DEPLOYMENT_LABEL = "symphony/kind"


def deployment_as_experiment(deployment: Deployment) -> Experiment:
    """One process per replica (``NAME`` or ``NAME-0`` …), none when ``desired_state: stopped``."""
    count = deployment.replicas if deployment.desired_state == "running" else 0
    names = [deployment.name] if count == 1 else [f"{deployment.name}-{i}" for i in range(count)]
    processes = tuple(
        ProcessSpec(
            experiment=deployment.name,
            name=name,
            command=deployment.config.command,
            base_name=deployment.name,
            replica=i,
            replicas=count,
            env=dict(deployment.config.env),
            workdir=_manifest_folder(deployment.source.file),
            restart_policy=deployment.restart_policy,
            capacity_requests=dict(deployment.capacity_requests),
            node_group=deployment.node_group,
            cluster=deployment.cluster,
            source=deployment.source,
        )
        for i, name in enumerate(names)
    )
    return Experiment(
        name=deployment.name,
        processes=processes,
        cluster=deployment.cluster,
        labels={**deployment.labels, DEPLOYMENT_LABEL: "Deployment"},
        source=deployment.source,
    )


def _manifest_folder(file: str) -> str:
    return "." if file.startswith("<") else os.path.dirname(os.path.abspath(file))
