"""Ports for an experiment's bound and exposed names, one node at a time. Pure.

The conductor chooses from a per-node range (nodes do not report which ports are
free), avoiding every port it already handed out on that node; the choice is stored
with the experiment, so re-applying, restarting a process or restarting the conductor
keeps it. A name keeps its port for as long as its binder stays on the same node.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass

# below Linux's ephemeral range (32768-60999), where outgoing connections take their ports
PORT_RANGE = range(20000, 32000)


class PortError(Exception):
    """A fixed port another experiment holds on that node, or no free port left."""


@dataclass(frozen=True)
class Assigned:
    node: str
    port: int

    def to_json(self) -> dict[str, object]:
        return {"node": self.node, "port": self.port}


def assign(
    experiment: str,
    wanted: Mapping[str, tuple[str, int | None]],
    current: Mapping[str, Assigned],
    *,
    taken: Mapping[str, Collection[int]],
    ports: range = PORT_RANGE,
) -> dict[str, Assigned]:
    """Ports for ``wanted`` (name -> (binder's node, fixed port or None)).

    ``current`` is what the experiment holds now; ``taken`` the ports other experiments
    hold, per node. A name whose node and fixed port did not change keeps its port.
    """
    out: dict[str, Assigned] = {}
    used: dict[str, set[int]] = {node: set(p) for node, p in taken.items()}
    for name, (node, fixed) in sorted(wanted.items()):
        held = current.get(name)
        if held is not None and held.node == node and (fixed is None or fixed == held.port):
            out[name] = held
            used.setdefault(node, set()).add(held.port)
    for name, (node, fixed) in sorted(wanted.items()):
        if name in out:
            continue
        mine = used.setdefault(node, set())
        if fixed is not None and fixed in mine:
            raise PortError(f"{name}: port {fixed} is already taken on node {node}")
        port = fixed if fixed is not None else _free(f"{experiment}/{name}/{node}", mine, ports)
        mine.add(port)
        out[name] = Assigned(node, port)
    return out


def _free(seed: str, used: Collection[int], ports: range) -> int:
    """A port not in ``used``: a few seeded random picks (spread out), then a scan."""
    rng = random.Random(seed)
    for _ in range(32):
        port = ports[rng.randrange(len(ports))]
        if port not in used:
            return port
    for port in ports:
        if port not in used:
            return port
    raise PortError(f"no free port left in {ports.start}-{ports.stop - 1}")
