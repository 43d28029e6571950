"""From a tmux window and its supervisor's state file to an ObservedProcess. Pure.

Never assumed: a process is "running" only when its supervisor says so and
the pane that holds the supervisor is alive. A supervisor that died without
writing a final state is UNKNOWN, with the reason, and needs a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symphony.model import ObservedProcess, ProcessState

# the supervisor's final states (its FINAL_STATES): true even once the supervisor is gone;
# "crash-loop" is not final: the supervisor keeps restarting with a growing backoff
FINAL = frozenset({"exited", "completed", "stopped", "failed"})

# The spec hash reported for a window whose supervisor died without a final word: nothing
# enforces its restart policy any more, so it matches no spec and the next apply (a plan
# "update") starts it again, as it would a window closed by hand.
ORPHANED = ""

_STATES = {
    "starting": ProcessState.PENDING,
    "running": ProcessState.RUNNING,
    "backoff": ProcessState.BACKOFF,
    "crash-loop": ProcessState.CRASH_LOOP,
    "exited": ProcessState.EXITED,
    "completed": ProcessState.COMPLETED,
    "stopped": ProcessState.EXITED,
    "failed": ProcessState.EXITED,
}


@dataclass(frozen=True)
class Window:
    """One managed tmux window, as ``list-windows -a`` reports it."""

    session: str
    window_id: str
    key: str
    spec_hash: str
    cluster: str
    pane_pid: int | None
    pane_dead: bool
    dead_status: int | None


# Symphony's marks on tmux objects: session options, then window options.
MANAGED = "@symphony-managed"
CLUSTER = "@symphony-cluster"
LABELS = "@symphony-labels"
PORTS = "@symphony-ports"
KEY = "@symphony-key"
HASH = "@symphony-hash"

# one ``list-windows -a -F`` row per window (session options are inherited by windows)
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


def window_of(row: list[str], *, cluster: str) -> Window | None:
    """The window of a :data:`WINDOW_FIELDS` row when ``cluster`` manages it, else None."""
    session, wid, managed, owner, key, spec_hash, pid, dead, status = row
    if managed != "1" or owner != cluster or not key:
        return None
    return Window(
        session=session,
        window_id=wid,
        key=key,
        spec_hash=spec_hash,
        cluster=owner,
        pane_pid=int(pid) if pid.isdigit() else None,
        pane_dead=dead == "1",
        dead_status=int(status) if status.lstrip("-").isdigit() else None,
    )


def observed(
    window: Window,
    state: Any,
    *,
    node: str,
) -> ObservedProcess:
    """The process in ``window`` given the supervisor's ``state`` (None when unreadable)."""
    base: dict[str, Any] = {
        "experiment": window.session,
        "key": window.key,
        "spec_hash": window.spec_hash,
        "node": node,
        "cluster": window.cluster,
    }
    if not isinstance(state, dict) or not _belongs(state, window):
        if window.pane_dead:
            status = "" if window.dead_status is None else f" (status {window.dead_status})"
            return ObservedProcess(
                **{**base, "spec_hash": ORPHANED},
                state=ProcessState.UNKNOWN,
                reason=f"supervisor exited{status} before reporting a state; apply restarts it",
            )
        return ObservedProcess(**base, state=ProcessState.PENDING, reason="starting")

    word = str(state.get("state", ""))
    restarts = _int(state.get("restarts")) or 0
    exit_code = _int(state.get("last_exit_code"))
    pid = _int(state.get("pid"))
    reason = str(state.get("reason") or "")
    if window.pane_dead and word not in FINAL:
        return ObservedProcess(
            **{**base, "spec_hash": ORPHANED},
            state=ProcessState.UNKNOWN,
            restarts=restarts,
            exit_code=exit_code,
            reason=f"supervisor (pid {window.pane_pid}) vanished while {word or 'starting'}"
            " without a final state; apply restarts it",
        )
    mapped = _STATES.get(word, ProcessState.UNKNOWN)
    if mapped is ProcessState.UNKNOWN:
        reason = reason or f"unknown supervisor state {word!r}"
    if word == "stopped":
        reason = reason or "stopped"
    running = mapped is ProcessState.RUNNING
    return ObservedProcess(
        **base,
        state=mapped,
        restarts=restarts,
        exit_code=exit_code if mapped is not ProcessState.RUNNING else None,
        started_at=_float(state.get("started_at")) if running else None,
        ready=running,
        pid=pid,
        reason=reason,
    )


def _belongs(state: dict[str, Any], window: Window) -> bool:
    """A state file left by an earlier supervisor in this window is not this one's."""
    sup = _int(state.get("supervisor_pid"))
    return sup is None or window.pane_pid is None or sup == window.pane_pid


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
