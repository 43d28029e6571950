"""Reading a tmux cluster back: which experiments and processes it holds, and in what state.

Identity lives on the tmux objects themselves (session options ``@symphony-managed``,
``@symphony-cluster``, ``@symphony-labels``, ``@symphony-ports``; window options
``@symphony-key``, ``@symphony-hash``), so a fresh process knows everything from one
``list-windows -a`` call plus the supervisors' state files: there is no local cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from symphony.clusters.base import ExperimentSummary
from symphony.clusters.tmux_files import ExperimentFolder, parse_ports, read_json
from symphony.clusters.tmux_server import TmuxServer
from symphony.clusters.tmux_status import (
    CLUSTER,
    LABELS,
    MANAGED,
    PORTS,
    WINDOW_FIELDS,
    Window,
    observed,
    window_of,
)
from symphony.clusters.tmux_stop import DEFAULT_STOP_TIMEOUT
from symphony.errors import UserError
from symphony.home import state_home, tmux_socket_name
from symphony.model import LOCAL, ClusterSpec, ObservedProcess, ProcessState

NODE = "localhost"
SESSION_FIELDS = ("session_name", MANAGED, CLUSTER, LABELS, PORTS)


@dataclass(frozen=True)
class Session:
    name: str
    managed: bool
    cluster: str
    labels: dict[str, str]
    ports: dict[str, int]


class TmuxReader:
    """A tmux server on this machine (``tmux -L <socket>``), read as a Symphony cluster."""

    def __init__(
        self, spec: ClusterSpec = LOCAL, *, stop_timeout: float = DEFAULT_STOP_TIMEOUT
    ) -> None:
        self.spec = spec
        self.socket_name = spec.tmux.socket_name or tmux_socket_name()
        self.server = TmuxServer(self.socket_name)  # UserError when tmux is missing
        self.root = state_home() / "tmux" / self.socket_name
        self.stop_timeout = stop_timeout

    def windows(self) -> list[Window]:
        """Every window this cluster manages on the socket: one tmux call."""
        rows = self.server.rows("list-windows", WINDOW_FIELDS, "-a")
        return [w for w in (window_of(row, cluster=self.spec.name) for row in rows) if w]

    def sessions(self) -> dict[str, Session]:
        """Every session on the socket (managed or not), with Symphony's options."""
        return {
            name: Session(name, managed == "1", cluster, _labels(labels), parse_ports(ports))
            for name, managed, cluster, labels, ports in self.server.rows(
                "list-sessions", SESSION_FIELDS
            )
        }

    def observe(self, *, experiments: Sequence[str] | None = None) -> list[ObservedProcess]:
        wanted = None if experiments is None else set(experiments)
        result: list[ObservedProcess] = []
        seen: set[tuple[str, str]] = set()
        for window in self.windows():
            ident = (window.session, window.key)
            if (wanted is not None and window.session not in wanted) or ident in seen:
                continue
            seen.add(ident)
            state = read_json(self.folder(window.session).process(window.key).state)
            result.append(observed(window, state, node=NODE))
        result.sort(key=lambda o: (o.experiment, o.key))
        return result

    def experiments(self) -> list[ExperimentSummary]:
        """The experiments on this cluster with process counts, for ``symphony ls``."""
        mine = {n: s for n, s in self.sessions().items() if self.owns(s)}
        counts: dict[str, list[int]] = {name: [0, 0] for name in mine}
        for process in self.observe(experiments=list(mine)):
            tally = counts.setdefault(process.experiment, [0, 0])
            tally[0] += 1
            tally[1] += process.state is ProcessState.RUNNING
        return [
            ExperimentSummary(
                name=name,
                cluster=self.spec.name,
                processes=counts[name][0],
                running=counts[name][1],
                labels=dict(mine[name].labels),
            )
            for name in sorted(mine)
        ]

    def folder(self, experiment: str) -> ExperimentFolder:
        return ExperimentFolder(self.root, experiment)

    def owns(self, session: Session) -> bool:
        return session.managed and session.cluster == self.spec.name

    # lookups with one-line errors, for the access commands

    def session(self, experiment: str) -> Session:
        session = self.sessions().get(experiment)
        if session is None or not self.owns(session):
            raise UserError(f"no experiment {experiment!r} on cluster {self.spec.name!r}")
        return session

    def window(self, experiment: str, key: str) -> Window:
        for window in self.windows():
            if window.session == experiment and window.key == key:
                return window
        raise UserError(self.no_process(experiment, key))

    def process_spec(self, experiment: str, key: str) -> dict[str, Any]:
        """The supervisor spec a process was started with (its env and workdir)."""
        spec = read_json(self.folder(experiment).process(key).spec)
        if not isinstance(spec, dict):
            raise UserError(self.no_process(experiment, key))
        return spec

    def no_process(self, experiment: str, key: str) -> str:
        keys = sorted(w.key for w in self.windows() if w.session == experiment)
        if not keys:
            return f"no experiment {experiment!r} on cluster {self.spec.name!r}"
        return f"experiment {experiment!r} has no process {key!r} (processes: {', '.join(keys)})"


def _labels(raw: str) -> dict[str, str]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
