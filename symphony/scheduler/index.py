"""Indexes of nodes by free capacity, one per node group, so a placement scans few nodes.

For every class, a group's index keeps its schedulable nodes in a list sorted by
``(free, tie-break, slot)``. To place a request it bisects, in every requested
class, to the first node with enough free, takes the class with the fewest such
nodes (the most constraining one), and walks that list from the tightest node
(binpack) or the freest one (spread), checking the other classes, until it has
``limit`` feasible candidates — Nomad's limit iterator — which the score
function ranks. Updating a node moves one key per changed class (bisect + insort).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from symphony.scheduler.feasibility import EPS
from symphony.scheduler.objects import Node, Placement, Strategy
from symphony.scheduler.scores import ScoreFn

Key = tuple[float, int, int]
"""``(free, tie-break, slot index)``: unique per node and class, ordered tightest first."""

Items = tuple[tuple[str, float], ...]


class Slot:
    """A node inside a :class:`ClusterState`: its free capacity and what it runs."""

    __slots__ = ("free", "idx", "indexes", "keys", "node", "placements", "tb", "total")

    def __init__(self, node: Node, *, idx: int, tb: int) -> None:
        self.node = node
        self.idx = idx
        self.tb = tb
        self.total: dict[str, float] = dict(node.capacities_total)
        self.free: dict[str, float] = {
            c: t - node.capacities_used.get(c, 0.0) for c, t in self.total.items()
        }
        self.keys: dict[str, Key] = {c: (f, tb, idx) for c, f in self.free.items()}
        self.indexes: list[GroupIndex] = []
        self.placements: dict[tuple[str, str], Placement] = {}

    def utilisation_after(self, items: Items) -> list[float]:
        """Free fraction per requested class after placing ``items`` (all declared classes if none)."""
        free, total = self.free, self.total
        if not items:
            return [free[c] / t if t > 0 else 0.0 for c, t in total.items()]
        return [(free[c] - r) / total[c] if total.get(c, 0.0) > 0 else 0.0 for c, r in items]


class GroupIndex:
    """The schedulable nodes of one group (or of the whole cluster), indexed by free capacity."""

    __slots__ = ("_largest", "by_class", "group", "members", "order")

    def __init__(self, group: str | None, slots: Iterable[Slot] = ()) -> None:
        self.group = group
        self.members: dict[int, Slot] = {}
        self.by_class: dict[str, list[Key]] = {}
        self.order: list[tuple[int, int]] = []  # (tie-break, slot): for requests of no class
        self._largest: dict[str, float] | None = None
        for slot in slots:  # bulk build: append, then sort once
            self.members[slot.idx] = slot
            slot.indexes.append(self)
            for c, key in slot.keys.items():
                self.by_class.setdefault(c, []).append(key)
            self.order.append((slot.tb, slot.idx))
        for keys in self.by_class.values():
            keys.sort()
        self.order.sort()

    def __len__(self) -> int:
        return len(self.members)

    def add(self, slot: Slot) -> None:
        self.members[slot.idx] = slot
        slot.indexes.append(self)
        for c, key in slot.keys.items():
            insort(self.by_class.setdefault(c, []), key)
        insort(self.order, (slot.tb, slot.idx))
        self._largest = None

    def discard(self, slot: Slot) -> None:
        if self.members.pop(slot.idx, None) is None:
            return
        slot.indexes.remove(self)
        for c, key in slot.keys.items():
            keys = self.by_class[c]
            del keys[bisect_left(keys, key)]
            if not keys:
                del self.by_class[c]
        del self.order[bisect_left(self.order, (slot.tb, slot.idx))]
        self._largest = None

    def move(self, cls: str, old: Key, new: Key) -> None:
        """A member's free capacity in ``cls`` changed from ``old`` to ``new``."""
        keys = self.by_class[cls]
        del keys[bisect_left(keys, old)]
        insort(keys, new)

    def most_free(self, cls: str) -> tuple[float, Slot] | None:
        keys = self.by_class.get(cls)
        if not keys:
            return None
        free, _, idx = keys[-1]
        return free, self.members[idx]

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
        if not items:
            members = self.members
            return [members[i] for _, i in self.order[:limit]]
        keys: list[Key] | None = None
        start = 0
        fitting = -1
        for c, r in items:  # the most constraining class: fewest nodes with enough free
            ks = self.by_class.get(c)
            if ks is None:
                return []
            pos = bisect_left(ks, (r - EPS,))
            n = len(ks) - pos
            if n == 0:
                return []
            if keys is None or n < fitting:
                keys, start, fitting = ks, pos, n
        assert keys is not None
        walk = (
            range(start, len(keys))
            if strategy is Strategy.BINPACK
            else range(len(keys) - 1, start - 1, -1)
        )
        members = self.members
        found: list[Slot] = []
        if len(items) == 1:  # everything from ``start`` on fits
            for i in walk:
                found.append(members[keys[i][2]])
                if len(found) >= limit:
                    break
            return found
        for i in walk:
            slot = members[keys[i][2]]
            free = slot.free
            for c, r in items:
                if free.get(c, 0.0) + EPS < r:
                    break
            else:
                found.append(slot)
                if len(found) >= limit:
                    break
        return found


def select(candidates: list[Slot], items: Items, score: ScoreFn) -> Slot | None:
    """The best-scoring candidate; on a tie the earlier one (walking order, then tie-break)."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    best = candidates[0]
    best_score = score(best.utilisation_after(items))
    for slot in candidates[1:]:
        s = score(slot.utilisation_after(items))
        if s > best_score:
            best, best_score = slot, s
    return best
