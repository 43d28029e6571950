"""The tmux cluster: one session per experiment, one window per process.

Each window runs :mod:`symphony.supervisor` directly (``new-window … -- python
-S -E supervisor.py SPEC``: no shell, no send-keys); the environment travels in
the spec file. Changes go to tmux in batches (:mod:`.tmux_server`): a
100-process launch is a handful of tmux invocations. Stops are parallel
(:mod:`.tmux_stop`). Finished windows stay (``remain-on-exit``) so status can
say completed or exited; reading back is :mod:`.tmux_reader`, logs and the
other access commands are :mod:`.tmux_access`.

Files live in ``state_home()/tmux/<socket>/<experiment>/`` (see
:mod:`.tmux_files`). Deleting a process or an experiment keeps its log files
until the same process is created again, so its output can still be read
after the fact.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symphony.clusters.tmux_access import TmuxAccess
from symphony.clusters.tmux_files import read_json, write_json
from symphony.clusters.tmux_ports import socket_ports
from symphony.clusters.tmux_reader import Session, TmuxReader
from symphony.clusters.tmux_server import Command
from symphony.clusters.tmux_status import CLUSTER, HASH, KEY, LABELS, MANAGED, PORTS, Window
from symphony.clusters.tmux_stop import GRACE, Target, shutdown_server, stop_all
from symphony.environment import process_environment
from symphony.errors import OperationFailed
from symphony.model import Experiment, ProcessSpec
from symphony.plan import Plan
from symphony.ports import LOOPBACK

__all__ = ["TmuxAccess", "TmuxCluster", "TmuxReader", "shutdown_server"]

SUPERVISOR = Path(__file__).resolve().parent.parent / "supervisor.py"
# -S: no site (startup time); -E: the supervisor is stdlib-only and needs no PYTHON*
# variable, and ignoring PYTHONDONTWRITEBYTECODE lets it reuse its cached bytecode (a
# third less CPU per start). The child still gets the whole environment.
PYTHON_FLAGS = ("-S", "-E")
LOG_MAX_BYTES = 256 * 1024 * 1024  # then rotate: .log.1 … .log.N
LOG_BACKUPS = 4


class TmuxCluster(TmuxAccess):
    """A tmux server on this machine (``tmux -L <socket>``) as a Symphony cluster.

    Reading (:class:`TmuxReader`: observe, experiments) and access (:class:`TmuxAccess`:
    logs, url, exec, ssh, scp) are inherited; this class changes things.
    """

    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        if plan.empty:
            self._refresh_labels(desired)
            return
        experiments = {e.name: e for e in desired}
        unknown = {p.experiment for p in plan.create + plan.update} - set(experiments)
        if unknown:
            raise ValueError(f"plan names experiments missing from desired: {sorted(unknown)}")
        windows = {(w.session, w.key): w for w in self.windows()}
        sessions = self.sessions()
        self._check_owned({p.experiment for p in plan.create + plan.update}, sessions)
        # Before any change: a fixed port another experiment on this host holds is bad input.
        ports = self._ports(
            [
                experiments[name]
                for name in sorted({p.experiment for p in plan.create + plan.update})
            ],
            sessions,
            leaving=_emptied(plan, windows),
        )

        self._stop(
            [
                windows[(p.experiment, p.key)]
                for p in plan.update
                if (p.experiment, p.key) in windows
            ]
            + [
                windows[(o.experiment, o.key)]
                for o in plan.delete
                if (o.experiment, o.key) in windows
            ]
        )

        units: list[list[Command]] = []
        existing = set(sessions)
        for name, assigned in ports.items():
            if name in sessions:
                units.append(self._session_options(experiments[name], assigned, target=f"={name}:"))
        for process in plan.update:
            window = windows.get((process.experiment, process.key))
            argv = self._prepare(process, ports[process.experiment], fresh=window is None)
            if window is None:  # closed by hand since it was observed: start it again
                units.append(self._create(process, argv, experiments, ports, existing))
            else:
                units.append(self._respawn_unit(process, argv, window))
        for process in plan.create:
            argv = self._prepare(process, ports[process.experiment], fresh=True)
            units.append(self._create(process, argv, experiments, ports, existing))
        units.extend(self._delete_units(plan, windows))
        result = self.server.batch(units)
        if not result.ok:  # tmux skipped the rest of a failed chunk: kills are safe to retry
            self.server.batch(
                [["kill-window", "-t", w.window_id]]
                for w in self.windows()
                if (w.session, w.key) in {(o.experiment, o.key) for o in plan.delete}
            )
        for gone in plan.delete:
            self.folder(gone.experiment).process(gone.key).clear(keep_log=True)
        if not result.ok:
            self._explain_failure(plan, result.errors)

    def delete_experiment(self, name: str) -> None:
        """Stop every process, kill the session, remove specs/states/ports (logs stay)."""
        session = self.sessions().get(name)
        if session is not None and not self.owns(session):
            raise OperationFailed(_not_ours(session, self))
        self._stop([w for w in self.windows() if w.session == name])
        if session is not None:
            self.server.run("kill-session", "-t", f"={name}", check=False)
        self.folder(name).remove(keep_logs=True)

    # ---------------------------------------------------------------- helpers

    def _check_owned(self, names: set[str], sessions: dict[str, Session]) -> None:
        for name in sorted(names):
            session = sessions.get(name)
            if session is not None and not self.owns(session):
                raise OperationFailed(_not_ours(session, self))

    def _stop(self, windows: Sequence[Window]) -> None:
        targets = []
        for window in windows:
            if window.pane_dead or window.pane_pid is None:
                continue
            state = read_json(self.folder(window.session).process(window.key).state)
            child = state.get("pid") if isinstance(state, dict) else None
            targets.append(Target(window.pane_pid, child if isinstance(child, int) else None))
        if targets:  # shutting down is CPU-bound on a small machine: allow time per process
            stop_all(targets, timeout=self.stop_timeout + GRACE + 0.02 * len(targets))

    def _ports(
        self, experiments: Sequence[Experiment], sessions: dict[str, Session], *, leaving: set[str]
    ) -> dict[str, dict[str, int]]:
        """Stable ports for every bound/exposed name of ``experiments``, persisted in both places
        (the session option is written with the windows; ``ports.json`` here)."""
        result = socket_ports(experiments, sessions=sessions, root=self.root, leaving=leaving)
        for name, assigned in result.items():
            folder = self.folder(name)
            folder.ensure()
            folder.write_ports(assigned)
        return result

    def _prepare(self, process: ProcessSpec, ports: dict[str, int], *, fresh: bool) -> list[str]:
        """Write the supervisor's spec; return the window's argv."""
        files = self.folder(process.experiment).process(process.key)
        files.clear(keep_log=not fresh)
        if not fresh:
            _note(files.log, "spec changed: restarting with the new spec")
        env = process_environment(
            process,
            addresses={name: (LOOPBACK, port) for name, port in ports.items()},
            cluster=self.spec.name,
        )
        write_json(
            files.spec,
            {
                "command": list(process.command),
                "env": env,
                "workdir": os.path.abspath(os.path.expanduser(process.workdir)),
                "restart_policy": process.restart_policy.to_dict(),
                "log_file": str(files.log),
                "state_file": str(files.state),
                "echo": True,
                "stop_timeout": self.stop_timeout,
                "log_max_bytes": LOG_MAX_BYTES,
                "log_backups": LOG_BACKUPS,
                "meta": {
                    "experiment": process.experiment,
                    "key": process.key,
                    "spec_hash": process.spec_hash(),
                    "cluster": self.spec.name,
                    "socket": self.socket_name,
                },
            },
        )
        return [sys.executable, *PYTHON_FLAGS, str(SUPERVISOR), str(files.spec)]

    def _refresh_labels(self, desired: Sequence[Experiment]) -> None:
        """Labels are not part of a process's spec: update them on live sessions where they differ
        (a GitOps source takes ownership through a label without restarting anything)."""
        if not desired:
            return
        sessions = self.sessions()
        stale = [
            e
            for e in desired
            if (s := sessions.get(e.name)) is not None and self.owns(s) and s.labels != dict(e.labels)
        ]
        if stale:
            self.server.batch(
                [[["set-option", "-t", f"={e.name}:", LABELS, _json(dict(e.labels))]] for e in stale]
            )

    def _session_options(
        self, experiment: Experiment, ports: dict[str, int], *, target: str
    ) -> list[Command]:
        return [
            ["set-option", "-t", target, MANAGED, "1"],
            ["set-option", "-t", target, CLUSTER, self.spec.name],
            ["set-option", "-t", target, LABELS, _json(dict(experiment.labels))],
            ["set-option", "-t", target, PORTS, _json(ports)],
        ]

    def _create_unit(
        self,
        process: ProcessSpec,
        argv: list[str],
        *,
        experiment: Experiment,
        ports: dict[str, int],
        existing: set[str],
    ) -> list[Command]:
        """A new window (in a new session when the experiment has none yet) and its options.

        ``-a -t =EXP:{end}`` puts the window after the highest index, so the
        same target then names it for the set-options that follow.
        """
        name = process.experiment
        last = f"={name}:{{end}}"
        unit: list[Command]
        if name in existing:
            unit = [["new-window", "-d", "-a", "-t", last, "-n", process.key, "--", *argv]]
        else:
            existing.add(name)
            unit = [["new-session", "-d", "-s", name, "-n", process.key, "--", *argv]]
            unit += self._session_options(experiment, ports, target=f"={name}:")
        return [
            *unit,
            ["set-option", "-w", "-t", last, "remain-on-exit", "on"],
            ["set-option", "-w", "-t", last, KEY, process.key],
            ["set-option", "-w", "-t", last, HASH, process.spec_hash()],
        ]

    def _create(
        self,
        process: ProcessSpec,
        argv: list[str],
        experiments: dict[str, Experiment],
        ports: dict[str, dict[str, int]],
        existing: set[str],
    ) -> list[Command]:
        name = process.experiment
        return self._create_unit(
            process, argv, experiment=experiments[name], ports=ports[name], existing=existing
        )

    def _respawn_unit(self, process: ProcessSpec, argv: list[str], window: Window) -> list[Command]:
        return [
            ["respawn-window", "-k", "-t", window.window_id, "--", *argv],
            ["set-option", "-w", "-t", window.window_id, HASH, process.spec_hash()],
        ]

    def _delete_units(
        self, plan: Plan, windows: dict[tuple[str, str], Window]
    ) -> list[list[Command]]:
        gone = {(o.experiment, o.key) for o in plan.delete}
        emptied = _emptied(plan, windows)
        units: list[list[Command]] = []
        for name in sorted({o.experiment for o in plan.delete}):
            if name in emptied:
                units.append([["kill-session", "-t", f"={name}"]])
                continue
            for ident in sorted(gone):
                if ident[0] == name and ident in windows:
                    units.append([["kill-window", "-t", windows[ident].window_id]])
        return units

    def _explain_failure(self, plan: Plan, errors: list[str]) -> None:
        live = {(w.session, w.key): w.spec_hash for w in self.windows()}
        missing = [
            p.key
            if len({q.experiment for q in plan.create + plan.update}) == 1
            else f"{p.experiment}/{p.key}"
            for p in plan.create + plan.update
            if live.get((p.experiment, p.key)) != p.spec_hash()
        ]
        lingering = [o.key for o in plan.delete if (o.experiment, o.key) in live]
        if not missing and not lingering:
            return  # e.g. a window closed by hand before we could kill it: the end state is right
        parts = []
        if missing:
            parts.append(f"not started: {', '.join(missing)}")
        if lingering:
            parts.append(f"not deleted: {', '.join(lingering)}")
        raise OperationFailed(
            f"tmux -L {self.socket_name}: {'; '.join(errors)} ({'; '.join(parts)})"
        )


def _emptied(plan: Plan, windows: dict[tuple[str, str], Window]) -> set[str]:
    """Experiments whose every window this plan deletes: their sessions go."""
    gone = {(o.experiment, o.key) for o in plan.delete}
    staying = {p.experiment for p in plan.create + plan.update}
    return {
        name
        for name in {o.experiment for o in plan.delete}
        if name not in staying
        and all(ident in gone for ident in windows if ident[0] == name)
    }


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _note(log: Path, message: str) -> None:
    """A ``[symphony]`` line in the process's log, like the supervisor's own notes."""
    if log.exists():
        with open(log, "a") as fh:
            fh.write(f"[symphony] {message}\n")


def _not_ours(session: Session, cluster: TmuxCluster) -> str:
    if not session.managed:
        return (
            f"tmux session {session.name!r} on socket {cluster.socket_name!r} is not managed by Symphony; "
            "rename or close it, or use another experiment name"
        )
    return (
        f"experiment {session.name!r} on tmux socket {cluster.socket_name!r} belongs to cluster "
        f"{session.cluster!r}, not {cluster.spec.name!r}"
    )
