"""ClusterState and schedule(): placement, gangs, reasons, strategies, incremental use."""

from __future__ import annotations

import pytest

from symphony.scheduler import (
    ClusterState,
    Node,
    Placement,
    Request,
    Strategy,
    schedule,
)


def node(node_id: str, group: str = "g1", **caps: float) -> Node:
    return Node(node_id, (group,), caps or {"A": 100})


def req(
    workload: str, process: str, group: str | None = "g1", gang: str | None = None, **caps: float
) -> Request:
    return Request(workload, process, caps, group, gang=gang)


def where(result_placements: tuple[Placement, ...]) -> dict[str, str]:
    return {p.process: p.node for p in result_placements}


# --------------------------------------------------------------- placement


def test_binpack_fills_one_node_before_the_next_and_spread_balances() -> None:
    nodes = [node(f"n{i}", A=100) for i in range(4)]
    requests = [req("d", f"d-{i}", A=25) for i in range(4)]
    packed = schedule(nodes, requests, strategy="binpack")
    assert len(set(where(packed.placements).values())) == 1
    spread = schedule(nodes, requests, strategy="spread")
    assert len(set(where(spread.placements).values())) == 4


def test_binpack_picks_the_tightest_fitting_node() -> None:
    nodes = [
        Node("roomy", ("g1",), {"A": 100}),
        Node("snug", ("g1",), {"A": 100}, {"A": 70}),
        Node("too-small", ("g1",), {"A": 100}, {"A": 95}),
    ]
    state = ClusterState(nodes, candidates=8)
    result = state.place([req("w", "p", A=30)])
    assert where(result.placements) == {"p": "snug"}
    assert state.free("snug") == {"A": 0.0}


def test_spread_picks_the_least_allocated_node() -> None:
    nodes = [
        Node("busy", ("g1",), {"A": 100}, {"A": 50}),
        Node("idle", ("g1",), {"A": 100}),
        Node("half", ("g1",), {"A": 200}, {"A": 100}),
    ]
    result = schedule(nodes, [req("w", "p", A=10)], strategy=Strategy.SPREAD)
    assert where(result.placements) == {"p": "idle"}


def test_a_request_strategy_overrides_the_cluster_strategy() -> None:
    nodes = [node("a", A=100), node("b", A=100), Node("c", ("g1",), {"A": 100}, {"A": 50})]
    requests = [
        Request("w", "packed", {"A": 10}, "g1"),
        Request("w", "spread", {"A": 10}, "g1", strategy=Strategy.SPREAD),
    ]
    placed = where(schedule(nodes, requests, strategy="binpack").placements)
    assert placed["packed"] == "c"
    assert placed["spread"] in {"a", "b"}


def test_placements_reserve_capacity_within_one_pass() -> None:
    """The seed's bug: several jobs on a node that had room for one."""
    result = schedule([node("only", A=10)], [req("d", f"d-{i}", A=10) for i in range(3)])
    assert where(result.placements) == {"d-0": "only"}
    assert [u.process for u in result.unschedulable] == ["d-1", "d-2"]


def test_groups_are_honoured_and_no_group_means_any_node() -> None:
    nodes = [node("gpu-1", "gpu", A=10), node("cpu-1", "cpu", A=100)]
    result = schedule(
        nodes, [req("w", "g", "gpu", A=5), req("w", "c", "cpu", A=5), req("w", "any", None, A=50)]
    )
    assert where(result.placements) == {"g": "gpu-1", "c": "cpu-1", "any": "cpu-1"}


def test_a_node_in_several_groups_serves_each_and_reserves_once() -> None:
    both = Node("both", ("g1", "g2"), {"A": 10})
    result = schedule([both], [req("w", "x", "g1", A=6), req("w", "y", "g2", A=6)])
    assert where(result.placements) == {"x": "both"}
    assert result.unschedulable[0].reason == "needs A=6; the most free A on any node of 'g2' is 4"


def test_requests_without_capacity_fit_any_node_of_their_group() -> None:
    result = schedule([node("n1", "g1", A=1), node("n2", "g2", A=1)], [req("w", "p", "g2")])
    assert where(result.placements) == {"p": "n2"}


def test_larger_requests_are_placed_first_for_a_tighter_packing() -> None:
    # In the given order first fit would split 3 + 3 over both nodes and leave no room for 7.
    nodes = [node("a", A=10), node("b", A=10)]
    requests = [
        req("w", "small-1", A=3),
        req("w", "small-2", A=3),
        req("w", "big", A=7),
        req("w", "big-2", A=7),
    ]
    result = schedule(nodes, requests)
    assert not result.unschedulable
    assert [p.process for p in result.placements] == [
        "small-1",
        "small-2",
        "big",
        "big-2",
    ]  # request order


def test_higher_priority_is_placed_first() -> None:
    requests = [
        Request("w", "low", {"A": 10}, "g1", priority=0),
        Request("w", "high", {"A": 5}, "g1", priority=9),
    ]
    result = schedule([node("n", A=10)], requests)
    assert where(result.placements) == {"high": "n"}


def test_deployment_replicas_are_placed_in_replica_order_as_capacity_allows() -> None:
    requests = [req("d", f"d-{i}", A=10) for i in range(12)]
    result = schedule([node("n", A=55)], requests)
    assert [p.process for p in result.placements] == [f"d-{i}" for i in range(5)]
    assert [u.process for u in result.unschedulable] == [f"d-{i}" for i in range(5, 12)]


# -------------------------------------------------------------------- gangs


def test_a_gang_is_placed_whole() -> None:
    nodes = [node("a", A=10), node("b", A=10)]
    gang = [req("rl", "learner", gang="rl", A=8), req("rl", "agent-0", gang="rl", A=8)]
    result = schedule(nodes, gang)
    assert sorted(where(result.placements).values()) == ["a", "b"]


def test_a_gang_that_does_not_fit_is_not_placed_at_all_and_frees_what_it_tried() -> None:
    nodes = [node("a", A=10), node("b", A=10)]
    gang = [req("rl", "learner", gang="rl", A=8)] + [
        req("rl", f"agent-{i}", gang="rl", A=5) for i in range(3)
    ]
    later = req("other", "o", A=10)
    state = ClusterState(nodes)
    result = state.place([*gang, later])
    assert {u.workload for u in result.unschedulable} == {"rl"}
    assert len(result.unschedulable) == 4
    reasons = {u.process: u.reason for u in result.unschedulable}
    assert (
        reasons["agent-2"]
        == "gang 'rl' needs 4 places, 3 fit: needs A=5; the most free A on any node of 'g1' is 2"
    )
    assert reasons["learner"] == "gang 'rl' needs 4 places, 3 fit (agent-2 does not)"
    assert [p.workload for p in result.placements] == ["other"]
    assert state.free("a")["A"] + state.free("b")["A"] == 10  # only `other` holds capacity


def test_a_gang_of_one_reports_its_own_reason() -> None:
    result = schedule([node("a", A=1)], [req("solo", "p", gang="solo", A=5)])
    assert result.unschedulable[0].reason.startswith("needs A=5; no node of 'g1' has that much A")


# ------------------------------------------------------------------ reasons


@pytest.mark.parametrize(
    ("nodes", "request_", "reason"),
    [
        ([node("a", "g1")], req("w", "p", "g2", A=1), "no node in group 'g2'"),
        (
            [Node("a", ("g2",), {"A": 1}, schedulable=False)],
            req("w", "p", "g2", A=1),
            "no schedulable node in group 'g2' (all 1 are unschedulable)",
        ),
        ([], req("w", "p", None, A=1), "no nodes"),
        (
            [node("a", "g2", A=10)],
            req("w", "p", "g2", B=1),
            "class 'B' is declared by no node of 'g2'",
        ),
        (
            [node("a", "g1", A=20)],
            req("w", "p", "g1", A=30),
            "needs A=30; no node of 'g1' has that much A even when idle (largest: 20)",
        ),
        (
            [Node("a", ("g1",), {"A": 50}, {"A": 30})],
            req("w", "p", "g1", A=30),
            "needs A=30; the most free A on any node of 'g1' is 20",
        ),
        (
            [
                Node("a", ("g1",), {"A": 50, "B": 50}, {"B": 45}),
                Node("b", ("g1",), {"A": 50, "B": 50}, {"A": 45}),
            ],
            req("w", "p", "g1", A=10, B=10),
            "needs A=10, B=10 on one node; no node of 'g1' has all of it free (most free: A=50 on a, B=50 on b)",
        ),
        (
            [node("a", "g1", A=1)],
            req("w", "p", None, A=2.5),
            "needs A=2.5; no node has that much A even when idle (largest: 1)",
        ),
    ],
)
def test_unschedulable_reasons_say_what_to_change(
    nodes: list[Node], request_: Request, reason: str
) -> None:
    result = schedule(nodes, [request_])
    assert [u.reason for u in result.unschedulable] == [reason]


def test_a_repeated_shape_that_failed_is_reported_again_with_a_fresh_reason() -> None:
    state = ClusterState([node("a", A=10)])
    first = state.place([req("d", f"d-{i}", A=6) for i in range(3)])
    assert [u.reason for u in first.unschedulable] == [
        "needs A=6; the most free A on any node of 'g1' is 4"
    ] * 2
    state.release(first.placements[0])  # freeing capacity forgets the failure
    again = state.place([req("d", "d-1", A=6)])
    assert where(again.placements) == {"d-1": "a"}


# ----------------------------------------------------------- incremental use


def test_work_already_placed_is_never_moved() -> None:
    state = ClusterState([node("a", A=100)])
    first = state.place([req("w", "p", A=10)])
    state.add_node(node("b", A=100))
    second = state.place([req("w", "p", A=10), req("w", "q", A=10)], strategy="spread")
    assert where(second.placements)["p"] == "a"
    assert second.placements[0] is first.placements[0]
    assert state.free("a") == {"A": 90.0}


def test_nodes_join_leave_and_are_cordoned() -> None:
    state = ClusterState([node("a", A=10)])
    assert state.place([req("w", "p1", A=10)]).complete
    assert not state.place([req("w", "p2", A=10)]).complete
    state.add_node(node("b", A=10))
    assert where(state.place([req("w", "p2", A=10)]).placements) == {"p2": "b"}
    lost = state.remove_node("a")
    assert [p.process for p in lost] == ["p1"]
    assert state.placement("w", "p1") is None
    state.add_node(node("c", A=10))
    state.set_schedulable("c", False)
    assert (
        state.place([req("w", "p1", A=10)]).unschedulable[0].reason
        == "needs A=10; the most free A on any node of 'g1' is 0"
    )
    state.set_schedulable("c", True)
    assert where(state.place([req("w", "p1", A=10)]).placements) == {"p1": "c"}
    with pytest.raises(ValueError, match="already known"):
        state.add_node(node("c"))
    with pytest.raises(KeyError, match="unknown node 'zz'"):
        state.remove_node("zz")


def test_a_cordoned_node_keeps_its_work() -> None:
    state = ClusterState([node("a", A=10)])
    state.place([req("w", "p", A=4)])
    state.mark_unschedulable("a")
    assert [p.process for p in state.placements_on("a")] == ["p"]
    assert state.used("a") == {"A": 4.0}


def test_release_frees_capacity_once() -> None:
    state = ClusterState([node("a", A=10)])
    [placement] = state.place([req("w", "p", A=10)]).placements
    assert state.release(placement) is True
    assert state.release(placement) is False
    assert state.free("a") == {"A": 10.0}
    assert state.nodes_used == 0


def test_release_workload_frees_all_its_replicas() -> None:
    state = ClusterState([node("a", A=10)])
    state.place([req("d", f"d-{i}", A=2) for i in range(4)] + [req("e", "e-0", A=2)])
    assert [p.process for p in state.release_workload("d")] == ["d-0", "d-1", "d-2", "d-3"]
    assert state.free("a") == {"A": 8.0}
    assert [p.workload for p in state.placements] == ["e"]


def test_record_restores_placements_after_a_restart_even_over_capacity() -> None:
    state = ClusterState([node("a", A=10)])
    state.record(Placement(req("w", "p", A=8), "a"))
    state.record(Placement(req("w", "q", A=8), "a"))  # reality wins: over-committed
    assert state.free("a") == {"A": -6.0}
    assert not state.place([req("w", "r", A=1)]).complete
    with pytest.raises(ValueError, match="already placed"):
        state.record(Placement(req("w", "p", A=8), "a"))


def test_update_node_keeps_placements_and_applies_new_capacity() -> None:
    state = ClusterState([node("a", A=10)])
    state.place([req("w", "p", A=6)])
    state.update_node(Node("a", ("g1", "g2"), {"A": 20}, {"A": 4}))
    assert state.free("a") == {"A": 10.0}
    assert where(state.place([req("w", "q", "g2", A=10)]).placements) == {"q": "a"}


def test_the_same_request_twice_in_one_call_is_an_error() -> None:
    with pytest.raises(ValueError, match="w/p is given twice"):
        ClusterState([node("a")]).place([req("w", "p"), req("w", "p")])


# ------------------------------------------------------------- determinism


def test_output_does_not_depend_on_the_order_nodes_are_given_in() -> None:
    nodes = [node(f"n{i}", A=100) for i in range(20)]
    requests = [req("d", f"d-{i}", A=30) for i in range(30)]
    forward = schedule(nodes, requests)
    backward = schedule(list(reversed(nodes)), requests)
    assert forward == backward


def test_the_seed_changes_tie_breaks_between_equal_nodes_only() -> None:
    nodes = [node(f"n{i}", A=100) for i in range(50)]
    requests = [req("d", f"d-{i}", A=100) for i in range(3)]
    chosen = {tuple(where(schedule(nodes, requests, seed=s).placements).values()) for s in range(5)}
    assert len(chosen) > 1
    assert schedule(nodes, requests, seed=3) == schedule(nodes, requests, seed=3)


def test_indexes_grow_as_many_nodes_join() -> None:
    state = ClusterState([node("first", A=1)])
    assert state.place([req("w", "warm", A=1)]).complete  # builds the index for g1
    for i in range(100):
        state.add_node(node(f"n{i:03d}", A=5))
    result = state.place([req("d", f"d-{i}", A=5) for i in range(100)])
    assert result.complete
    assert len({p.node for p in result.placements}) == 100
