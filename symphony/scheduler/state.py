"""The long-lived cluster state: nodes, their free capacity, and what is placed where.

The conductor keeps one :class:`ClusterState`, tells it as nodes join, leave or
turn unschedulable and as work ends, and asks it to :meth:`~ClusterState.place` a
few requests at a time. A placement is reserved the moment it is made and is
never moved by a later call; only :meth:`~ClusterState.release` or the node
leaving frees it. Deterministic: the same calls give the same placements. The
initial nodes are laid out in the order of a seeded hash of their ids (so the
order they are given in does not matter, and the seed varies the tie-breaks
between equal nodes); a node that joins later takes the first free position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace

from symphony.scheduler import reasons
from symphony.scheduler.feasibility import EPS
from symphony.scheduler.index import GroupIndex, Items, Slot, select
from symphony.scheduler.objects import (
    Node,
    Placement,
    PlacementResult,
    Request,
    Strategy,
    Unschedulable,
)
from symphony.scheduler.scores import score_fn

RequestKey = tuple[str, str]

DEFAULT_CANDIDATES = 4
"""Feasible nodes scored per request (Nomad's limit iterator): enough to pick well, few to stay fast."""


def tie_break(seed: int, node_id: str) -> int:
    """A stable 64-bit rank for a node: the same across runs and machines for one seed."""
    digest = hashlib.blake2b(f"{seed}\0{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class ClusterState:
    """Nodes, free capacity and placements; place requests with :meth:`place`.

    Not thread-safe: the owner serialises calls (the conductor does, on its loop).
    """

    def __init__(
        self,
        nodes: Iterable[Node] = (),
        *,
        strategy: Strategy | str = Strategy.BINPACK,
        seed: int = 0,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> None:
        if candidates < 1:
            raise ValueError("candidates must be ≥ 1")
        self._strategy = Strategy.parse(strategy)
        self._seed = seed
        self._limit = candidates
        self._slots: dict[str, Slot] = {}
        self._groups: dict[str, dict[str, Slot]] = {}
        self._indexes: dict[str | None, GroupIndex] = {}  # built on first use
        self._placed: dict[RequestKey, Placement] = {}
        self._by_workload: dict[str, dict[RequestKey, Placement]] = {}
        self._largest: dict[str, float] | None = None  # per class, for sizing requests
        # (group, request) shapes known not to fit; valid until capacity is freed or added
        self._infeasible: set[tuple[str | None, Items]] = set()
        self._next_idx = 0
        # the initial nodes in seeded order, so that their order in the input does not matter
        for node in sorted(nodes, key=lambda n: (tie_break(seed, n.node_id), n.node_id)):
            self.add_node(node)

    # ----------------------------------------------------------------- nodes

    @property
    def strategy(self) -> Strategy:
        return self._strategy

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(s.node for s in self._slots.values())

    def node(self, node_id: str) -> Node:
        return self._slot(node_id).node

    def add_node(self, node: Node) -> None:
        """A node joined. Raises ``ValueError`` if its id is already known (see :meth:`update_node`)."""
        if node.node_id in self._slots:
            raise ValueError(f"node {node.node_id!r} is already known")
        slot = Slot(node, idx=self._next_idx)
        self._next_idx += 1
        self._slots[node.node_id] = slot
        for g in node.groups:
            self._groups.setdefault(g, {})[node.node_id] = slot
        self._largest = None
        self._infeasible.clear()
        if node.schedulable:
            self._index_slot(slot)

    def update_node(self, node: Node) -> None:
        """A known node re-registered (groups, totals, outside use, schedulable may change).

        Its placements stay; if it now has less than they take, it is over-committed
        (free goes negative) and receives nothing until work is released.
        """
        old = self._slot(node.node_id)
        self._unindex_slot(old)
        for g in old.node.groups:
            del self._groups[g][node.node_id]
        slot = Slot(node, idx=old.idx)
        for p in old.placements.values():
            for c, r in p.request.capacity_requests.items():
                if c in slot.free:
                    slot.free[c] -= r
        slot.placements = old.placements
        self._slots[node.node_id] = slot
        for g in node.groups:
            self._groups.setdefault(g, {})[node.node_id] = slot
        self._largest = None
        self._infeasible.clear()
        if node.schedulable:
            self._index_slot(slot)

    def remove_node(self, node_id: str) -> tuple[Placement, ...]:
        """A node left. Returns the placements it held (now gone) so they can be placed again."""
        slot = self._slot(node_id)
        del self._slots[node_id]
        self._unindex_slot(slot)
        for g in slot.node.groups:
            del self._groups[g][node_id]
        self._largest = None
        lost = tuple(slot.placements.values())
        for p in lost:
            self._forget(p)
        return lost

    def set_schedulable(self, node_id: str, schedulable: bool) -> None:
        """Cordon (``False``) or uncordon a node; what it runs stays where it is."""
        slot = self._slot(node_id)
        if slot.node.schedulable == schedulable:
            return
        slot.node = replace(slot.node, schedulable=schedulable)
        if schedulable:
            self._infeasible.clear()
            self._index_slot(slot)
        else:
            self._unindex_slot(slot)

    def mark_unschedulable(self, node_id: str) -> None:
        self.set_schedulable(node_id, False)

    def free(self, node_id: str) -> dict[str, float]:
        """Free capacity per declared class (negative when over-committed)."""
        return dict(self._slot(node_id).free)

    def used(self, node_id: str) -> dict[str, float]:
        """Capacity in use per declared class: outside use plus what is placed here."""
        slot = self._slot(node_id)
        return {c: t - slot.free.get(c, 0.0) for c, t in slot.total.items()}

    # ------------------------------------------------------------ placements

    @property
    def placements(self) -> tuple[Placement, ...]:
        return tuple(self._placed.values())

    def placement(self, workload: str, process: str) -> Placement | None:
        return self._placed.get((workload, process))

    def placements_on(self, node_id: str) -> tuple[Placement, ...]:
        return tuple(self._slot(node_id).placements.values())

    def placements_of(self, workload: str) -> tuple[Placement, ...]:
        return tuple(self._by_workload.get(workload, {}).values())

    @property
    def nodes_used(self) -> int:
        """Nodes holding at least one placement."""
        return sum(1 for s in self._slots.values() if s.placements)

    def record(self, placement: Placement) -> None:
        """Take note of a placement made earlier (e.g. read back after a restart), fits or not."""
        slot = self._slot(placement.node)
        if placement.key in self._placed:
            raise ValueError(f"{placement.workload}/{placement.process} is already placed")
        self._reserve(slot, tuple(placement.request.capacity_requests.items()), 1.0)
        self._remember(slot, placement)

    def release(self, placement: Placement) -> bool:
        """The work ended: free its capacity. ``False`` if it was not placed (or not there)."""
        held = self._placed.get(placement.key)
        if held is None or held.node != placement.node:
            return False
        slot = self._slots[held.node]
        self._reserve(slot, tuple(held.request.capacity_requests.items()), -1.0)
        self._forget(held)
        self._infeasible.clear()
        return True

    def release_workload(self, workload: str) -> tuple[Placement, ...]:
        """Release every placement of one experiment or deployment; returns them."""
        held = self.placements_of(workload)
        for p in held:
            self.release(p)
        return held

    def place(
        self, requests: Iterable[Request], *, strategy: Strategy | str | None = None
    ) -> PlacementResult:
        """Place what fits, reserving it at once; report the rest with a reason.

        Units (a gang, or a request without one) are placed by priority, then
        decreasing size, then the order given. A gang's members are placed
        together or not at all. A request already placed is returned where it is.
        Raises ``ValueError`` if two requests share ``(workload, process)``.
        """
        default = self._strategy if strategy is None else Strategy.parse(strategy)
        reqs = list(requests)
        keys = [r.key for r in reqs]
        if len(set(keys)) != len(keys):
            seen: set[RequestKey] = set()
            for workload, process in keys:
                if (workload, process) in seen:
                    raise ValueError(f"request {workload}/{process} is given twice")
                seen.add((workload, process))
        outcome: list[Placement | Unschedulable | None] = [None] * len(reqs)
        units: dict[object, list[int]] = {}  # a gang's members, or one request, by position
        placed_before = self._placed
        for i, r in enumerate(reqs):
            held = placed_before.get(keys[i])
            if held is not None:
                outcome[i] = held
            elif r.gang is None:
                units[i] = [i]
            else:
                units.setdefault(("gang", r.gang), []).append(i)
        size = self._sizer()
        order = sorted(
            units.values(),
            key=lambda unit: (
                -max(reqs[i].priority for i in unit),
                -sum(size(reqs[i]) for i in unit),
                unit[0],
            ),
        )
        for unit in order:
            if len(unit) == 1 and reqs[unit[0]].gang is None:
                outcome[unit[0]] = self._place_one(reqs[unit[0]], default)
            else:
                self._place_gang(unit, reqs, default, size, outcome)
        return PlacementResult(
            placements=tuple(o for o in outcome if isinstance(o, Placement)),
            unschedulable=tuple(o for o in outcome if isinstance(o, Unschedulable)),
        )

    # -------------------------------------------------------------- internals

    def _slot(self, node_id: str) -> Slot:
        try:
            return self._slots[node_id]
        except KeyError:
            raise KeyError(f"unknown node {node_id!r}") from None

    def _index(self, group: str | None) -> GroupIndex:
        ix = self._indexes.get(group)
        if ix is None:
            members = self._slots if group is None else self._groups.get(group, {})
            ix = GroupIndex(group, (s for s in members.values() if s.node.schedulable))
            self._indexes[group] = ix
        return ix

    def _index_slot(self, slot: Slot) -> None:
        for group in (None, *slot.node.groups):
            ix = self._indexes.get(group)
            if ix is not None:
                ix.add(slot)

    def _unindex_slot(self, slot: Slot) -> None:
        for ix in list(slot.indexes):
            ix.discard(slot)

    def _sizer(self) -> _Sizer:
        if self._largest is None:
            largest: dict[str, float] = {}
            for slot in self._slots.values():
                for c, t in slot.total.items():
                    largest[c] = max(largest.get(c, 0.0), t)
            self._largest = largest
        return _Sizer(self._largest)

    def _reserve(self, slot: Slot, items: Items, sign: float) -> None:
        free = slot.free
        changed = [c for c, _ in items if c in free]  # record() may name undeclared classes
        for c, r in items:
            if c in free:
                free[c] -= sign * r
        for ix in slot.indexes:
            ix.update(slot, changed)

    def _remember(self, slot: Slot, placement: Placement) -> None:
        slot.placements[placement.key] = placement
        self._placed[placement.key] = placement
        self._by_workload.setdefault(placement.workload, {})[placement.key] = placement

    def _forget(self, placement: Placement) -> None:
        slot = self._slots.get(placement.node)
        if slot is not None:
            slot.placements.pop(placement.key, None)
        del self._placed[placement.key]
        mine = self._by_workload[placement.workload]
        del mine[placement.key]
        if not mine:
            del self._by_workload[placement.workload]

    def _try(self, request: Request, strategy: Strategy) -> Placement | str:
        ix = self._index(request.node_group)
        items = tuple(request.capacity_requests.items())
        shape = (request.node_group, items)
        if shape in self._infeasible:  # the same ask failed and nothing was freed since
            return self._explain(request, ix, items)
        use = strategy if request.strategy is None else request.strategy
        slot = select(ix.candidates(items, use, self._limit), items, score_fn(use))
        if slot is None:
            self._infeasible.add(shape)
            return self._explain(request, ix, items)
        self._reserve(slot, items, 1.0)
        placement = Placement(request=request, node=slot.node.node_id)
        self._remember(slot, placement)
        return placement

    def _place_one(self, request: Request, strategy: Strategy) -> Placement | Unschedulable:
        got = self._try(request, strategy)
        return got if isinstance(got, Placement) else Unschedulable(request, got)

    def _place_gang(
        self,
        unit: Sequence[int],
        reqs: Sequence[Request],
        strategy: Strategy,
        size: _Sizer,
        outcome: list[Placement | Unschedulable | None],
    ) -> None:
        """All or nothing: try every member (to count what fits), then keep or roll back."""
        members = sorted(unit, key=lambda i: (-reqs[i].priority, -size(reqs[i]), i))
        tried = [(i, self._try(reqs[i], strategy)) for i in members]
        failures = [(i, why) for i, why in tried if isinstance(why, str)]
        if not failures:
            for i, got in tried:
                outcome[i] = got if isinstance(got, Placement) else None
            return
        for _, got in reversed(tried):
            if isinstance(got, Placement):
                self.release(got)
        if len(unit) == 1:
            i, why = failures[0]
            outcome[i] = Unschedulable(reqs[i], why)
            return
        gang = reqs[unit[0]].gang or ""
        summary = reasons.gang(gang, len(unit), len(unit) - len(failures))
        names = ", ".join(reqs[i].process for i, _ in failures)
        verb = "does" if len(failures) == 1 else "do"
        for i, got in tried:
            why = f"{summary}: {got}" if isinstance(got, str) else f"{summary} ({names} {verb} not)"
            outcome[i] = Unschedulable(reqs[i], why)

    def _explain(self, request: Request, ix: GroupIndex, items: Items) -> str:
        group = request.node_group
        if not len(ix):
            known = self._slots if group is None else self._groups.get(group, {})
            return reasons.no_nodes(group, total=len(known))
        tops = [ix.most_free(c) for c, _ in items]
        for (c, _), top in zip(items, tops, strict=True):
            if top is None:
                return reasons.class_undeclared(c, group)
        most: list[tuple[str, float, str]] = []
        for (c, r), top in zip(items, tops, strict=True):
            assert top is not None
            free, slot = top
            if free + EPS < r:
                largest = ix.largest(c)
                if largest + EPS < r:
                    return reasons.never_fits(c, r, largest, group)
                return reasons.too_little_free(c, r, free, group)
            most.append((c, free, slot.node.node_id))
        return reasons.not_together(items, most, group)


class _Sizer:
    """A request's size for ordering: the sum over classes of request / largest node total."""

    __slots__ = ("_largest",)

    def __init__(self, largest: dict[str, float]) -> None:
        self._largest = largest

    def __call__(self, request: Request) -> float:
        largest = self._largest
        return sum(r / (largest.get(c) or 1.0) for c, r in request.capacity_requests.items())
