"""Tables for the pure stages: feasibility, score functions, reasons, and the objects' checks."""

from __future__ import annotations

import re

import pytest

from symphony.scheduler import Node, Request, Strategy, binpack, fits, in_group, spread
from symphony.scheduler.feasibility import shortfall
from symphony.scheduler.index import Slot

TOTAL = {"A": 100.0, "B": 200.0}


def free_after(used: dict[str, float], request: dict[str, float]) -> list[float]:
    slot = Slot(Node("n", ("g",), TOTAL, used), idx=0)
    return slot.utilisation_after(tuple(sorted(request.items())))


@pytest.mark.parametrize(
    ("case", "free", "asked", "expected"),
    [
        ("perfect fit", {"A": 10, "B": 20}, {"A": 10, "B": 20}, True),
        ("overloaded", {"A": 10, "B": 200}, {"A": 11}, False),
        ("overloaded in one class of two", {"A": 50, "B": 5}, {"A": 10, "B": 6}, False),
        ("half full", {"A": 50, "B": 100}, {"A": 25, "B": 50}, True),
        ("missing class", {"A": 100}, {"C": 1}, False),
        ("empty request", {"A": 0}, {}, True),
        ("float sums within slack", {"A": 0.1 + 0.2}, {"A": 0.3}, True),
        ("over-committed node", {"A": -5}, {"A": 1}, False),
    ],
)
def test_feasibility(
    case: str, free: dict[str, float], asked: dict[str, float], expected: bool
) -> None:
    assert fits(free, asked.items()) is expected, case
    assert (shortfall(free, asked.items()) == {}) is expected


@pytest.mark.parametrize(
    ("groups", "wanted", "expected"),
    [
        (("g1",), None, True),
        (("g1",), "g1", True),
        (("g1", "g2"), "g2", True),
        (("g1",), "g2", False),  # wrong group
        ((), "g1", False),
    ],
)
def test_group_feasibility(groups: tuple[str, ...], wanted: str | None, expected: bool) -> None:
    assert in_group(groups, wanted) is expected


@pytest.mark.parametrize(
    ("case", "used", "asked", "expected"),
    [
        ("perfect fit", {"A": 90, "B": 180}, {"A": 10, "B": 20}, [0.0, 0.0]),
        ("half full", {"A": 25, "B": 50}, {"A": 25, "B": 50}, [0.5, 0.5]),
        ("empty node", {}, {"A": 10}, [0.9]),
        ("no request: the node's own state", {"A": 50}, {}, [0.5, 1.0]),
    ],
)
def test_free_fraction_after(
    case: str, used: dict[str, float], asked: dict[str, float], expected: list[float]
) -> None:
    assert free_after(used, asked) == pytest.approx(expected), case


# Each row: the node states that binpack must rank best → worst (spread: the reverse).
RANKINGS = [
    ("perfect fit beats half full beats empty", [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]),
    ("full in every class beats full in one", [[0.3, 0.3], [0.0, 0.9]]),
    ("one class", [[0.1], [0.2], [0.9]]),
]


@pytest.mark.parametrize(("case", "ordered"), RANKINGS)
def test_binpack_prefers_fuller_and_spread_emptier(case: str, ordered: list[list[float]]) -> None:
    binpack_scores = [binpack(f) for f in ordered]
    assert binpack_scores == sorted(binpack_scores, reverse=True), case
    assert len(set(binpack_scores)) == len(binpack_scores)
    spread_scores = [spread(f) for f in ordered]
    assert spread_scores == sorted(spread_scores), case


def test_perfect_fit_has_the_highest_binpack_score() -> None:
    assert binpack([0.0, 0.0]) == -2.0
    assert binpack([0.0, 0.0]) > binpack([0.01, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"node_id": ""}, "node_id must be a non-empty string"),
        (
            {"node_id": "n", "capacities_total": {"A": -1}},
            "capacities_total.A: must be a finite number ≥ 0",
        ),
        ({"node_id": "n", "capacities_used": {"A": float("nan")}}, "capacities_used.A"),
        ({"node_id": "n", "capacities_total": {"A": "ten"}}, "must be a number"),
        ({"node_id": "n", "groups": ("",)}, "groups must be non-empty strings"),
    ],
)
def test_bad_nodes_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Node(**kwargs)  # type: ignore[arg-type]


def test_request_drops_zero_classes_sorts_them_and_checks_the_strategy() -> None:
    r = Request("w", "p", {"B": 2, "A": 1, "C": 0}, strategy="spread")  # type: ignore[arg-type]
    assert list(r.capacity_requests) == ["A", "B"]
    assert r.strategy is Strategy.SPREAD
    with pytest.raises(ValueError, match="unknown strategy 'tight'"):
        Request("w", "p", strategy="tight")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"capacity_requests\.A"):
        Request("w", "p", {"A": -3})


def test_strategy_parse_names_the_choices() -> None:
    assert Strategy.parse("binpack") is Strategy.BINPACK
    with pytest.raises(ValueError, match=r"choose from binpack, spread"):
        Strategy.parse("random")


def test_the_public_api_is_what_all_says() -> None:
    import inspect

    import symphony.scheduler as scheduler

    public = {
        name
        for name, value in vars(scheduler).items()
        if name[0].isalpha() and not inspect.ismodule(value) and name != "annotations"
    }
    assert sorted(scheduler.__all__) == sorted(public)
