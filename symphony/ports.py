"""Port assignment for bound and exposed names (DESIGN §2).

A manifest may fix a port; every other name gets a free loopback port once and
keeps it: the previous assignment is reused on re-apply, on restart and after
the reconciler restarts. Only the caller knows where assignments persist; this
module decides, given what is already assigned and what is taken elsewhere, and
finds fixed ports that another experiment on the same host already holds.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


def free_port(*, avoid: Iterable[int] = (), host: str = LOOPBACK, attempts: int = 50) -> int:
    """A port the OS reports free on ``host`` right now, not in ``avoid``.

    Free at the time of the call only (the process binds it later); avoiding
    ports already assigned elsewhere keeps two experiments from racing for one.
    """
    avoided = set(avoid)
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in avoided:
            return port
    raise RuntimeError(f"no free port on {host} after {attempts} attempts")


def assign_ports(
    wanted: Mapping[str, int | None],
    *,
    previous: Mapping[str, int],
    taken: Iterable[int] = (),
) -> dict[str, int]:
    """A port for every name in ``wanted`` (name → fixed port or None).

    Fixed ports win. A name assigned before keeps its port unless another
    experiment (``taken``) or a fixed port now claims it. The result holds
    exactly the names of ``wanted``: names no longer declared are released.
    """
    fixed = {name: port for name, port in wanted.items() if port is not None}
    used = set(taken) | set(fixed.values())
    result: dict[str, int] = dict(fixed)
    for name in wanted:
        if name in result:
            continue
        old = previous.get(name)
        if old is not None and old not in used:
            result[name] = old
            used.add(old)
    for name in wanted:
        if name not in result:
            port = free_port(avoid=used)
            result[name] = port
            used.add(port)
    return {name: result[name] for name in wanted}


@dataclass(frozen=True)
class PortClash:
    """A fixed port of ``experiment``'s ``name`` that ``holder_name`` of ``holder`` already uses."""

    experiment: str
    name: str
    port: int
    holder: str
    holder_name: str

    def __str__(self) -> str:
        return (
            f"experiment {self.experiment!r}: port {self.port} of {self.name!r} is already used "
            f"by {self.holder_name!r} of experiment {self.holder!r} on this host"
        )


def port_clashes(
    fixed: Mapping[str, Mapping[str, int]], held: Mapping[str, Mapping[str, int]]
) -> list[PortClash]:
    """Every fixed port (experiment → name → port) that another experiment on the host holds.

    ``held`` has the same shape: what each experiment uses or will keep, fixed or
    assigned, in the order holders should be named (what is live first). An
    experiment never clashes with itself (its own names are checked by
    validation), and two experiments fixing one port are reported once.
    """
    owners: dict[int, list[tuple[str, str]]] = {}
    for experiment in held:
        for name, port in held[experiment].items():
            owners.setdefault(port, []).append((experiment, name))
    seen: set[frozenset[tuple[str, str]]] = set()
    clashes: list[PortClash] = []
    for experiment in sorted(fixed):
        for name, port in fixed[experiment].items():
            for holder, holder_name in owners.get(port, ()):
                pair = frozenset({(experiment, name), (holder, holder_name)})
                if holder == experiment or pair in seen:
                    continue
                seen.add(pair)
                clashes.append(PortClash(experiment, name, port, holder, holder_name))
                break
    return clashes
