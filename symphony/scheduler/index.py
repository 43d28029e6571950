"""Indexes of nodes by free capacity, one per node group, so a placement visits few nodes.

A group's index lays its schedulable nodes out on the leaves of a segment tree
and keeps, per class, the largest free capacity under every inner node. Looking
for nodes that can hold a request descends only into subtrees whose maxima
cover the request in *every* requested class; a subtree that fails one class is
skipped whole, however many nodes it holds, so the full nodes of a packed
cluster cost nothing. Leaves are checked exactly, so no feasible node is missed.

- binpack walks leaves left to right (first fit over a stable node order, which
  keeps work on the nodes already in use) and the score function picks the best
  of the first ``limit`` feasible ones;
- spread walks best-first by the largest free capacity of the request's
  dominant class, so the freest feasible nodes come first.

Changing a node's free capacity updates one leaf and its ancestors (stopping as
soon as a maximum does not change): ``O(log n)`` per class.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from itertools import islice

from symphony.scheduler.feasibility import EPS
from symphony.scheduler.objects import Node, Placement, Strategy
from symphony.scheduler.scores import ScoreFn

Items = tuple[tuple[str, float], ...]
ABSENT = float("-inf")  # the free capacity of an empty leaf, or of a class a node lacks


class Slot:
    """A node inside a :class:`ClusterState`: its free capacity and what it runs."""

    __slots__ = ("free", "idx", "indexes", "inverse", "node", "placements", "total")

    def __init__(self, node: Node, *, idx: int) -> None:
        self.node = node
        self.idx = idx
        self.total: dict[str, float] = dict(node.capacities_total)
        self.inverse = {c: 1.0 / t if t > 0 else 0.0 for c, t in self.total.items()}
        self.free: dict[str, float] = {
            c: t - node.capacities_used.get(c, 0.0) for c, t in self.total.items()
        }
        self.indexes: list[GroupIndex] = []
        self.placements: dict[tuple[str, str], Placement] = {}

    def utilisation_after(self, items: Items) -> list[float]:
        """Free fraction per requested class after placing ``items`` (all declared classes if none)."""
        free, inverse = self.free, self.inverse
        if not items:
            return [free[c] * inv for c, inv in inverse.items()]
        return [(free[c] - r) * inverse[c] for c, r in items]  # candidates declare every class


class GroupIndex:
    """The schedulable nodes of one group (or of the whole cluster), indexed by free capacity."""

    __slots__ = (
        "_largest",
        "at",
        "group",
        "hints",
        "members",
        "position",
        "size",
        "spare",
        "trees",
        "vacant",
        "weights",
    )

    def __init__(self, group: str | None, slots: Iterable[Slot] = ()) -> None:
        self.group = group
        self.members: dict[int, Slot] = {}
        self.position: dict[int, int] = {}  # slot idx -> leaf
        self.vacant: list[int] = []  # a heap of free leaves, reused lowest first
        self._largest: dict[str, float] | None = None
        # request shape -> leftmost leaf that could hold it when last asked. Valid while
        # free capacity only shrinks (no leaf to its left can have become feasible), so
        # cleared whenever a node joins or any free capacity grows.
        self.hints: dict[Items, int] = {}
        chosen = list(slots)
        self.size = 1
        while self.size < max(len(chosen), 1):
            self.size *= 2
        self.at: list[Slot | None] = [None] * self.size
        self.trees: dict[str, list[float]] = {}
        # Σ weight·max(free, 0) over a node's classes: no node can hold a request that
        # exceeds it in the same weighted sum, so a subtree whose maximum falls short is
        # skipped even when each class alone has room somewhere in it. Any fixed positive
        # weights keep this exact; 1/largest total balances the classes.
        self.weights: dict[str, float] = {}
        for slot in chosen:
            for c, t in slot.total.items():
                self.weights[c] = max(self.weights.get(c, 0.0), t)
        self.weights = {c: 1.0 / t if t > 0 else 1.0 for c, t in self.weights.items()}
        self.spare: list[float] = [ABSENT] * (2 * self.size)
        for leaf, slot in enumerate(chosen):
            self._attach(slot, leaf)
        for tree in (*self.trees.values(), self.spare):
            self._rebuild(tree)

    def __len__(self) -> int:
        return len(self.members)

    # ---------------------------------------------------------------- upkeep

    def add(self, slot: Slot) -> None:
        if self.vacant:
            leaf = heapq.heappop(self.vacant)
        else:
            leaf = len(self.position)
            if leaf >= self.size:
                self._grow()
        self._attach(slot, leaf)
        self.update(slot, slot.free)
        self._largest = None
        self.hints.clear()

    def discard(self, slot: Slot) -> None:
        if self.members.pop(slot.idx, None) is None:
            return
        slot.indexes.remove(self)
        leaf = self.position[slot.idx]
        for c in slot.free:
            self._set(self.trees[c], leaf, ABSENT)
        self._set(self.spare, leaf, ABSENT)
        del self.position[slot.idx]
        self.at[leaf] = None
        heapq.heappush(self.vacant, leaf)
        self._largest = None

    def update(self, slot: Slot, classes: Iterable[str]) -> None:
        """A member's free capacity changed in ``classes`` (read from ``slot.free``)."""
        leaf, free, trees = self.position[slot.idx], slot.free, self.trees
        for c in classes:
            self._set(trees[c], leaf, free[c])
        self._set(self.spare, leaf, self._spare_of(slot))

    def _spare_of(self, slot: Slot) -> float:
        weights = self.weights
        return sum(weights[c] * f for c, f in slot.free.items() if f > 0)

    def _attach(self, slot: Slot, leaf: int) -> None:
        self.members[slot.idx] = slot
        self.position[slot.idx] = leaf
        self.at[leaf] = slot
        slot.indexes.append(self)
        for c, value in slot.free.items():
            tree = self.trees.get(c)
            if tree is None:
                tree = self.trees[c] = [ABSENT] * (2 * self.size)
                if c not in self.weights:
                    t = slot.total[c]
                    self.weights[c] = 1.0 / t if t > 0 else 1.0
            tree[self.size + leaf] = value
        self.spare[self.size + leaf] = self._spare_of(slot)

    def _set(self, tree: list[float], leaf: int, value: float) -> None:
        i = self.size + leaf
        if value > tree[i]:
            self.hints.clear()
        tree[i] = value
        i >>= 1
        while i:
            a, b = tree[2 * i], tree[2 * i + 1]
            m = a if a > b else b
            if tree[i] == m:
                break
            tree[i] = m
            i >>= 1

    def _rebuild(self, tree: list[float]) -> None:
        for i in range(self.size - 1, 0, -1):
            a, b = tree[2 * i], tree[2 * i + 1]
            tree[i] = a if a > b else b

    def _grow(self) -> None:
        old = self.size
        self.size *= 2
        self.at.extend([None] * old)

        def grown(tree: list[float]) -> list[float]:
            bigger = [ABSENT] * (2 * self.size)
            bigger[self.size : self.size + old] = tree[old : 2 * old]
            self._rebuild(bigger)
            return bigger

        self.trees = {c: grown(tree) for c, tree in self.trees.items()}
        self.spare = grown(self.spare)

    # --------------------------------------------------------------- queries

    def most_free(self, cls: str) -> tuple[float, Slot] | None:
        """The largest free capacity of ``cls`` on a member, and that member."""
        tree = self.trees.get(cls)
        if tree is None or tree[1] == ABSENT:
            return None
        i, top = 1, tree[1]
        while i < self.size:
            i = 2 * i if tree[2 * i] == top else 2 * i + 1
        slot = self.at[i - self.size]
        assert slot is not None
        return top, slot

    def declares(self, cls: str) -> bool:
        """Some member declares ``cls``."""
        return any(cls in s.total for s in self.members.values())

    def largest(self, cls: str) -> float:
        """The largest total of ``cls`` on any member (what an idle node could hold)."""
        if self._largest is None:
            largest: dict[str, float] = {}
            for slot in self.members.values():
                for c, t in slot.total.items():
                    if t > largest.get(c, -1.0):
                        largest[c] = t
            self._largest = largest
        return self._largest.get(cls, 0.0)

    def candidates(self, items: Items, strategy: Strategy, limit: int) -> list[Slot]:
        """Up to ``limit`` feasible members, best first by the strategy's walking order."""
        if not items:  # fits anywhere: the leftmost members (binpack keeps them together)
            return list(islice((s for s in self.at if s is not None), limit))
        need: list[tuple[list[float], float]] = []
        spare = 0.0
        for c, r in items:
            tree = self.trees.get(c)
            if tree is None or tree[1] + EPS < r:
                return []
            need.append((tree, r - EPS))
            spare += self.weights[c] * r
        if strategy is Strategy.BINPACK:
            if len(need) > 1:  # the weighted sum first: it prunes where classes alone do not
                need.insert(0, (self.spare, spare * (1 - 1e-9) - EPS))
            found = self._first_fit(need, limit, self.hints.get(items, 0))
            if found:
                self.hints[items] = self.position[found[0].idx]
            return found
        # spread leads with the class the request takes the largest share of
        need.sort(key=lambda tr: -tr[1] / tr[0][1] if tr[0][1] > 0 else 0.0)
        return self._freest_first(need, limit)

    def _first_fit(
        self, need: list[tuple[list[float], float]], limit: int, start: int = 0
    ) -> list[Slot]:
        """Feasible leaves from leaf ``start`` rightwards; subtrees short of any class are skipped."""
        size, at = self.size, self.at
        found: list[Slot] = []
        stack: list[int] = []
        pop, push = stack.pop, stack.append
        i, span = 1, size >> 1
        while span:  # down to leaf `start`, keeping the subtrees right of the path for later
            if start & span:
                i = 2 * i + 1
            else:
                push(2 * i + 1)
                i = 2 * i
            span >>= 1
        push(i)
        single = need[0] if len(need) == 1 else None
        while stack:
            i = pop()
            if single is not None:
                if single[0][i] < single[1]:
                    continue
            else:
                short = False
                for tree, r in need:
                    if tree[i] < r:
                        short = True
                        break
                if short:
                    continue
            if i >= size:
                slot = at[i - size]
                assert slot is not None
                found.append(slot)
                if len(found) >= limit:
                    break
            else:
                push(2 * i + 1)
                push(2 * i)  # left on top: leaves come out left to right
        return found

    def _freest_first(self, need: list[tuple[list[float], float]], limit: int) -> list[Slot]:
        """Feasible leaves by decreasing free capacity of the lead class (``need[0]``)."""
        size, at = self.size, self.at
        lead = need[0][0]
        found: list[Slot] = []
        heap = [(-lead[1], 1)]
        while heap:
            _, i = heapq.heappop(heap)
            for tree, r in need:
                if tree[i] < r:
                    break
            else:
                if i >= size:
                    slot = at[i - size]
                    assert slot is not None
                    found.append(slot)
                    if len(found) >= limit:
                        break
                else:
                    heapq.heappush(heap, (-lead[2 * i], 2 * i))
                    heapq.heappush(heap, (-lead[2 * i + 1], 2 * i + 1))
        return found


def select(candidates: list[Slot], items: Items, score: ScoreFn) -> Slot | None:
    """The best-scoring candidate; on a tie the earlier one (walking order)."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    best = candidates[0]
    best_score = score(best.utilisation_after(items))
    for slot in candidates[1:]:
        s = score(slot.utilisation_after(items))
        if s > best_score:
            best, best_score = slot, s
    return best
