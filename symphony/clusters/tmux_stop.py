"""Stopping supervisors: all at once, then waiting once.

Stopping 100 processes one by one costs 100 times the slowest graceful exit; here
every supervisor gets SIGTERM first (it stops its child's process group and
escalates to SIGKILL after its own ``stop_timeout``), then we wait for all of
them together, and only what outlives the deadline is killed outright.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symphony.clusters.tmux_files import read_json
from symphony.clusters.tmux_server import TmuxServer
from symphony.clusters.tmux_status import KEY

# the supervisor's own stop_timeout plus slack for it to report "stopped"
DEFAULT_STOP_TIMEOUT = 10.0
GRACE = 3.0


@dataclass(frozen=True)
class Target:
    """A supervisor to stop and, as a last resort, its child's process group."""

    supervisor_pid: int
    child_pid: int | None = None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


def stop_all(
    targets: Iterable[Target], *, timeout: float = DEFAULT_STOP_TIMEOUT + GRACE
) -> list[Target]:
    """SIGTERM every supervisor, wait for all, SIGKILL survivors; return those killed."""
    pending = [t for t in targets if _signal(t.supervisor_pid, signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    delay = 0.005
    while pending and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        pending = [t for t in pending if alive(t.supervisor_pid)]
    for target in pending:
        _signal(target.supervisor_pid, signal.SIGKILL)
        if target.child_pid:
            _kill_group(target.child_pid)
    return pending


def kill_groups(pids: Iterable[int]) -> None:
    """SIGKILL the process groups led by ``pids`` (children the supervisor started)."""
    for pid in pids:
        _kill_group(pid)


def wait_gone(pids: Iterable[int], *, timeout: float) -> bool:
    """Wait until none of ``pids`` runs (zombies count as gone); True if they all went."""
    remaining = set(pids)
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        remaining = {pid for pid in remaining if alive(pid)}
        if remaining:
            time.sleep(0.02)
    return not remaining


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _signal(pid, signal.SIGKILL)


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
    _remove_socket(socket_name)
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


def _remove_socket(socket_name: str) -> None:
    """tmux leaves its socket file behind on kill-server; a test suite would leave hundreds."""
    import stat

    folder = os.environ.get("TMUX_TMPDIR") or "/tmp"
    path = Path(folder) / f"tmux-{os.getuid()}" / socket_name
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
