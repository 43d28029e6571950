"""A ``POST /apply`` body, checked and turned into the model before anything happens. Pure.

``{"experiments": [wire…], "deployments": [{"spec", "process_hashes"}…], "delete": [names]}``:
experiments in the wire format of :mod:`symphony.clusters.conductor_wire`, deployments as
the ``POST /deployments`` body with the CLI's hash of each of their lowered processes.
Every problem found is reported, one message each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from symphony.clusters.conductor_wire import WireError, experiment_from_wire
from symphony.errors import UserError
from symphony.manifests import deployment_from_api
from symphony.model import Deployment, Experiment

NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
Wires = dict[str, dict[str, Any]]


class ApplyError(Exception):
    """The request cannot be carried out as a whole (HTTP 422); nothing was changed."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class ApplyRequest:
    experiments: list[tuple[Experiment, Wires]]
    deployments: list[tuple[Deployment, dict[str, str]]]  # with the CLI's hash per process key
    delete: list[str]


def parse_apply(body: Any) -> ApplyRequest:
    if not isinstance(body, Mapping):
        raise ApplyError(["the body must be a JSON object"])
    unknown = sorted(set(body) - {"experiments", "deployments", "delete"})
    if unknown:
        raise ApplyError([f"unknown field {unknown[0]!r}"])
    errors: list[str] = []
    experiments = []
    for raw in body.get("experiments") or []:
        try:
            experiments.append(experiment_from_wire(raw))
        except WireError as exc:
            errors.append(str(exc))
    for experiment, wires in experiments:
        errors += name_problems(experiment, wires)
    deployments = []
    for raw in body.get("deployments") or []:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("process_hashes", {}), Mapping):
            errors.append("a deployment must be {spec, process_hashes}")
            continue
        try:
            dep = deployment_from_api(raw.get("spec") or {})
        except UserError as exc:
            errors += [f"deployment: {p.message}" for p in exc.problems]
            continue
        deployments.append((dep, {str(k): str(v) for k, v in (raw.get("process_hashes") or {}).items()}))
    deletes = body.get("delete") or []
    if not isinstance(deletes, list) or not all(isinstance(n, str) for n in deletes):
        errors.append("delete must be a list of names")
    if errors:
        raise ApplyError(errors)
    return ApplyRequest(experiments, deployments, list(deletes))


def name_problems(experiment: Experiment, wires: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names become job ids (``<experiment>.<process>``): they must be DNS-1123 labels."""
    problems = []
    if not NAME.fullmatch(experiment.name) or len(experiment.name) > 63:
        problems.append(f"experiment name {experiment.name!r} is not a DNS-1123 label")
    for p in experiment.processes:
        for part in (p.name, p.group or "x"):
            if not NAME.fullmatch(part):
                problems.append(f"experiment {experiment.name}: process {p.key!r} is not a DNS-1123 name")
        workdir = str(wires[p.key].get("node_workdir") or "")
        if workdir.startswith(".."):
            problems.append(f"experiment {experiment.name}: process {p.key}: node_workdir may not leave the job folder")
    return problems
