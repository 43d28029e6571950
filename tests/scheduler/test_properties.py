"""Hypothesis properties of the scheduler, checked against brute force over plain data."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.scheduler import (
    ClusterState,
    Node,
    Placement,
    PlacementResult,
    Request,
    Strategy,
    fits,
    in_group,
    schedule,
)

CLASSES = ("A", "B", "C")
GROUPS = ("g1", "g2", "g3")
SLACK = 1e-6

capacities = st.dictionaries(st.sampled_from(CLASSES), st.integers(0, 20), max_size=3)
asks = st.dictionaries(st.sampled_from(CLASSES), st.integers(0, 12), max_size=3)


@st.composite
def node_lists(draw: st.DrawFn) -> list[Node]:
    count = draw(st.integers(0, 10))
    nodes = []
    for i in range(count):
        total = draw(capacities)
        used = {c: draw(st.integers(0, int(v))) for c, v in total.items() if draw(st.booleans())}
        groups = tuple(draw(st.lists(st.sampled_from(GROUPS), max_size=2)))
        nodes.append(Node(f"n{i}", groups, total, used, schedulable=draw(st.integers(0, 5)) > 0))
    return nodes


@st.composite
def request_lists(draw: st.DrawFn, prefix: str = "") -> list[Request]:
    requests = []
    for w in range(draw(st.integers(0, 5))):
        gang = draw(st.booleans())
        group = draw(st.sampled_from((None, *GROUPS, "g-missing")))
        for p in range(draw(st.integers(1, 5))):
            requests.append(
                Request(
                    f"{prefix}w{w}",
                    f"p{p}",
                    draw(asks),
                    draw(st.sampled_from((group, None))) if gang else group,
                    gang=f"{prefix}w{w}" if gang else None,
                    priority=draw(st.integers(0, 2)),
                    strategy=draw(st.sampled_from((None, Strategy.BINPACK, Strategy.SPREAD))),
                )
            )
    return requests


def free_by_brute_force(state: ClusterState) -> dict[str, dict[str, float]]:
    """Free capacity recomputed from the nodes and the placements alone."""
    free = {
        n.node_id: {c: t - n.capacities_used.get(c, 0.0) for c, t in n.capacities_total.items()}
        for n in state.nodes
    }
    for p in state.placements:
        for c, v in p.request.capacity_requests.items():
            if c in free[p.node]:
                free[p.node][c] -= v
    return free


def check_result(
    nodes: list[Node], requests: list[Request], result: PlacementResult, state: ClusterState
) -> None:
    by_id = {n.node_id: n for n in nodes}
    placed = {p.key: p for p in result.placements}
    failed = {u.request.key: u for u in result.unschedulable}
    # every request either placed or reported with a reason, exactly once, in request order
    assert placed.keys().isdisjoint(failed)
    assert [r.key for r in requests] == [
        r.key for r in requests if r.key in placed or r.key in failed
    ]
    assert len(placed) + len(failed) == len(requests)
    assert all(u.reason for u in failed.values())
    # groups honoured; schedulable nodes only
    for p in result.placements:
        assert in_group(by_id[p.node].groups, p.request.node_group)
        assert by_id[p.node].schedulable
    # no node over capacity in any class
    use: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for p in result.placements:
        for c, v in p.request.capacity_requests.items():
            use[p.node][c] += v
    for node_id, classes in use.items():
        n = by_id[node_id]
        for c, v in classes.items():
            assert v + n.capacities_used.get(c, 0.0) <= n.capacities_total.get(c, 0.0) + SLACK
    # gangs all or nothing
    gangs: dict[str, set[bool]] = defaultdict(set)
    for r in requests:
        if r.gang is not None:
            gangs[r.gang].add(r.key in placed)
    assert all(len(outcomes) == 1 for outcomes in gangs.values())
    # nothing missed: a lone request reported unschedulable fits no node, even at the end
    free = free_by_brute_force(state)
    for u in result.unschedulable:
        if u.request.gang is None:
            assert not any(
                n.schedulable
                and in_group(n.groups, u.request.node_group)
                and fits(free[n.node_id], u.request.capacity_requests.items())
                for n in nodes
            ), u


@settings(max_examples=300, deadline=None)
@given(node_lists(), request_lists(), st.sampled_from(list(Strategy)))
def test_one_pass_is_sound_complete_and_all_or_nothing(
    nodes: list[Node], requests: list[Request], strategy: Strategy
) -> None:
    state = ClusterState(nodes, strategy=strategy)
    result = state.place(requests)
    check_result(nodes, requests, result, state)
    assert free_by_brute_force(state) == {n.node_id: state.free(n.node_id) for n in nodes}


@settings(max_examples=150, deadline=None)
@given(node_lists(), request_lists(), st.integers(0, 3), st.randoms(use_true_random=False))
def test_deterministic_whatever_the_node_order(
    nodes: list[Node], requests: list[Request], seed: int, rnd: random.Random
) -> None:
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    assert schedule(nodes, requests, seed=seed) == schedule(nodes, requests, seed=seed)
    assert schedule(nodes, requests, seed=seed) == schedule(shuffled, requests, seed=seed)


Op = tuple[str, int]


@settings(max_examples=150, deadline=None)
@given(
    node_lists(),
    st.lists(
        st.tuples(
            st.sampled_from(["place", "add", "remove", "release", "cordon", "uncordon"]),
            st.integers(0, 50),
        ),
        max_size=12,
    ),
    st.data(),
)
def test_incremental_use_never_moves_placed_work(
    nodes: list[Node], ops: list[Op], data: st.DataObject
) -> None:
    state = ClusterState(nodes)
    known: dict[tuple[str, str], Placement] = {}
    joined = len(nodes)
    for step, (op, k) in enumerate(ops):
        current = state.nodes
        if op == "place":
            requests = data.draw(request_lists(prefix=f"s{step}"))
            result = state.place(requests, strategy=Strategy.SPREAD if k % 2 else None)
            check_result(list(current), requests, result, state)
            known.update((p.key, p) for p in result.placements)
            # asking again for work already placed returns it where it is
            again = [p.request for p in list(known.values())[: k % 4]]
            assert state.place(again).placements == tuple(known[r.key] for r in again)
        elif op == "add":
            state.add_node(Node(f"j{joined}", (GROUPS[k % 3],), {"A": k % 13, "B": k % 7}))
            joined += 1
        elif op == "remove" and current:
            lost = state.remove_node(current[k % len(current)].node_id)
            for p in lost:
                del known[p.key]
        elif op == "release" and known:
            victim = list(known.values())[k % len(known)]
            assert state.release(victim)
            del known[victim.key]
        elif op in ("cordon", "uncordon") and current:
            state.set_schedulable(current[k % len(current)].node_id, op == "uncordon")
        # placed work stays exactly where it was put
        assert {p.key: p.node for p in state.placements} == {
            key: p.node for key, p in known.items()
        }
        assert free_by_brute_force(state) == {n.node_id: state.free(n.node_id) for n in state.nodes}
