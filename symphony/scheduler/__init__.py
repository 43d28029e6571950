"""Placement of work on nodes by virtual capacity, within node groups. Pure: no I/O.

Shaped like Nomad's ``scheduler/``: feasibility (:mod:`.feasibility`) → score
(:mod:`.scores`, binpack or spread: a swapped function) → select (:mod:`.index`,
which also keeps nodes indexed by group and free capacity so one placement looks
at a handful of nodes, not all of them).

Long-lived use (the conductor)::

    state = ClusterState(nodes, strategy="binpack", seed=0)
    result = state.place(requests)          # reserves at once; never moves earlier work
    for p in result.placements: ...        # Placement(request, node)
    for u in result.unschedulable: ...      # Unschedulable(request, reason)
    state.add_node(node); state.update_node(node); state.remove_node(node_id)  # -> lost placements
    state.set_schedulable(node_id, False);  state.release(placement)
    state.record(placement)                 # re-learn a placement after a restart

Batch use: ``schedule(nodes, requests, strategy=...)``. Workloads become requests
with :func:`manifest_requests` (an Experiment is one all-or-nothing gang; a
Deployment's replicas ``name-0``, ``name-1``… are placed one by one).
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
