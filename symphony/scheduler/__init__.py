"""Placement of work on nodes by virtual capacity, within node groups. Pure: no I/O.

Shaped like Nomad's ``scheduler/``: feasibility (:mod:`.feasibility`) → score
(:mod:`.scores`: binpack or spread, a swapped function) → select (:mod:`.index`,
which keeps each group's nodes in a segment tree of free capacity, so one
placement visits a handful of nodes, not all of them).

Long-lived use (the conductor)::

    state = ClusterState(nodes, strategy="binpack", seed=0)
    result = state.place(requests)        # reserved at once; earlier work never moves
    result.placements                     # (Placement(request, node), ...) in request order
    result.unschedulable                  # (Unschedulable(request, reason), ...)
    state.add_node(node)                  # joined
    state.update_node(node)               # re-registered: groups/totals/outside use changed
    lost = state.remove_node(node_id)     # left: its placements, to place again
    state.set_schedulable(node_id, False) # cordon (keeps its work)
    state.release(placement)              # the work ended; release_workload(name) for all
    state.record(placement)               # re-learn a placement after a restart
    state.free(node_id), state.used(node_id), state.placements_on(node_id), state.nodes_used

Batch use: ``schedule(nodes, requests, strategy=...)``. Workloads become requests
with :func:`manifest_requests` (an Experiment is one all-or-nothing gang; a
Deployment's replicas ``name-0``, ``name-1``… are placed one by one).

Binpack takes the first few feasible nodes in a stable (seeded) node order and
keeps the one left fullest (Nomad's BestFit score); spread takes the freest
feasible nodes and keeps the least allocated. A request of no capacity fits any
node of its group.
"""

from symphony.scheduler.batch import schedule
from symphony.scheduler.feasibility import fits, in_group
from symphony.scheduler.objects import (
    Node,
    Placement,
    PlacementResult,
    Request,
    Strategy,
    Unschedulable,
)
from symphony.scheduler.scores import SCORES, binpack, spread
from symphony.scheduler.state import ClusterState
from symphony.scheduler.workloads import (
    deployment_requests,
    experiment_requests,
    manifest_requests,
)

__all__ = [
    "SCORES",
    "ClusterState",
    "Node",
    "Placement",
    "PlacementResult",
    "Request",
    "Strategy",
    "Unschedulable",
    "binpack",
    "deployment_requests",
    "experiment_requests",
    "fits",
    "in_group",
    "manifest_requests",
    "schedule",
    "spread",
]
