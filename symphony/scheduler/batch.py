"""The batch form: nodes and requests in, a placement result out. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from symphony.scheduler.objects import Node, PlacementResult, Request, Strategy
from symphony.scheduler.state import DEFAULT_CANDIDATES, ClusterState


def schedule(
    nodes: Iterable[Node],
    requests: Iterable[Request],
    *,
    strategy: Strategy | str = Strategy.BINPACK,
    seed: int = 0,
    candidates: int | None = None,
) -> PlacementResult:
    """Place ``requests`` on fresh ``nodes`` in one pass (see :meth:`ClusterState.place`).

    ``candidates`` (how many feasible nodes best fit compares) defaults to 4, except
    when packing onto identical idle nodes: there best fit has no sizes to choose
    between, and plain first fit over decreasing requests (FFD) is what keeps the
    node count lowest, so one candidate is taken.
    """
    nodes = list(nodes)
    if candidates is None:
        packing = Strategy.parse(strategy) is Strategy.BINPACK
        candidates = 1 if packing and identical_and_idle(nodes) else DEFAULT_CANDIDATES
    state = ClusterState(nodes, strategy=strategy, seed=seed, candidates=candidates)
    return state.place(requests)


def identical_and_idle(nodes: Sequence[Node]) -> bool:
    """Every node has the same groups and capacities and nothing in use."""
    if not nodes:
        return False
    first = nodes[0]
    shape = (tuple(sorted(first.groups)), tuple(sorted(first.capacities_total.items())))
    return all(
        not any(n.capacities_used.values())
        and n.schedulable
        and (tuple(sorted(n.groups)), tuple(sorted(n.capacities_total.items()))) == shape
        for n in nodes
    )
