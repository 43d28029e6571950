"""Experiments on the conductor: gangs of processes that find each other by name.

Each process of an experiment runs as a one-job deployment whose id (and job id) is
``<experiment>.<process>`` or ``<experiment>.<group>.<process>`` — dots never occur in
DNS-1123 names, so these ids cannot collide with a user's deployments. That way the
controller's machinery (epochs and fencing, adoption after restarts, node loss,
status, logs) serves experiments unchanged; this module only decides what those
deployments are:

- placement: the processes that need a node (new ones, or ones whose requests or node
  group changed) are placed as one gang through the scheduler — all or none;
- ports: :mod:`experiment_ports`, stored with the experiment;
- environment: after placement every process gets ``SYMPH_<NAME>_HOST/PORT/ADDR`` for
  every bound or exposed name (host = the binder's node ``advertise_address``), sent
  inside its job spec, so a restart of the process keeps it.

The CLI's spec hash of each process is stored and handed back in observations, so a
re-apply of unchanged manifests plans nothing. Deployments applied through the CLI are
remembered here too (``applied_deployments``) with the CLI's per-process hashes.

:meth:`Experiments.apply` checks and places everything first and writes only when
every experiment fits: a failed apply leaves nothing half-done. Requests are parsed in
:mod:`experiment_requests`, observations built in :mod:`experiment_views`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from symphony.clusters.conductor_wire import experiment_from_wire
from symphony.conductor.controller import Conductor
from symphony.conductor.experiment_ports import Assigned, PortError, assign
from symphony.conductor.experiment_requests import ApplyError, parse_apply
from symphony.conductor.placement import Decision
from symphony.conductor.store import JobRow
from symphony.environment import process_environment, provider_of
from symphony.model import Deployment, Experiment, ProcessSpec, stable_hash
from symphony.proto import protocol_pb2 as pb

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  ports TEXT NOT NULL DEFAULT '{}',
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS applied_deployments (
  id TEXT PRIMARY KEY,
  spec_hash TEXT NOT NULL,
  process_hashes TEXT NOT NULL
);
"""
log = logging.getLogger("symphony.conductor.experiments")


def job_id(experiment: str, key: str) -> str:
    """The id of a process's one-job deployment (and of its job)."""
    return f"{experiment}.{key.replace('/', '.')}"


@dataclass
class Stored:
    """One experiment as stored: the CLI's model, its wire dicts and its ports."""

    experiment: Experiment
    wires: dict[str, dict[str, Any]]
    ports: dict[str, Assigned]
    created_at: float


@dataclass
class _Placing:
    """What apply decided for one experiment before writing anything."""

    experiment: Experiment
    wires: dict[str, dict[str, Any]]
    placed: dict[str, str]  # job id -> node, for new or moved processes
    removed: list[str]  # job ids of processes no longer declared
    ports: dict[str, Assigned]  # decided before writing: a port conflict changes nothing


@dataclass
class Experiments:
    conductor: Conductor
    _undo: list[tuple[str, Any]] = field(default_factory=list, repr=False)
    _planned: dict[str, dict[str, Assigned]] = field(default_factory=dict, repr=False)  # ports of this apply

    def __post_init__(self) -> None:
        self.store = self.conductor.store
        self.store.db.executescript(SCHEMA)
        self.conductor.placement_hooks.append(self._after_placement)

    # ------------------------------------------------------------------ reading
    def load(self, name: str) -> Stored | None:
        row = self.store.db.execute(
            "SELECT body, ports, created_at FROM experiments WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            return None
        experiment, wires = experiment_from_wire(json.loads(row[0]))
        ports = {k: Assigned(v["node"], int(v["port"])) for k, v in json.loads(row[1]).items()}
        return Stored(experiment, wires, ports, row[2])

    def names(self) -> list[str]:
        return [r[0] for r in self.store.db.execute("SELECT name FROM experiments ORDER BY created_at, name")]

    def applied(self) -> dict[str, tuple[str, dict[str, str]]]:
        rows = self.store.db.execute("SELECT id, spec_hash, process_hashes FROM applied_deployments")
        return {r[0]: (r[1], json.loads(r[2])) for r in rows}

    # ------------------------------------------------------------------ apply
    def apply(self, body: Any) -> dict[str, Any]:
        """``{"experiments": [wire…], "deployments": [{"spec", "process_hashes"}…], "delete": [names]}``."""
        request = parse_apply(body)
        experiments, deployments, deletes = request.experiments, request.deployments, request.delete
        self._check_names(experiments, deployments)
        self._undo, self._planned = [], {}
        try:
            for name in deletes:
                for jid in self._job_ids(name):
                    self._release(jid)
            placing = [self._place(e, w) for e, w in experiments]
            for dep, _ in deployments:
                self._check_fits(dep)
            with self.store.transaction():
                for name in deletes:
                    self.delete(name, missing_ok=True)
                for item in placing:
                    self._write(item)
                for dep, hashes in deployments:
                    self._upsert_deployment(dep, hashes)
        except PortError as exc:
            self._rollback()
            raise ApplyError([str(exc)]) from None
        except BaseException:  # ApplyError, or a bug: no capacity stays reserved for nothing
            self._rollback()
            raise
        self._undo, self._planned = [], {}
        self.conductor.schedule_pending()
        return {
            "experiments": [e.name for e, _ in experiments],
            "deployments": [d.name for d, _ in deployments],
            "deleted": deletes,
        }

    def _check_names(
        self, experiments: list[tuple[Experiment, Any]], deployments: list[tuple[Deployment, Any]]
    ) -> None:
        errors = []
        for experiment, _ in experiments:
            dep = self.store.get_deployment(experiment.name)
            if dep is not None and not dep.spec.get("experiment"):
                errors.append(f"experiment {experiment.name}: a deployment of that name exists on this conductor")
        known = set(self.names()) | {e.name for e, _ in experiments}
        errors += [f"deployment {d.name}: an experiment of that name exists on this conductor"
                   for d, _ in deployments if d.name in known]
        if errors:
            raise ApplyError(errors)

    def _place(self, experiment: Experiment, wires: dict[str, dict[str, Any]]) -> _Placing:
        """Place what needs a node as one gang (capacity is reserved at once; undo on failure)."""
        stored = self.load(experiment.name)
        old = stored.wires if stored else {}
        wanted = {job_id(experiment.name, p.key) for p in experiment.processes}
        removed = [job_id(experiment.name, k) for k in old if job_id(experiment.name, k) not in wanted]
        need: dict[str, tuple[Mapping[str, float], str | None]] = {}
        for p in experiment.processes:
            jid = job_id(experiment.name, p.key)
            before = old.get(p.key)
            if before is None or self.store.get_job(jid) is None or _asks(before) != _asks(wires[p.key]):
                need[jid] = (p.capacity_requests, p.node_group)
        for jid in [*removed, *need]:
            self._release(jid)
        decisions: dict[str, Decision] = {}
        if need:
            decisions = self.conductor.placer.place_gang(experiment.name, need)
            reasons = [d.reason for d in decisions.values() if d.node_id is None]
            if reasons:  # the members that fit say "(x does not)"; the others say why they do not
                why = [r for r in reasons if not r.endswith(" not)")] or reasons
                raise ApplyError([f"experiment {experiment.name} is unschedulable: {why[0]}"])
            self._undo += [("placed", jid) for jid in decisions]
        placed = {jid: d.node_id for jid, d in decisions.items() if d.node_id is not None}
        nodes = {}
        for p in experiment.processes:
            jid = job_id(experiment.name, p.key)
            job = self.store.get_job(jid)
            nodes[p.key] = placed.get(jid) or (job.node_id if job is not None else None)
        ports = self._ports(experiment, nodes, stored.ports if stored else {})
        self._planned[experiment.name] = ports
        return _Placing(experiment, wires, placed, removed, ports)

    def _ports(self, e: Experiment, nodes: Mapping[str, str | None], held: Mapping[str, Assigned]) -> dict[str, Assigned]:
        """Ports for every bound or exposed name, on its binder's node (kept while it stays there)."""
        providers = provider_of(e)
        wanted: dict[str, tuple[str, int | None]] = {}
        for endpoint in e.endpoints:
            node = nodes.get(providers[endpoint.name].key)
            if node is None and endpoint.name in held:
                node = held[endpoint.name].node  # pending (its node was lost): keep the last address
            if node is not None:
                wanted[endpoint.name] = (node, endpoint.port)
        return assign(e.name, wanted, held, taken=self._taken(exclude=e.name))

    def _release(self, jid: str) -> None:
        held = self.conductor.placer.held.get(jid)
        if held is not None:
            self.conductor.placer.release(jid)
            self._undo.append(("released", held))

    def _rollback(self) -> None:
        placer = self.conductor.placer
        for what, item in reversed(self._undo):
            if what == "placed":
                placer.release(item)
            else:
                placer.reserve(item.process, item.node, item.request.capacity_requests, workload=item.workload)
        self._undo = []

    def _check_fits(self, dep: Deployment) -> None:
        """A deployment waits for capacity, but one no known node could ever hold is refused."""
        if dep.desired_state == "stopped":
            return
        reason = self.conductor.placer.never_fits(dep.capacity_requests, node_group=dep.node_group,
                                                  workload=dep.name)
        if reason is not None:
            raise ApplyError([f"deployment {dep.name} is unschedulable: {reason}"])

    # ------------------------------------------------------------------ writing
    def _write(self, item: _Placing) -> None:
        e = item.experiment
        stored = self.load(e.name)
        now = time.time()
        body = {"name": e.name, "cluster": e.cluster, "labels": dict(e.labels), "groups": list(e.groups),
                "processes": [item.wires[p.key] for p in e.processes]}
        ports = {k: v.to_json() for k, v in item.ports.items()}
        self.store.db.execute(
            "INSERT OR REPLACE INTO experiments(name, body, ports, created_at, updated_at) VALUES (?,?,?,?,?)",
            (e.name, json.dumps(body), json.dumps(ports), stored.created_at if stored else now, now),
        )
        for jid in item.removed:
            if self.store.get_deployment(jid) is not None:
                self.conductor.delete_deployment(jid)
        for p in e.processes:
            jid = job_id(e.name, p.key)
            node = item.placed.get(jid)
            if node is None:
                continue
            job = self.store.get_job(jid)
            if job is not None and job.node_id and job.node_id != node:
                self._tell(job, "removed")  # it moved: the old copy goes
            if self.store.get_deployment(jid) is None:
                self.store.put_deployment(jid, {"name": jid, "experiment": e.name, "process": p.key}, "")
            epoch = self.store.next_epoch()
            self.store.put_job(JobRow(jid, jid, p.replica, node_id=node, epoch=epoch))
            self.store.add_event("placed", f"{jid} placed on {node} (epoch {epoch}) with experiment {e.name}",
                                 deployment_id=jid, job_id=jid, node_id=node)
        self.store.add_event("applied", f"experiment {e.name} applied ({len(e.processes)} processes)")
        self.converge(e.name, start=set(item.placed))

    def converge(self, name: str, *, start: Collection[str] = ()) -> None:
        """Recompute ports and environments from where the processes are; send what changed.

        ``start``: jobs just placed, which their node must be told to run in any case.
        """
        stored = self.load(name)
        if stored is None:
            return
        e = stored.experiment
        jobs = {p.key: self.store.get_job(job_id(name, p.key)) for p in e.processes}
        ports = self._ports(e, {k: j.node_id if j else None for k, j in jobs.items()}, stored.ports)
        self.store.db.execute("UPDATE experiments SET ports=? WHERE name=?",
                              (json.dumps({k: v.to_json() for k, v in ports.items()}), name))
        addresses = {k: (self.host(v.node), v.port) for k, v in ports.items()}
        for p in e.processes:
            jid = job_id(name, p.key)
            spec = self._job_spec(p, stored.wires[p.key], addresses, ports)
            spec_hash = stable_hash(spec)
            dep = self.store.get_deployment(jid)
            changed = dep is None or dep.spec_hash != spec_hash
            if changed:
                dep = self.store.put_deployment(jid, spec, spec_hash)
            job = jobs[p.key]
            if job is None or job.node_id is None or dep is None or not (changed or jid in start):
                continue
            if jid not in start:
                job = job.with_(status={})  # a new copy of the process: forget the old run's state
                self.store.put_job(job)
            self.conductor._start_on_node(job, dep)

    def _job_spec(self, p: ProcessSpec, wire: Mapping[str, Any], addresses: Mapping[str, tuple[str, int]],
                  ports: Mapping[str, Assigned]) -> dict[str, Any]:
        return {
            "name": job_id(p.experiment, p.key),
            "experiment": p.experiment,
            "process": p.key,
            "cluster": p.cluster,
            "node_group": p.node_group,
            "replicas": 1,
            "capacity_requests": dict(p.capacity_requests),
            "kind": "exec",
            "config": {
                "command": list(p.command),
                "env": process_environment(p, addresses=addresses, cluster=p.cluster),
                "image": None,
                "env_name": None,
                "workdir": str(wire.get("node_workdir") or ""),
            },
            "restart_policy": p.restart_policy.to_dict(),
            "desired_state": "running",
            "ports": {e.name: ports[e.name].port for e in p.endpoints if e.name in ports},
        }

    def host(self, node_id: str) -> str:
        known = self.conductor.nodes.get(node_id)
        return str((known.info.get("advertise_address") if known else None) or "127.0.0.1")

    def _taken(self, *, exclude: str) -> dict[str, set[int]]:
        held = {name: [Assigned(v["node"], int(v["port"])) for v in json.loads(raw).values()]
                for name, raw in self.store.db.execute("SELECT name, ports FROM experiments")}
        held.update({name: list(ports.values()) for name, ports in self._planned.items()})
        taken: dict[str, set[int]] = {}
        for name, assigned in held.items():
            if name != exclude:
                for a in assigned:
                    taken.setdefault(a.node, set()).add(a.port)
        return taken

    def _tell(self, job: JobRow, status: str) -> None:
        session = self.conductor.registry.get(job.node_id or "")
        if session is not None:
            session.send(pb.ConductorToNode(deployment_update=pb.DeploymentUpdate(
                deployment_id=job.deployment_id, job_id=job.job_id, epoch=job.epoch, status=status)))

    def _after_placement(self, job_ids: list[str]) -> None:
        """Processes placed again after their node was lost: their addresses changed."""
        names = set()
        for jid in job_ids:
            dep = self.store.get_deployment(jid)
            if dep is not None and dep.spec.get("experiment"):
                names.add(str(dep.spec["experiment"]))
        for name in sorted(names):
            try:
                self.converge(name)
            except PortError as exc:  # e.g. a fixed port taken on the new node: say so, keep going
                log.warning("experiment %s: %s", name, exc)
                self.store.add_event("port-conflict", f"experiment {name}: {exc}")

    def _upsert_deployment(self, dep: Deployment, hashes: dict[str, str]) -> None:
        if self.store.get_deployment(dep.name) is None:
            self.conductor.create_deployment(dep)
        else:
            self.conductor.update_deployment(dep)
        row = self.store.get_deployment(dep.name)
        assert row is not None
        self.store.db.execute(
            "INSERT OR REPLACE INTO applied_deployments(id, spec_hash, process_hashes) VALUES (?,?,?)",
            (dep.name, row.spec_hash, json.dumps(hashes)),
        )

    # ------------------------------------------------------------------ delete
    def _job_ids(self, name: str) -> list[str]:
        stored = self.load(name)
        if stored is not None:
            return [job_id(name, k) for k in stored.wires]
        if name in self.applied():
            return [j.job_id for j in self.store.list_jobs(name)]
        return []

    def delete(self, name: str, *, missing_ok: bool = False) -> str:
        """Remove an experiment (all its processes) or a deployment applied through the CLI."""
        with self.store.transaction():
            stored = self.load(name)
            if stored is not None:
                for key in stored.wires:
                    if self.store.get_deployment(job_id(name, key)) is not None:
                        self.conductor.delete_deployment(job_id(name, key))
                self.store.db.execute("DELETE FROM experiments WHERE name=?", (name,))
                self.store.add_event("deleted", f"experiment {name} deleted")
                return "experiment"
            if name in self.applied():
                self.store.db.execute("DELETE FROM applied_deployments WHERE id=?", (name,))
                if self.store.get_deployment(name) is not None:
                    self.conductor.delete_deployment(name)
                return "deployment"
        if missing_ok:
            return ""
        raise KeyError(name)



def _asks(wire: Mapping[str, Any]) -> tuple[Any, ...]:
    """What placement depends on: a change here moves the process."""
    reqs = {k: float(v) for k, v in (wire.get("capacity_requests") or {}).items() if float(v) > 0}
    return (sorted(reqs.items()), wire.get("node_group") or None)




__all__ = ["ApplyError", "Experiments", "job_id"]
