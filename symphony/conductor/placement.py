"""The one place where the conductor talks to the scheduler package.

The conductor keeps a long-lived picture of its nodes here: which are schedulable
(connected), their groups and capacities, and which job holds what on which node.
``place`` asks the scheduler for one replica at a time; ``reserve`` records a
placement the conductor already knows (restored from the store or adopted from a
node that reconnected) so capacity stays accurate across restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from symphony.scheduler import ClusterState, Node, Placement, Request


@dataclass(frozen=True)
class Decision:
    node_id: str | None
    reason: str = ""


class Placer:
    """The conductor's long-lived :class:`symphony.scheduler.ClusterState`, keyed by job id.

    Requests are ``(workload=deployment id, process=job id)``.
    """

    def __init__(self, *, strategy: str = "binpack") -> None:
        self.state = ClusterState(strategy=strategy)
        self.held: dict[str, Placement] = {}  # job id -> its placement

    # ---- the picture ----
    def upsert_node(
        self, node_id: str, *, groups: tuple[str, ...], capacities: Mapping[str, float], schedulable: bool
    ) -> None:
        node = Node(node_id=node_id, groups=tuple(groups), capacities_total=dict(capacities), schedulable=schedulable)
        if self.known(node_id):
            self.state.update_node(node)
        else:
            self.state.add_node(node)

    def known(self, node_id: str) -> bool:
        try:
            self.state.node(node_id)
        except KeyError:
            return False
        return True

    def set_schedulable(self, node_id: str, schedulable: bool) -> None:
        if self.known(node_id):
            self.state.set_schedulable(node_id, schedulable)

    def remove_node(self, node_id: str) -> list[str]:
        """Forget a node and release everything it held; return the released job ids."""
        if not self.known(node_id):
            return []
        released = [p.process for p in self.state.remove_node(node_id)]
        for job in released:
            self.held.pop(job, None)
        return released

    def reserve(self, job_id: str, node_id: str, requests: Mapping[str, float], *, workload: str = "") -> None:
        """Record a placement made earlier (restored or adopted), whether it fits or not."""
        self.release(job_id)
        placement = Placement(Request(workload=workload or job_id, process=job_id,
                                      capacity_requests=dict(requests)), node_id)
        self.state.record(placement)
        self.held[job_id] = placement

    def release(self, job_id: str) -> None:
        placement = self.held.pop(job_id, None)
        if placement is not None:
            self.state.release(placement)

    def used(self, node_id: str) -> dict[str, float]:
        return self.state.used(node_id) if self.known(node_id) else {}

    def never_fits(self, requests: Mapping[str, float], *, node_group: str | None, workload: str) -> str | None:
        """Why no known node could hold one replica even idle and connected, in the
        scheduler's words; ``None`` when one could, or when no node is known yet (right
        after a first start the nodes may still be connecting)."""
        nodes = [Node(n.node_id, n.groups, n.capacities_total) for n in self.state.nodes]
        if not nodes:
            return None
        probe = Request(workload=workload, process=workload, capacity_requests=dict(requests),
                        node_group=node_group)
        result = ClusterState(nodes).place([probe])
        return result.unschedulable[0].reason if result.unschedulable else None

    def fits(self, node_id: str, requests: Mapping[str, float], *, node_group: str | None) -> bool:
        if not self.known(node_id):
            return False
        node = self.state.node(node_id)
        if node_group is not None and node_group not in node.groups:
            return False
        free = self.state.free(node_id)
        return all(free.get(c, 0.0) + 1e-9 >= v for c, v in requests.items() if v > 0)

    # ---- deciding ----
    def place(
        self, job_id: str, workload: str, requests: Mapping[str, float], *, node_group: str | None
    ) -> Decision:
        """Choose a node for one replica and reserve its capacity there."""
        self.release(job_id)
        request = Request(workload=workload, process=job_id, capacity_requests=dict(requests), node_group=node_group)
        result = self.state.place([request])
        if result.placements:
            placement = result.placements[0]
            self.held[job_id] = placement
            return Decision(placement.node)
        return Decision(None, result.unschedulable[0].reason if result.unschedulable else "unschedulable")

    def place_gang(self, gang: str, jobs: Mapping[str, tuple[Mapping[str, float], str | None]]) -> dict[str, Decision]:
        """Place ``jobs`` (job id -> (requests, node group)) all together or none of them.

        Used for an experiment's processes (workload = job id, as :meth:`reserve` records them).
        On failure nothing stays reserved and every decision carries the scheduler's reason.
        """
        for job_id in jobs:
            self.release(job_id)
        requests = [Request(workload=job_id, process=job_id, capacity_requests=dict(reqs), node_group=group, gang=gang)
                    for job_id, (reqs, group) in jobs.items()]
        result = self.state.place(requests)
        if result.unschedulable:
            for placement in result.placements:
                self.state.release(placement)
            why = {u.process: u.reason for u in result.unschedulable}
            return {job_id: Decision(None, why.get(job_id, "unschedulable")) for job_id in jobs}
        for placement in result.placements:
            self.held[placement.process] = placement
        return {p.process: Decision(p.node) for p in result.placements}
