"""The tmux cluster: one session per experiment, one window per process.

Each window runs :mod:`symphony.supervisor` directly (``new-window … -- python
-S supervisor.py SPEC``: no shell, no send-keys); the environment travels in
the spec file. Identity lives on the tmux objects themselves — session
options ``@symphony-managed``, ``@symphony-cluster``, ``@symphony-labels``,
``@symphony-ports`` and window options ``@symphony-key``, ``@symphony-hash`` —
so a fresh process knows everything from one ``list-windows -a`` call plus
the supervisors' state files. Finished windows stay (``remain-on-exit``) so
status can say completed or exited.

Files live in ``state_home()/tmux/<socket>/<experiment>/`` (see
:mod:`symphony.clusters.tmux_files`). Deleting a process or an experiment
keeps its log files until the same process is created again, so its output
can still be read after the fact.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symphony.clusters.base import ExperimentSummary, unsupported
from symphony.clusters.tmux_files import (
    ExperimentFolder,
    ProcessFiles,
    parse_ports,
    read_json,
    write_json,
)
from symphony.clusters.tmux_logs import follow as follow_file
from symphony.clusters.tmux_logs import live_size, read_history
from symphony.clusters.tmux_server import Command, TmuxServer
from symphony.clusters.tmux_status import Window, observed
from symphony.clusters.tmux_stop import (
    DEFAULT_STOP_TIMEOUT,
    GRACE,
    Target,
    alive,
    stop_all,
    wait_gone,
)
from symphony.environment import process_environment
from symphony.errors import OperationFailed, UserError
from symphony.home import state_home, tmux_socket_name
from symphony.model import (
    LOCAL,
    ClusterSpec,
    Experiment,
    ObservedProcess,
    ProcessSpec,
    ProcessState,
)
from symphony.plan import Plan
from symphony.ports import LOOPBACK, assign_ports

SUPERVISOR = Path(__file__).resolve().parent.parent / "supervisor.py"
# -S: no site (startup time); -E: the supervisor is stdlib-only and needs no PYTHON*
# variable, and ignoring PYTHONDONTWRITEBYTECODE lets it reuse its cached bytecode (a
# third less CPU per start). The child still gets the whole environment.
PYTHON_FLAGS = ("-S", "-E")
NODE = "localhost"
LOG_MAX_BYTES = 256 * 1024 * 1024  # then rotate: .log.1 … .log.N
LOG_BACKUPS = 4

MANAGED = "@symphony-managed"
CLUSTER = "@symphony-cluster"
LABELS = "@symphony-labels"
PORTS = "@symphony-ports"
KEY = "@symphony-key"
HASH = "@symphony-hash"

WINDOW_FIELDS = (
    "session_name",
    "window_id",
    MANAGED,
    CLUSTER,
    KEY,
    HASH,
    "pane_pid",
    "pane_dead",
    "pane_dead_status",
)
SESSION_FIELDS = ("session_name", MANAGED, CLUSTER, LABELS, PORTS)


@dataclass(frozen=True)
class Session:
    name: str
    managed: bool
    cluster: str
    labels: dict[str, str]
    ports: dict[str, int]


class TmuxCluster:
    """A tmux server on this machine (``tmux -L <socket>``) as a Symphony cluster."""

    def __init__(
        self, spec: ClusterSpec = LOCAL, *, stop_timeout: float = DEFAULT_STOP_TIMEOUT
    ) -> None:
        self.spec = spec
        self.socket_name = spec.tmux.socket_name or tmux_socket_name()
        self.server = TmuxServer(self.socket_name)  # UserError when tmux is missing
        self.root = state_home() / "tmux" / self.socket_name
        self.stop_timeout = stop_timeout

    # ---------------------------------------------------------------- reading

    def windows(self) -> list[Window]:
        """Every window this cluster manages on the socket: one tmux call."""
        found: list[Window] = []
        for row in self.server.rows("list-windows", WINDOW_FIELDS, "-a"):
            session, wid, managed, cluster, key, spec_hash, pid, dead, status = row
            if managed != "1" or cluster != self.spec.name or not key:
                continue
            found.append(
                Window(
                    session=session,
                    window_id=wid,
                    key=key,
                    spec_hash=spec_hash,
                    cluster=cluster,
                    pane_pid=int(pid) if pid.isdigit() else None,
                    pane_dead=dead == "1",
                    dead_status=int(status) if status.lstrip("-").isdigit() else None,
                )
            )
        return found

    def sessions(self) -> dict[str, Session]:
        """Every session on the socket (managed or not), with Symphony's options."""
        result: dict[str, Session] = {}
        for name, managed, cluster, labels, ports in self.server.rows(
            "list-sessions", SESSION_FIELDS
        ):
            result[name] = Session(
                name=name,
                managed=managed == "1",
                cluster=cluster,
                labels=_labels(labels),
                ports=parse_ports(ports),
            )
        return result

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
        mine = {
            n: s for n, s in self.sessions().items() if s.managed and s.cluster == self.spec.name
        }
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

    # ---------------------------------------------------------------- changing

    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        if plan.empty:
            return
        experiments = {e.name: e for e in desired}
        unknown = {p.experiment for p in plan.create + plan.update} - set(experiments)
        if unknown:
            raise ValueError(f"plan names experiments missing from desired: {sorted(unknown)}")
        windows = {(w.session, w.key): w for w in self.windows()}
        sessions = self.sessions()
        self._check_owned({p.experiment for p in plan.create + plan.update}, sessions)

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
        ports = self._ports(
            [
                experiments[name]
                for name in sorted({p.experiment for p in plan.create + plan.update})
            ],
            sessions,
        )
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
        if session is not None and not (session.managed and session.cluster == self.spec.name):
            raise OperationFailed(_not_ours(session, self))
        self._stop([w for w in self.windows() if w.session == name])
        if session is not None:
            self.server.run("kill-session", "-t", f"={name}", check=False)
        self.folder(name).remove(keep_logs=True)

    # ---------------------------------------------------------------- access

    def logs(
        self,
        experiment: str,
        key: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
    ) -> Iterator[str]:
        files = self.folder(experiment).process(key)
        if not files.log_files() and not self._known(experiment, key):
            raise UserError(self._no_process(experiment, key))
        return self._log_lines(files, follow=follow, tail=tail, since=since)

    def _log_lines(
        self, files: ProcessFiles, *, follow: bool, tail: int | None, since: float | None
    ) -> Iterator[str]:
        start = live_size(files.log)
        for line in read_history(files.log_files(), tail=tail, since=since, limit=start):
            yield line.decode("utf-8", "replace")
        if follow:
            for line in follow_file(files.log, start=start, finished=lambda: self._finished(files)):
                yield line.decode("utf-8", "replace")

    def url(self, experiment: str, service: str) -> str:
        session = self._session(experiment)
        ports = session.ports or self.folder(experiment).read_ports()
        if service not in ports:
            names = ", ".join(sorted(ports)) or "none"
            raise UserError(
                f"experiment {experiment!r} has no bound or exposed name {service!r} (available: {names})"
            )
        return f"http://{LOOPBACK}:{ports[service]}"

    def exec(self, experiment: str, key: str, argv: Sequence[str]) -> int:
        import subprocess

        spec = self._spec(experiment, key)
        if not argv:
            raise UserError("exec needs a command to run")
        env = {**os.environ, **{str(k): str(v) for k, v in spec.get("env", {}).items()}}
        workdir = spec.get("workdir") or None
        try:
            return subprocess.call(list(argv), env=env, cwd=workdir)
        except FileNotFoundError as exc:
            if workdir and not os.path.isdir(workdir):
                raise OperationFailed(f"{key}: its folder {workdir} does not exist") from None
            raise OperationFailed(f"{argv[0]}: command not found ({exc.strerror})") from None
        except PermissionError:
            raise OperationFailed(f"{argv[0]}: permission denied") from None

    def ssh(self, experiment: str, key: str) -> int:
        """Attach this terminal to the process's window (switch-client when already in tmux)."""
        import subprocess

        window = self._window(experiment, key)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise OperationFailed(
                f"ssh {key}: needs a terminal to attach to its tmux window "
                f"(tmux -L {self.socket_name} attach -t ={experiment}); "
                "use `symphony logs` or `symphony exec` from scripts"
            )
        inside = os.environ.get("TMUX", "")
        if inside and os.path.basename(inside.split(",", 1)[0]) == self.socket_name:
            return subprocess.call(self.server.argv("switch-client", "-t", window.window_id))
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        return subprocess.call(
            self.server.argv(
                "select-window",
                "-t",
                window.window_id,
                ";",
                "attach-session",
                "-t",
                f"={experiment}",
            ),
            env=env,
        )

    def scp(self, source: str, destination: str, *, experiment: str) -> None:
        where = ""
        for ref in (source, destination):
            key, sep, _path = ref.partition(":")
            if sep and key and "/" not in key.split("/", 1)[-1] and not key.startswith((".", "/")):
                spec = read_json(self.folder(experiment).process(key).spec)
                if isinstance(spec, dict) and spec.get("workdir"):
                    where = f"; {key} runs in {spec['workdir']}"
                    break
        raise OperationFailed(
            f"{unsupported(self.spec, 'scp')}: tmux processes run on this machine, "
            f"so their files are already local — use cp{where}"
        )

    # ---------------------------------------------------------------- helpers

    def _check_owned(self, names: set[str], sessions: dict[str, Session]) -> None:
        for name in sorted(names):
            session = sessions.get(name)
            if session is not None and not (session.managed and session.cluster == self.spec.name):
                raise OperationFailed(_not_ours(session, self))

    def _stop(self, windows: Sequence[Window]) -> None:
        targets = []
        for window in windows:
            if window.pane_dead or window.pane_pid is None:
                continue
            state = read_json(self.folder(window.session).process(window.key).state)
            child = state.get("pid") if isinstance(state, dict) else None
            targets.append(Target(window.pane_pid, child if isinstance(child, int) else None))
        if targets:
            stop_all(targets, timeout=self.stop_timeout + GRACE)

    def _ports(
        self, experiments: Sequence[Experiment], sessions: dict[str, Session]
    ) -> dict[str, dict[str, int]]:
        """Stable ports for every bound/exposed name of ``experiments``, persisted in both places."""
        names = {e.name for e in experiments}
        taken = {
            port for s in sessions.values() if s.name not in names for port in s.ports.values()
        }
        result: dict[str, dict[str, int]] = {}
        for experiment in experiments:
            folder = self.folder(experiment.name)
            folder.ensure()
            session = sessions.get(experiment.name)
            previous = (session.ports if session else {}) or folder.read_ports()
            wanted = {e.name: e.port for e in experiment.endpoints}
            assigned = assign_ports(wanted, previous=previous, taken=taken)
            taken.update(assigned.values())
            folder.write_ports(assigned)
            result[experiment.name] = assigned
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
        staying = {(p.experiment, p.key) for p in plan.create + plan.update}
        units: list[list[Command]] = []
        for name in sorted({o.experiment for o in plan.delete}):
            left = [ident for ident in windows if ident[0] == name and ident not in gone] + [
                ident for ident in staying if ident[0] == name
            ]
            if not left:
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

    def _session(self, experiment: str) -> Session:
        session = self.sessions().get(experiment)
        if session is None or not session.managed or session.cluster != self.spec.name:
            raise UserError(f"no experiment {experiment!r} on cluster {self.spec.name!r}")
        return session

    def _window(self, experiment: str, key: str) -> Window:
        for window in self.windows():
            if window.session == experiment and window.key == key:
                return window
        raise UserError(self._no_process(experiment, key))

    def _known(self, experiment: str, key: str) -> bool:
        return any(w.session == experiment and w.key == key for w in self.windows())

    def _spec(self, experiment: str, key: str) -> dict[str, Any]:
        spec = read_json(self.folder(experiment).process(key).spec)
        if not isinstance(spec, dict):
            raise UserError(self._no_process(experiment, key))
        return spec

    def _no_process(self, experiment: str, key: str) -> str:
        keys = sorted(w.key for w in self.windows() if w.session == experiment)
        if not keys:
            return f"no experiment {experiment!r} on cluster {self.spec.name!r}"
        return f"experiment {experiment!r} has no process {key!r} (processes: {', '.join(keys)})"

    def _finished(self, files: ProcessFiles) -> bool:
        """Will no more output come? The supervisor is gone, or never will start."""
        state = read_json(files.state)
        if isinstance(state, dict):
            sup = state.get("supervisor_pid")
            if isinstance(sup, int):
                return not alive(sup)
        window = next(
            (w for w in self.windows() if files.folder.name == w.session and w.key == files.key),
            None,
        )
        return window is None or window.pane_dead


def shutdown_server(
    socket_name: str, *, state_root: Path | None = None, timeout: float = 5.0
) -> None:
    """Kill a tmux server and everything it started: supervisors, their children, orphans.

    For tests and benchmarks. Supervisors get SIGTERM (they stop their child's
    process group), then the server is killed, then any descendant or any child
    recorded in a state file under ``state_root`` that is still alive gets SIGKILL.
    """
    import shutil

    import psutil

    binary = shutil.which("tmux")
    if binary is None:
        return  # no tmux, no server
    server = TmuxServer(socket_name, binary=binary)
    panes = server.rows("list-panes", ("pane_pid", "pane_dead", KEY), "-a")
    live = [(int(pid), bool(key)) for pid, dead, key in panes if dead != "1" and pid.isdigit()]
    procs: list[psutil.Process] = []
    for pid, _ in live:
        try:
            procs.extend(psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            continue
    # supervisors stop their children gracefully; other panes (shells) get the server's SIGHUP
    stop_all([Target(pid) for pid, managed in live if managed], timeout=timeout)
    server.kill()
    if state_root is not None and state_root.is_dir():
        procs.extend(_recorded_children(state_root))
    pids = {p.pid for p in procs}
    if not wait_gone(pids, timeout=0.5):
        for pid in pids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        wait_gone(pids, timeout=2.0)


def _recorded_children(state_root: Path) -> list[Any]:
    """Children named in state files that still run (same start time: not a reused pid)."""
    import psutil

    found = []
    for path in state_root.rglob("*.state.json"):
        state = read_json(path)
        if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
            continue
        started = state.get("started_at")
        try:
            proc = psutil.Process(state["pid"])
            if isinstance(started, int | float) and abs(proc.create_time() - started) < 5:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _labels(raw: str) -> dict[str, str]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


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
