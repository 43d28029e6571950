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


@dataclass(frozen=True)
class Decision:
    node_id: str | None
    reason: str = ""


class Placer:
    """Wraps :mod:`symphony.scheduler` (wired in :func:`_make_state`)."""

    def __init__(self, *, strategy: str = "binpack") -> None:
        self.strategy = strategy
        self.nodes: dict[str, tuple[tuple[str, ...], dict[str, float], bool]] = {}
        self.held: dict[str, tuple[str, dict[str, float]]] = {}  # job -> (node, requests)
        self._used: dict[str, dict[str, float]] = {}  # node -> class -> sum of held requests

    # ---- the picture ----
    def upsert_node(
        self, node_id: str, *, groups: tuple[str, ...], capacities: Mapping[str, float], schedulable: bool
    ) -> None:
        self.nodes[node_id] = (tuple(groups), dict(capacities), schedulable)

    def set_schedulable(self, node_id: str, schedulable: bool) -> None:
        if node_id in self.nodes:
            groups, caps, _ = self.nodes[node_id]
            self.nodes[node_id] = (groups, caps, schedulable)

    def remove_node(self, node_id: str) -> list[str]:
        """Forget a node and release everything it held; return the released job ids."""
        self.nodes.pop(node_id, None)
        released = [job for job, (node, _) in self.held.items() if node == node_id]
        for job in released:
            del self.held[job]
        self._used.pop(node_id, None)
        return released

    def reserve(self, job_id: str, node_id: str, requests: Mapping[str, float]) -> None:
        self.release(job_id)
        self.held[job_id] = (node_id, dict(requests))
        used = self._used.setdefault(node_id, {})
        for cls, value in requests.items():
            used[cls] = used.get(cls, 0.0) + value

    def release(self, job_id: str) -> None:
        held = self.held.pop(job_id, None)
        if held is None:
            return
        node_id, requests = held
        used = self._used.get(node_id, {})
        for cls, value in requests.items():
            used[cls] = max(0.0, used.get(cls, 0.0) - value)

    def used(self, node_id: str) -> dict[str, float]:
        return dict(self._used.get(node_id, {}))

    def fits(self, node_id: str, requests: Mapping[str, float], *, node_group: str | None) -> bool:
        if node_id not in self.nodes:
            return False
        groups, caps, _ = self.nodes[node_id]
        if node_group is not None and node_group not in groups:
            return False
        used = self.used(node_id)
        return all(caps.get(c, 0.0) - used.get(c, 0.0) + 1e-9 >= v for c, v in requests.items() if v > 0)

    # ---- deciding ----
    def place(
        self, job_id: str, workload: str, requests: Mapping[str, float], *, node_group: str | None
    ) -> Decision:
        """Choose a node for one replica and reserve its capacity there."""
        from symphony.scheduler import ClusterState, Node, Request

        nodes = [
            Node(node_id=nid, groups=groups, capacities_total=caps,
                 capacities_used=self.used(nid), schedulable=ok)
            for nid, (groups, caps, ok) in self.nodes.items()
        ]
        state = ClusterState(nodes, strategy=self.strategy)
        result = state.place([Request(workload=workload, process=job_id,
                                      capacity_requests=dict(requests), node_group=node_group)])
        if result.placements:
            node_id = result.placements[0].node
            self.reserve(job_id, node_id, requests)
            return Decision(node_id)
        return Decision(None, result.unschedulable[0].reason if result.unschedulable else "unschedulable")
