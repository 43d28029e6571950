"""The conductor's decisions: what runs where, adopting and fencing job copies.

Everything here runs on the event loop's thread, so it needs no locks: the gRPC
service and the HTTP API call in, the store is written before a node is told
anything, and messages to nodes go through their session's outbox.

Jobs are deployment replicas (``<deployment>-<replica>``). Each time a job is put on
a node it gets a fresh epoch from the store (a fencing token). A node reports the
epoch of every copy it holds; a copy whose epoch (or node) is no longer the job's is
stale and is removed, so a node that comes back after being declared lost cannot
keep running work that moved elsewhere.

Job output goes to :class:`~symphony.conductor.log_store.LogStore` (files under
``<storage>/logs``): a node resumes each job's output where the store's cursor says,
and the store drops what it holds already.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from symphony.conductor.log_store import LogStore
from symphony.conductor.placement import Placer
from symphony.conductor.registry import NodeSession, Registry, heartbeat_info, hello_info
from symphony.conductor.sched_stats import SchedulingStats
from symphony.conductor.store import DeploymentRow, JobRow, Store
from symphony.model import Deployment
from symphony.proto import protocol_pb2 as pb

log = logging.getLogger("symphony.conductor")

RUNNING_STATES = {"running"}


class Conflict(Exception):
    """The request contradicts what exists (HTTP 409)."""


class NotFound(Exception):
    """No such deployment (HTTP 404)."""


@dataclass
class KnownNode:
    """A node the conductor has heard of, connected or not."""

    node_id: str
    info: dict[str, Any]
    deadline: float  # monotonic time after which a silent node is lost
    lost: bool = False
    session: NodeSession | None = None
    disconnected_at: float | None = None


@dataclass
class Conductor:
    store: Store
    placer: Placer
    startup_grace_sec: float = 10.0
    registry: Registry = field(default_factory=Registry)
    nodes: dict[str, KnownNode] = field(default_factory=dict)
    log_store: LogStore | None = None  # default: <the store's folder>/logs with default limits
    sched_stats: SchedulingStats = field(default_factory=SchedulingStats)  # for GET /metrics
    # told the job ids schedule_pending placed (experiments recompute their addresses)
    placement_hooks: list[Callable[[list[str]], None]] = field(default_factory=list)
    # request id -> who waits for that ExecResult (symphony exec through the HTTP API)
    exec_waiters: dict[str, Callable[[pb.ExecResult], None]] = field(default_factory=dict)
    logs: LogStore = field(init=False)

    def __post_init__(self) -> None:
        self.logs = self.log_store if self.log_store is not None else LogStore(self.store.path.parent / "logs")

    # ------------------------------------------------------------------ startup
    def restore(self) -> None:
        """Rebuild the in-memory picture from the store after a (re)start."""
        now = time.monotonic()
        for row in self.store.list_nodes():
            if row.lost:
                continue
            info = row.info
            grace = max(self.startup_grace_sec, 3.0 * float(info.get("heartbeat_sec", 3.0)))
            self.nodes[row.node_id] = KnownNode(row.node_id, info, deadline=now + grace)
            self.placer.upsert_node(
                row.node_id,
                groups=tuple(info.get("groups", ())),
                capacities=info.get("capacities_total", {}),
                schedulable=False,
            )
        for job in self.store.list_jobs():
            if job.node_id is None:
                continue
            dep = self.store.get_deployment(job.deployment_id)
            if job.node_id in self.nodes and dep is not None:
                self.placer.reserve(job.job_id, job.node_id, _requests(dep), workload=dep.id)
            else:  # its node was lost before we went down
                self.store.put_job(job.with_(node_id=None, reason=f"node {job.node_id} was lost"))
        self.logs.keep_only(job.job_id for job in self.store.list_jobs())  # deleted while we were down
        self.store.add_event("conductor-started", f"conductor started; {len(self.nodes)} known nodes")

    # ------------------------------------------------------------------ deployments
    def create_deployment(self, dep: Deployment) -> dict[str, Any]:
        if self.store.get_deployment(dep.name) is not None:
            raise Conflict(f"deployment {dep.name!r} already exists")
        spec = {"name": dep.name, **dep.to_spec()}
        with self.store.transaction():
            self.store.put_deployment(dep.name, spec, dep.spec_hash())
            for replica in range(dep.replicas):
                self.store.put_job(JobRow(_job_id(dep.name, replica), dep.name, replica, reason="waiting to be placed"))
            self.store.add_event("created", f"deployment {dep.name} created", deployment_id=dep.name)
        self.schedule_pending()
        return self.describe(dep.name)

    def update_deployment(self, dep: Deployment) -> dict[str, Any]:
        """Apply a changed spec: a change of desired_state stops or starts; any other change
        replaces the copies (stop, then place again with the new spec)."""
        row = self._deployment(dep.name)
        spec = {"name": dep.name, **dep.to_spec()}
        old = row.spec
        if dep.spec_hash() == row.spec_hash:
            return self.describe(dep.name)
        only_state = {k: v for k, v in old.items() if k != "desired_state"} == {
            k: v for k, v in spec.items() if k != "desired_state"
        }
        with self.store.transaction():
            self.store.put_deployment(dep.name, spec, dep.spec_hash())
            jobs = self.store.list_jobs(dep.name)
            if not only_state or dep.desired_state == "stopped":
                how = "stopped" if only_state else "removed"
                reason = "desired_state is stopped" if dep.desired_state == "stopped" else "waiting to be placed"
                for job in jobs:
                    self._unplace(job, tell=how, reason=reason)
            for job in jobs:
                if job.replica >= dep.replicas:
                    self._unplace(job, tell="removed", reason="")
                    self.store.delete_job(job.job_id)
                    self.logs.delete(job.job_id)
            for replica in range(len(jobs), dep.replicas):
                self.store.put_job(JobRow(_job_id(dep.name, replica), dep.name, replica, reason="waiting to be placed"))
            self.store.add_event("updated", f"deployment {dep.name} updated", deployment_id=dep.name)
        self.schedule_pending()
        return self.describe(dep.name)

    def delete_deployment(self, dep_id: str) -> None:
        self._deployment(dep_id)
        with self.store.transaction():
            for job in self.store.list_jobs(dep_id):
                self._unplace(job, tell="removed", reason="")
                self.logs.delete(job.job_id)
            self.store.delete_deployment(dep_id)
            self.store.add_event("deleted", f"deployment {dep_id} deleted", deployment_id=dep_id)
        self.schedule_pending()  # what waited for the capacity it held

    def _unplace(self, job: JobRow, *, tell: str, reason: str) -> JobRow:
        """Take a job off its node (telling the node when connected) and free its capacity.

        ``tell="removed"`` also reaches the node that keeps the folder of a stopped copy
        (``last_node_id``): without it a stopped-then-deleted job's folder stayed there.
        A node that misses the message (disconnected, the conductor killed before
        sending) reports the copy in its next hello and is told then (:meth:`_reconcile_node`).
        """
        if job.node_id is not None:
            self._tell(job.node_id, _update(job, status=tell))
            self.placer.release(job.job_id)
        elif tell == "removed" and job.last_node_id is not None:
            self._tell(job.last_node_id, _update(job, status="removed"))
        new = job.with_(node_id=None, reason=reason, last_node_id=None if tell == "removed" else job.last_node_id)
        self.store.put_job(new)
        return new

    def _tell(self, node_id: str, msg: pb.ConductorToNode) -> None:
        session = self.registry.get(node_id)
        if session is not None:
            session.send(msg)

    def schedule_pending(self) -> None:
        """Place every job that wants to run and has no node, in creation order."""
        pending = [j for j in self.store.list_jobs() if j.node_id is None]
        self.sched_stats.keep_only(j.job_id for j in pending)
        if not pending:
            return
        deployments = {d.id: d for d in self.store.list_deployments()}
        pending.sort(key=lambda j: (deployments[j.deployment_id].created_at, j.deployment_id, j.replica))
        placed_ids: list[str] = []
        for job in pending:
            dep = deployments[job.deployment_id]
            if dep.spec.get("desired_state") == "stopped":
                self.sched_stats.forget(job.job_id)
                continue
            self.sched_stats.waiting(job.job_id, time.monotonic())
            began = time.perf_counter()
            decision = self.placer.place(
                job.job_id, dep.id, _requests(dep), node_group=dep.spec.get("node_group")
            )
            self.sched_stats.decided(time.perf_counter() - began)
            if decision.node_id is None:
                if decision.reason != job.reason:
                    self.store.put_job(job.with_(reason=decision.reason))
                    self.store.add_event("unschedulable", decision.reason, deployment_id=dep.id, job_id=job.job_id)
                continue
            self.sched_stats.placed(job.job_id, time.monotonic())
            epoch = self.store.next_epoch()
            placed = job.with_(node_id=decision.node_id, epoch=epoch, reason="", status={})
            with self.store.transaction():
                self.store.put_job(placed)
                self.store.add_event(
                    "placed", f"{job.job_id} placed on {decision.node_id} (epoch {epoch})",
                    deployment_id=dep.id, job_id=job.job_id, node_id=decision.node_id,
                )
            held_by = job.last_node_id  # a stopped copy's folder elsewhere goes (after the commit)
            if held_by is not None and held_by != decision.node_id:
                self._tell(held_by, _update(job, status="removed"))
            self._start_on_node(placed, dep)
            placed_ids.append(job.job_id)
        for hook in self.placement_hooks if placed_ids else ():
            hook(placed_ids)

    def _start_on_node(self, job: JobRow, dep: DeploymentRow) -> None:
        session = self.registry.get(job.node_id or "")
        if session is None:
            return
        session.send(
            pb.ConductorToNode(
                deployment_req=pb.DeploymentReq(
                    specification=json.dumps(dep.spec),
                    job_id=job.job_id,
                    deployment_id=dep.id,
                    epoch=job.epoch,
                    replica=job.replica,
                    spec_hash=dep.spec_hash,
                )
            )
        )

    # ------------------------------------------------------------------ nodes
    def node_connected(self, session: NodeSession) -> NodeSession | None:
        """Admit a stream whose identity was checked; return the live session it collides with."""
        other = self.registry.admit(session)
        if other is not None:
            return other
        hello = session.hello
        info = hello_info(hello)
        known = self.nodes.get(session.node_id)
        if known is None:
            known = self.nodes[session.node_id] = KnownNode(session.node_id, info, deadline=0.0)
        was_lost = known.lost
        known.info, known.lost, known.session, known.disconnected_at = info, False, session, None
        self.store.put_node(session.node_id, info)
        if was_lost:
            self.store.add_event("node-returned", f"node {session.node_id} is back", node_id=session.node_id)
        self.store.add_event("node-connected", f"node {session.node_id} connected from {session.peer}", node_id=session.node_id)
        self.placer.upsert_node(
            session.node_id, groups=tuple(hello.groups), capacities=dict(hello.capacities_total), schedulable=True
        )
        session.send(
            pb.ConductorToNode(
                welcome=pb.Welcome(
                    node_id=session.node_id,
                    server_time_unix_ms=int(time.time() * 1000),
                    lost_after_sec=session.lost_after,
                    log_cursors=self._log_cursors(hello.jobs.deployments),
                )
            )
        )
        self._reconcile_node(session, list(hello.jobs.deployments))
        self.schedule_pending()
        return None

    def _log_cursors(self, reported: Iterable[pb.DeploymentStatus]) -> list[pb.LogCursor]:
        """How much output we hold of each reported copy that is its job's current one."""
        out = []
        for st in reported:
            job = self.store.get_job(st.job_id)
            if job is None or job.epoch != st.epoch:
                continue  # a stale copy: fenced below, its output is not wanted
            output_id, end = self.logs.cursor(job.job_id) or ("", 0)
            out.append(pb.LogCursor(job_id=job.job_id, output_id=output_id, end_offset=end))
        return out

    def _reconcile_node(self, session: NodeSession, reported: list[pb.DeploymentStatus]) -> None:
        """Adopt the copies a node reports that are still current; fence the others;
        send what the node should run but does not."""
        node_id = session.node_id
        current: set[str] = set()
        with self.store.transaction():
            for st in reported:
                job = self.store.get_job(st.job_id)
                dep = self.store.get_deployment(job.deployment_id) if job else None
                if job is None or dep is None:
                    self._fence(session, st, "its deployment no longer exists")
                    continue
                if job.node_id is None and job.epoch == st.epoch and dep.spec.get("desired_state") != "stopped":
                    reqs = _requests(dep)
                    if self.placer.fits(node_id, reqs, node_group=dep.spec.get("node_group")):
                        self.placer.reserve(job.job_id, node_id, reqs, workload=dep.id)
                        job = job.with_(node_id=node_id, reason="")
                        self.store.put_job(job)
                        self.store.add_event("adopted", f"{job.job_id} re-adopted on {node_id}",
                                             deployment_id=dep.id, job_id=job.job_id, node_id=node_id)
                if job.node_id == node_id and job.epoch == st.epoch:
                    current.add(job.job_id)
                    self._record_status(job, st)
                    if st.state == "unknown" and st.desired_state == "running":
                        # its supervisor died with the node (a reboot, kill -9 of everything)
                        session.send(pb.ConductorToNode(deployment_update=pb.DeploymentUpdate(
                            deployment_id=job.deployment_id, job_id=job.job_id, epoch=job.epoch,
                            trigger_restart=True)))
                        self.store.add_event("revived", f"{job.job_id} restarted on {node_id}: {st.reason}",
                                             deployment_id=job.deployment_id, job_id=job.job_id, node_id=node_id)
                    if dep.spec_hash != st.spec_hash and st.spec_hash:
                        self._start_on_node(job, dep)  # the node replaces its copy
                elif job.node_id is None and job.epoch == st.epoch:
                    self._record_status(job, st)  # a stopped copy: keep showing its last state
                else:
                    self._fence(session, st, f"job {st.job_id} now has epoch {job.epoch} on {job.node_id or 'no node'}")
            for job in self.store.list_jobs():
                if job.node_id == node_id and job.job_id not in current:
                    dep = self.store.get_deployment(job.deployment_id)
                    if dep is not None:
                        self._start_on_node(job, dep)

    def _fence(self, session: NodeSession, st: pb.DeploymentStatus, why: str) -> None:
        session.send(
            pb.ConductorToNode(
                deployment_update=pb.DeploymentUpdate(
                    deployment_id=st.deployment_id, job_id=st.job_id, epoch=st.epoch, status="removed"
                )
            )
        )
        self.store.add_event(
            "fenced", f"stale copy {st.job_id} (epoch {st.epoch}) on {session.node_id} removed: {why}",
            deployment_id=st.deployment_id or None, job_id=st.job_id, node_id=session.node_id,
        )

    def node_disconnected(self, session: NodeSession) -> None:
        if not self.registry.remove(session):
            return  # a newer stream already replaced it
        session.close()
        known = self.nodes.get(session.node_id)
        if known is None or known.session is not session:
            return
        known.session = None
        known.disconnected_at = time.time()
        known.deadline = session.last_seen + session.lost_after
        self.placer.set_schedulable(session.node_id, False)
        self.store.add_event("node-disconnected", f"node {session.node_id} disconnected", node_id=session.node_id)

    def check_lost(self, now: float | None = None) -> list[str]:
        """Declare silent nodes lost and move their jobs; return the ids declared lost."""
        now = time.monotonic() if now is None else now
        lost: list[str] = []
        for known in self.nodes.values():
            if known.lost:
                continue
            if known.session is not None:
                known.deadline = known.session.last_seen + known.session.lost_after
            if now < known.deadline:
                continue
            lost.append(known.node_id)
            self._declare_lost(known)
        if lost:
            self.schedule_pending()
        return lost

    def _declare_lost(self, known: KnownNode) -> None:
        node_id = known.node_id
        if known.session is not None:
            self.registry.remove(known.session)
            known.session.close()
            known.session = None
        known.lost = True
        self.placer.remove_node(node_id)
        with self.store.transaction():
            self.store.set_node_lost(node_id, True)
            self.store.add_event("node-lost", f"node {node_id} lost (silent too long)", node_id=node_id)
            for job in self.store.list_jobs():
                if job.node_id == node_id:
                    self.store.put_job(job.with_(node_id=None, reason=f"node {node_id} lost; waiting to be placed"))
                    self.store.add_event("job-orphaned", f"{job.job_id} was on lost node {node_id}",
                                         deployment_id=job.deployment_id, job_id=job.job_id, node_id=node_id)
        log.warning("node %s lost; its jobs will be placed elsewhere", node_id)

    # ------------------------------------------------------------------ node messages
    def on_heartbeat(self, session: NodeSession, hb: pb.Heartbeat) -> None:
        session.last_heartbeat = hb

    def on_status(self, session: NodeSession, statuses: pb.DeploymentStatusList) -> None:
        with self.store.transaction():
            for st in statuses.deployments:
                job = self.store.get_job(st.job_id)
                if job is None or job.epoch != st.epoch or job.node_id not in (session.node_id, None):
                    continue  # a stale copy: the reconcile on hello fences it
                self._record_status(job, st)

    def _record_status(self, job: JobRow, st: pb.DeploymentStatus) -> None:
        status = {
            "state": st.state,
            "pid": st.pid or None,
            "started_at": st.started_at_ms / 1000 if st.started_at_ms else None,
            "stopped_at": st.stopped_at_ms / 1000 if st.stopped_at_ms else None,
            "exit_code": st.last_exit_code if st.has_exit_code else None,
            "restarts": st.restart_count,
            "reason": st.reason,
        }
        if status != job.status:
            self.store.put_job(job.with_(status=status))
            if job.status.get("state") != st.state:
                self.store.add_event(
                    "state", f"{job.job_id}: {st.state}" + (f" ({st.reason})" if st.reason else ""),
                    deployment_id=job.deployment_id, job_id=job.job_id, node_id=job.node_id,
                )

    def on_ack(self, session: NodeSession, ack: pb.Ack) -> None:
        if not ack.ok:
            job_id = ack.message.split(":", 1)[0]
            job = self.store.get_job(job_id)
            self.store.add_event("node-error", f"{session.node_id}: {ack.message}",
                                 deployment_id=job.deployment_id if job else None, job_id=job_id,
                                 node_id=session.node_id)

    def on_exec_result(self, session: NodeSession, result: pb.ExecResult) -> None:
        waiter = self.exec_waiters.pop(result.request_id, None)
        if waiter is not None:
            waiter(result)

    def on_logs(self, session: NodeSession, logs: pb.DeploymentLogs) -> None:
        """Keep the output of a job's current copy (and the rest of the output we were
        taking when the job moved on, e.g. a copy's last lines as it is stopped)."""
        job = self.store.get_job(logs.job_id)
        if job is None:
            return  # deleted
        cursor = self.logs.cursor(job.job_id)
        if logs.epoch != job.epoch and not (cursor and logs.output_id and cursor[0] == logs.output_id):
            return  # a stale copy's
        self.logs.append(
            job.job_id,
            ((e.timestamp_unix_ms / 1000, e.stream, e.line, e.end_offset) for e in logs.entries),
            node=session.node_id, epoch=logs.epoch, output_id=logs.output_id,
        )

    # ------------------------------------------------------------------ views
    def _deployment(self, dep_id: str) -> DeploymentRow:
        row = self.store.get_deployment(dep_id)
        if row is None:
            raise NotFound(f"no deployment {dep_id!r}")
        return row

    def describe(self, dep_id: str) -> dict[str, Any]:
        row = self._deployment(dep_id)
        return self._describe(row, self.store.list_jobs(dep_id))

    def list_deployments(self) -> list[dict[str, Any]]:
        jobs: dict[str, list[JobRow]] = {}
        for job in self.store.list_jobs():
            jobs.setdefault(job.deployment_id, []).append(job)
        return [self._describe(row, jobs.get(row.id, [])) for row in self.store.list_deployments()]

    def _describe(self, row: DeploymentRow, jobs: list[JobRow]) -> dict[str, Any]:
        views = [self._job_view(j) for j in jobs]
        return {
            "id": row.id,
            **row.spec,
            "spec_hash": row.spec_hash,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "state": _summary(row.spec.get("desired_state", "running"), views),
            "jobs": views,
        }

    def _job_view(self, job: JobRow) -> dict[str, Any]:
        st = job.status
        if job.node_id is None:
            state = st.get("state") if st.get("state") in ("stopped", "completed", "exited") else "pending"
        else:
            state = st.get("state") or "assigned"
        known = self.nodes.get(job.node_id or "")
        return {
            "job_id": job.job_id,
            "replica": job.replica,
            "node": job.node_id,
            "host": known.info.get("advertise_address") if known else None,
            "epoch": job.epoch,
            "state": state,
            "pid": st.get("pid"),
            "restarts": st.get("restarts", 0),
            "exit_code": st.get("exit_code"),
            "started_at": st.get("started_at"),
            "stopped_at": st.get("stopped_at"),
            "reason": job.reason or st.get("reason", ""),
        }

    def list_nodes(self) -> list[dict[str, Any]]:
        out = []
        now = time.monotonic()
        for node_id in sorted(self.nodes):
            known = self.nodes[node_id]
            session = known.session
            if known.lost:
                state = "lost"
            elif session is not None:
                state = "ready"
            else:
                state = "disconnected"
            out.append({
                **known.info,
                "state": state,
                "capacities_used": self.placer.used(node_id),
                "last_heartbeat_age": round(session.silent_for(now), 3) if session else None,
                "connected_at": session.connected_at if session else None,
                "heartbeat": heartbeat_info(session.last_heartbeat) if session else None,
            })
        return out

def _job_id(dep: str, replica: int) -> str:
    return f"{dep}-{replica}"


def _requests(dep: DeploymentRow) -> dict[str, float]:
    return {k: float(v) for k, v in (dep.spec.get("capacity_requests") or {}).items()}


def _update(job: JobRow, *, status: str) -> pb.ConductorToNode:
    return pb.ConductorToNode(
        deployment_update=pb.DeploymentUpdate(
            deployment_id=job.deployment_id, job_id=job.job_id, epoch=job.epoch, status=status
        )
    )


def _summary(desired: str, jobs: list[dict[str, Any]]) -> str:
    states = [j["state"] for j in jobs]
    if desired == "stopped":
        return "stopped"
    if states and all(s in RUNNING_STATES for s in states):
        return "running"
    for s in ("crash-loop", "failed", "pending", "backoff", "exited", "starting", "assigned"):
        if s in states:
            return s
    if states and all(s == "completed" for s in states):
        return "completed"
    return states[0] if states else "pending"
