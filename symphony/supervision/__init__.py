"""The supervision machinery behind ``symphony/supervisor.py`` (its entry point), and
the caller's side of it.

Every process Symphony starts runs under one supervisor process of its own, so a job
outlives whoever launched it: a tmux window runs
``exec python -S /abs/symphony/supervisor.py SPEC.json`` and the node agent uses
:func:`launch_detached`. The state file the supervisor keeps (rewritten atomically on
every transition) is the truth about the process; :func:`read_state`, :func:`is_alive`
and :func:`stop`, defined here, are the caller's side of that contract. The rest of the
API is re-exported from the modules that make up the supervisor itself: ``files``
(JSON, atomic writes, the log), ``spec`` (SPEC.json and the restart decision),
``processes`` (fork and exec, signals, reaping) and ``loop`` (the :class:`Supervisor`
and ``main``).

Standard library only, and careful about imports: a local cluster starts a hundred of
these at once. ``json``, ``signal`` and ``subprocess`` would pull in ``re``, ``enum``
and ``threading`` (about 15 ms together), so the package uses the C modules behind
them (``_json``, ``_signal``); prctl is bound through ``_ctypes``, only when supervising.
It lives apart from ``supervisor.py`` because a script run as ``python supervisor.py``
is compiled on every start, while an imported module's bytecode is cached (~10 ms
saved). Each module costs every supervisor about 0.1 ms of CPU to import: that is why
there are four, not eight.

It imports nothing from the symphony package, and its modules import each other
relatively: the script imports it as the top-level package ``supervision`` from its
own folder, everyone else as ``symphony.supervision``.
"""

from __future__ import annotations

import os
import sys
import time

from .files import NOTE_PREFIX, LogWriter, dumps, loads, write_atomic
from .loop import FINAL_STATES, HISTORY_LENGTH, STATES, Supervisor, main
from .processes import StartFailure, child_environment, send, signal, spawn
from .spec import (
    BACKOFF_CAP_SECONDS,
    BACKOFF_RESET_SECONDS,
    CRASH_LOOP_MIN_RUNTIME,
    CRASH_LOOP_RUNS,
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_STOP_TIMEOUT,
    RESTART_TYPES,
    Decision,
    RestartLedger,
    Spec,
    SpecError,
    backoff_delay,
    load_spec,
    parse_spec,
    write_spec,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

__all__ = [
    "BACKOFF_CAP_SECONDS",
    "BACKOFF_RESET_SECONDS",
    "CRASH_LOOP_MIN_RUNTIME",
    "CRASH_LOOP_RUNS",
    "DEFAULT_BACKOFF_SECONDS",
    "DEFAULT_STOP_TIMEOUT",
    "FINAL_STATES",
    "HISTORY_LENGTH",
    "NOTE_PREFIX",
    "RESTART_TYPES",
    "SCRIPT",
    "STATES",
    "Decision",
    "LogWriter",
    "RestartLedger",
    "Spec",
    "SpecError",
    "StartFailure",
    "Supervisor",
    "backoff_delay",
    "child_environment",
    "dumps",
    "is_alive",
    "is_final",
    "launch_detached",
    "load_spec",
    "loads",
    "main",
    "parse_spec",
    "read_state",
    "spawn",
    "stop",
    "write_spec",
]

# the entry point, beside this package
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "supervisor.py")


# -- the caller's side ----------------------------------------------------------------
_launched: dict[int, subprocess.Popen[bytes]] = {}  # ours to reap, so is_alive sees no zombies


def read_state(path: str) -> dict[str, Any] | None:
    """The state file as a dict; None when it is missing, unreadable or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        value = loads(text)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def is_alive(pid: object) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    popen = _launched.get(pid)
    if popen is not None:
        if popen.poll() is None:
            return True
        del _launched[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc (macOS): trust kill()
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def is_final(state: dict[str, Any] | None) -> bool:
    return state is not None and state.get("state") in FINAL_STATES


def stop(state_path: str, *, timeout: float | None = None) -> dict[str, Any] | None:
    """Ask the supervisor behind ``state_path`` to stop, wait, and return the final state.

    SIGTERM goes to the supervisor, which stops its child (SIGTERM, then SIGKILL after
    the spec's stop_timeout). ``timeout`` (default stop_timeout default + 5 s) should
    exceed that; past it, or when the supervisor is already gone, the child's process
    group is SIGKILLed here and the state is marked "stopped".
    """
    state = read_state(state_path)
    if state is None:
        return None
    if is_final(state):
        return state
    sup = state.get("supervisor_pid")
    deadline = time.monotonic() + (DEFAULT_STOP_TIMEOUT + 5.0 if timeout is None else timeout)
    if is_alive(sup):
        assert isinstance(sup, int)
        send(sup, signal.SIGTERM)
        while is_alive(sup) and time.monotonic() < deadline:
            time.sleep(0.02)
        if is_alive(sup):
            reason = "the supervisor did not stop in time; killed"
            send(sup, signal.SIGKILL)
        else:
            state = read_state(state_path)
            if is_final(state):
                return state
            reason = "the supervisor exited without a final state; its process group was killed"
    else:
        reason = "the supervisor was gone; its process group was killed"
    pid = (state or {}).get("pid")
    if isinstance(pid, int) and pid > 0:
        send(pid, signal.SIGKILL, group=True)
    final = dict(state or {})
    now = time.time()
    final.update(state="stopped", pid=None, reason=reason, updated_at=now, next_restart_at=None)
    final["finished_at"] = final.get("finished_at") or now
    write_atomic(state_path, dumps(final))
    return final


def launch_detached(spec_path: str, *, python: str | None = None) -> int:
    """Start a supervisor for ``spec_path`` in its own session, detached from our stdio.

    It survives the caller; the returned pid is the supervisor's. (The spec should say
    ``stdin: "null"``; echo goes to /dev/null.)
    """
    import subprocess

    command = [python or sys.executable, "-S", SCRIPT, os.path.abspath(spec_path)]
    popen = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )
    _launched[popen.pid] = popen
    return popen.pid
