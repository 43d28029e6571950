"""The batch form: nodes and requests in, a placement result out. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from symphony.scheduler.objects import Node, PlacementResult, Request, Strategy
from symphony.scheduler.state import DEFAULT_CANDIDATES, ClusterState


def schedule(
    nodes: Iterable[Node],
    requests: Iterable[Request],
    *,
    strategy: Strategy | str = Strategy.BINPACK,
    seed: int = 0,
    candidates: int = DEFAULT_CANDIDATES,
) -> PlacementResult:
    """Place ``requests`` on fresh ``nodes`` in one pass (see :meth:`ClusterState.place`)."""
    state = ClusterState(nodes, strategy=strategy, seed=seed, candidates=candidates)
    return state.place(requests)
