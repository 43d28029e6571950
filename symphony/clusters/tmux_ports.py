"""The ports of one tmux socket: a fixed port appears once per host (DESIGN §1).

Every experiment on a socket shares one host (127.0.0.1), so before anything
changes the fixed ports of the experiments being applied are checked against
what the other experiments hold: the ``@symphony-ports`` option of every live
session on the socket (managed or not, any cluster name), and what the other
experiments of the same apply keep. A clash is bad input (exit 2), one line
naming both sides. So is a fixed port that no session of the socket holds but
some other program on the machine listens on (another tmux socket's experiment,
a stray server): its process would only crash-loop with EADDRINUSE. Free
assignment then avoids all of those, plus the
``ports.json`` of experiments whose session is gone (a killed server), so that
they get their ports back when applied again.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from symphony.clusters.tmux_files import PORTS_FILE, ExperimentFolder
from symphony.clusters.tmux_reader import Session
from symphony.errors import Problem, UserError
from symphony.model import Experiment, SourceRef
from symphony.ports import LOOPBACK, PortClash, assign_ports, port_clashes

MEMORY = SourceRef().file


def socket_ports(
    experiments: Sequence[Experiment],
    *,
    sessions: Mapping[str, Session],
    root: Path,
    leaving: Collection[str] = (),
) -> dict[str, dict[str, int]]:
    """A stable port for every bound/exposed name of ``experiments``, or :class:`UserError`.

    ``leaving`` names sessions this same change removes: their ports are free.
    Reads only; the caller persists the result.
    """
    names = {e.name for e in experiments}
    previous = {
        e.name: (s.ports if (s := sessions.get(e.name)) else {})
        or ExperimentFolder(root, e.name).read_ports()
        for e in experiments
    }
    fixed = {
        e.name: {p.name: p.port for p in e.endpoints if p.port is not None} for e in experiments
    }
    keeps = {
        e.name: {
            **{p.name: previous[e.name][p.name] for p in e.endpoints if p.name in previous[e.name]},
            **fixed[e.name],
        }
        for e in experiments
    }
    live = {
        name: dict(s.ports)
        for name, s in sessions.items()
        if name not in names and name not in leaving and s.ports
    }
    clashes = port_clashes(fixed, {**live, **keeps})
    if clashes:
        by_name = {e.name: e for e in experiments}
        raise UserError([_problem(c, by_name[c.experiment]) for c in clashes])
    ours = {port for s in sessions.values() for port in s.ports.values()}
    taken_outside = [
        PortClash(e.name, name, port, holder="", holder_name=_holder(port))
        for e in experiments
        for name, port in sorted(fixed[e.name].items())
        if port not in ours and _in_use(port)
    ]
    if taken_outside:
        by_name = {e.name: e for e in experiments}
        raise UserError([_problem(c, by_name[c.experiment]) for c in taken_outside])

    stale = _stale(root, skip=set(sessions) | names)
    result: dict[str, dict[str, int]] = {}
    for experiment in sorted(experiments, key=lambda e: e.name):
        others = {**live, **stale, **keeps, **result}
        taken = {
            port
            for name, ports in others.items()
            if name != experiment.name
            for port in ports.values()
        }
        wanted = {e.name: e.port for e in experiment.endpoints}
        result[experiment.name] = assign_ports(
            wanted, previous=previous[experiment.name], taken=taken
        )
    return result


def _problem(clash: PortClash, experiment: Experiment) -> Problem:
    """Located at the process that declares the name, where it came from a file."""
    text = str(clash)
    if not clash.holder:  # held outside this socket: no experiment to name
        text = (
            f"experiment {clash.experiment!r}: port {clash.port} of {clash.name!r} is already in "
            f"use on this machine by {clash.holder_name} (not an experiment on this tmux socket)"
        )
    for process in experiment.processes:
        if any(e.name == clash.name for e in process.endpoints) and process.source.file != MEMORY:
            return Problem(text, process.source.file, process.source.line)
    return Problem(text)


def _in_use(port: int) -> bool:
    """Whether a program already listens on ``port`` of the loopback address (or on all of
    them): then a process that binds it would only crash-loop with EADDRINUSE."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _holder(port: int) -> str:
    """``pid 123 (name)`` of the listener, where the system lets us see it."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="inet"):
            listening = conn.status == psutil.CONN_LISTEN and conn.pid
            if listening and conn.laddr and conn.laddr.port == port:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except Exception:  # naming the holder is a courtesy: psutil may not be allowed to look
        pass
    return "another program"


def _stale(root: Path, *, skip: Collection[str]) -> dict[str, dict[str, int]]:
    """``ports.json`` of experiments with no session on the socket (their server went away)."""
    try:
        folders = [p for p in root.iterdir() if p.name not in skip and (p / PORTS_FILE).exists()]
    except FileNotFoundError:
        return {}
    return {p.name: ExperimentFolder(root, p.name).read_ports() for p in folders}
