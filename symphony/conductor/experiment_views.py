"""What the CLI observes on a conductor: processes with the CLI's own spec hashes.

Experiments' processes are read from their one-job deployments; deployments applied
through the CLI are shown per replica under the names their manifests lower to
(``NAME`` for one replica, ``NAME-<i>`` otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symphony.conductor.controller import NotFound
from symphony.environment import provider_of

if TYPE_CHECKING:
    from symphony.conductor.experiments import Experiments


def processes(book: Experiments, names: list[str] | None = None, *, stopped: bool = False) -> list[dict[str, Any]]:
    """Every process of the experiments and CLI-applied deployments (only ``names`` if given).

    A stopped deployment has no processes for the planner (its manifest lowers to none);
    ``stopped`` lists its jobs anyway, for status, delete and prune.
    """
    from symphony.conductor.experiments import job_id

    wanted = None if not names else set(names)
    out: list[dict[str, Any]] = []
    for name in book.names():
        if wanted is not None and name not in wanted:
            continue
        stored = book.load(name)
        assert stored is not None
        for p in stored.experiment.processes:
            view = _job(book, job_id(name, p.key))
            # a job removed behind our back (DELETE /deployments/<job>) matches no spec: re-apply restores it
            spec_hash = stored.wires[p.key].get("spec_hash", "") if view.get("epoch") is not None else ""
            out.append({**view, "experiment": name, "key": p.key, "kind": "experiment", "spec_hash": spec_hash})
    for dep_id, (applied_hash, hashes) in sorted(book.applied().items()):
        if wanted is not None and dep_id not in wanted:
            continue
        row = book.store.get_deployment(dep_id)
        if row is None or (row.spec.get("desired_state") == "stopped" and not stopped):
            continue
        drifted = row.spec_hash != applied_hash  # changed through the API since: re-apply fixes it
        replicas = int(row.spec.get("replicas", 1))
        for job in book.conductor.describe(dep_id)["jobs"]:
            key = dep_id if replicas == 1 else f"{dep_id}-{job['replica']}"
            out.append({**job, "experiment": dep_id, "key": key, "kind": "deployment",
                        "spec_hash": "" if drifted else hashes.get(key, "")})
    return out


def _job(book: Experiments, jid: str) -> dict[str, Any]:
    try:
        jobs = book.conductor.describe(jid)["jobs"]
    except NotFound:  # deleted through the API
        jobs = []
    if jobs:
        return dict(jobs[0])
    return {"job_id": jid, "node": None, "host": None, "state": "pending", "pid": None, "restarts": 0,
            "exit_code": None, "started_at": None, "reason": "not placed"}


def describe(book: Experiments, name: str) -> dict[str, Any]:
    """One experiment: its processes and where each bound or exposed name is reached."""
    stored = book.load(name)
    if stored is None:
        raise KeyError(name)
    providers = provider_of(stored.experiment)
    exposed = {e.name for e in stored.experiment.endpoints if e.exposed}
    addresses = {
        k: {"host": book.host(v.node), "port": v.port, "node": v.node, "process": providers[k].key,
            "exposed": k in exposed}
        for k, v in stored.ports.items() if k in providers
    }
    return {
        "name": name,
        "cluster": stored.experiment.cluster,
        "labels": dict(stored.experiment.labels),
        "created_at": stored.created_at,
        "processes": processes(book, [name]),
        "addresses": addresses,
    }
