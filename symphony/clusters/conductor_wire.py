"""What travels between the CLI and the conductor for Experiments: JSON in, model out. Pure.

The CLI sends the expanded model (replicas unrolled, defaults pushed down) with the
spec hash it computed, so the conductor can hand that hash back in every observation
and a re-apply of unchanged manifests plans nothing. Both sides import this module:
the conductor server sits above the cluster adapters, so it may.

``node_workdir`` is the folder a process runs in on its node: ``""`` (the job's own
folder under the node's ``work_dir``) when the manifest kept the default (the manifest's
folder), a path relative to the job folder when the manifest named a folder below its
own, and the absolute path otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from symphony.model import (
    Endpoint,
    Experiment,
    ProcessSpec,
    RestartPolicy,
    RestartType,
    SourceRef,
)


def node_workdir(process: ProcessSpec) -> str:
    """Where ``process`` runs on a node (see the module docstring)."""
    if process.source.file.startswith("<"):
        base = os.getcwd()
    else:
        base = os.path.dirname(os.path.abspath(process.source.file))
    workdir = os.path.normpath(process.workdir)
    if not os.path.isabs(workdir):
        return workdir if workdir != "." else ""
    rel = os.path.relpath(workdir, base)
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith(".." + os.sep):
        return workdir
    return rel


def process_to_wire(process: ProcessSpec) -> dict[str, Any]:
    return {
        "key": process.key,
        "name": process.name,
        "group": process.group,
        "base_name": process.base_name,
        "replica": process.replica,
        "replicas": process.replicas,
        "command": list(process.command),
        "env": dict(process.env),
        "workdir": process.workdir,
        "node_workdir": node_workdir(process),
        "binds": [_endpoint(e) for e in process.binds],
        "exposes": [_endpoint(e) for e in process.exposes],
        "connects": list(process.connects),
        "restart_policy": process.restart_policy.to_dict(),
        "capacity_requests": dict(process.capacity_requests),
        "node_group": process.node_group,
        "cluster": process.cluster,
        "spec_hash": process.spec_hash(),
    }


def experiment_to_wire(experiment: Experiment) -> dict[str, Any]:
    return {
        "name": experiment.name,
        "cluster": experiment.cluster,
        "labels": dict(experiment.labels),
        "groups": list(experiment.groups),
        "processes": [process_to_wire(p) for p in experiment.processes],
    }


class WireError(ValueError):
    """A malformed experiment body; the message names the field."""


def process_from_wire(experiment: str, data: Mapping[str, Any]) -> ProcessSpec:
    try:
        policy = data.get("restart_policy") or {}
        return ProcessSpec(
            experiment=experiment,
            name=str(data["name"]),
            command=tuple(str(c) for c in data["command"]),
            group=data.get("group") or None,
            base_name=str(data.get("base_name") or data["name"]),
            replica=int(data.get("replica", 0)),
            replicas=int(data.get("replicas", 1)),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            workdir=str(data.get("workdir", ".")),
            binds=tuple(_endpoint_from(e, exposed=False) for e in data.get("binds") or ()),
            exposes=tuple(_endpoint_from(e, exposed=True) for e in data.get("exposes") or ()),
            connects=tuple(str(c) for c in data.get("connects") or ()),
            restart_policy=RestartPolicy(
                type=RestartType(policy.get("type", "never")),
                backoff_seconds=float(policy.get("backoff_seconds", 5.0)),
                max_restarts=int(policy.get("max_restarts", 0)),
            ),
            capacity_requests={
                str(k): float(v) for k, v in (data.get("capacity_requests") or {}).items()
            },
            node_group=data.get("node_group") or None,
            cluster=str(data.get("cluster") or "local"),
            source=SourceRef("<conductor>"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"process {data.get('name', '?')!r}: malformed ({exc})") from None


def experiment_from_wire(data: Any) -> tuple[Experiment, dict[str, dict[str, Any]]]:
    """The experiment and, per process key, its wire dict (``spec_hash``, ``node_workdir``)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise WireError("an experiment must be an object with a name")
    raw = data.get("processes")
    if not isinstance(raw, list) or not all(isinstance(p, Mapping) for p in raw):
        raise WireError(f"experiment {data['name']!r}: processes must be a list of objects")
    processes = tuple(process_from_wire(data["name"], p) for p in raw)
    keys = [p.key for p in processes]
    if len(set(keys)) != len(keys):
        raise WireError(f"experiment {data['name']!r}: a process key appears twice")
    experiment = Experiment(
        name=data["name"],
        processes=processes,
        cluster=str(data.get("cluster") or "local"),
        labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        groups=tuple(str(g) for g in data.get("groups") or ()),
        source=SourceRef("<conductor>"),
    )
    wires = {p.key: dict(w) for p, w in zip(processes, raw, strict=True)}
    return experiment, wires


def _endpoint(e: Endpoint) -> dict[str, Any]:
    return {"name": e.name, "port": e.port}


def _endpoint_from(raw: Mapping[str, Any], *, exposed: bool) -> Endpoint:
    port = raw.get("port")
    return Endpoint(str(raw["name"]), int(port) if port is not None else None, exposed)
