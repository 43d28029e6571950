"""The :class:`Supervisor`: runs the command, restarts it by policy, keeps state and log;
and :func:`main`, the program ``supervisor.py`` runs.

The other modules are the parts this loop puts together; the state file it rewrites
on every transition is the truth the caller's side (the package's ``__init__``) reads.
"""

from __future__ import annotations

import os
import select
import sys
import time

from .files import LogWriter, dumps, loads, write_all, write_atomic
from .processes import (
    EXIT_CANNOT_EXECUTE,
    PR_SET_CHILD_SUBREAPER,
    STOP_SIGNALS,
    StartFailure,
    child_environment,
    decode_status,
    descendants,
    describe_exit,
    group_exists,
    has_children,
    libc_prctl,
    pidfd_open,
    process_group,
    reap,
    send,
    signal,
    signal_name,
    spawn,
)
from .spec import RestartLedger, SpecError, load_spec, seconds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .spec import Spec

HISTORY_LENGTH = 20
STATES = (
    "starting",
    "running",
    "backoff",
    "crash-loop",
    "exited",
    "completed",
    "stopped",
    "failed",
)
FINAL_STATES = frozenset({"exited", "completed", "stopped", "failed"})
_POLL_SECONDS = 0.05  # fallback child polling (no pidfd) and leftover-group polling
_GROUP_GONE_SECONDS = 5.0  # after SIGKILL, how long to wait for a group to vanish
_READ_SIZE = 65536


class Supervisor:
    """Runs ``spec.command`` until its restart policy says stop, or until told to stop.

    Each transition rewrites the state file (``self.state``): state, supervisor_pid,
    pid, restarts, last_exit_code (a signal death is 128+signum), started_at,
    first_started_at, finished_at, next_restart_at, updated_at, reason (always a
    string, "" when there is nothing to say), history (the last 20 runs) and meta.
    When the main process exits, whatever is left of its process group is stopped too.

    ``clock`` stamps the state file and measures runs (the restart math); ``sleep``
    waits out a backoff. Both are injectable so tests can replay long schedules
    instantly; by default the wait wakes early on a stop request.
    """

    def __init__(
        self,
        spec: Spec,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        echo_fd: int = 1,
    ):
        self.spec = spec
        self.ledger = RestartLedger.from_spec(spec)
        self._clock = clock
        self._sleep = sleep
        self._echo_fd = echo_fd
        self._env = child_environment(spec.env)
        self._stop_reason: str | None = None
        self._wake_r = self._wake_w = -1
        self._log: LogWriter | None = None
        self._pid: int | None = None
        self._adopting = False  # child subreaper: reap every child, not only our own
        self.state: dict[str, object] = {
            "state": "starting", "supervisor_pid": os.getpid(), "pid": None, "restarts": 0,
            "last_exit_code": None, "started_at": None, "first_started_at": None,
            "finished_at": None, "next_restart_at": None, "updated_at": None, "reason": "",
            "history": [], "meta": spec.meta,
        }  # fmt: skip

    # public controls
    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop the child and the supervisor (safe from a signal handler or another thread)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._wake_w >= 0:
            write_all(self._wake_w, b"\0")

    def run(self, *, standalone: bool = False) -> int:
        """Supervise until done; returns the supervisor's exit code.

        That is the child's last exit code once it finished for good, 0 when stopped,
        1 when the supervisor itself failed (state "failed"). ``standalone`` means this
        process is only a supervisor: SIGTERM/SIGINT/SIGHUP stop it, and on Linux it
        adopts (and reaps) the child's orphaned descendants, so a process group empties
        even where PID 1 never reaps.
        """
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        previous = self._install_signals() if standalone else {}
        if standalone:
            prctl = libc_prctl()
            self._adopting = prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
        try:
            try:
                self._log = LogWriter(
                    self.spec.log_file,
                    echo=self.spec.echo,
                    max_bytes=self.spec.log_max_bytes,
                    backups=self.spec.log_backups,
                    echo_fd=self._echo_fd,
                )
            except OSError as e:
                self._set(
                    "failed", reason=f"cannot open log file {self.spec.log_file}: {e.strerror}"
                )
                return 1
            try:
                return self._loop()
            except BaseException as e:  # a bug, or KeyboardInterrupt in library use
                self._kill_group(signal.SIGKILL)
                self._set("failed", pid=None, reason=f"supervisor error: {e!r}")
                self._note(f"supervisor error: {e!r}")
                raise
        finally:
            if standalone:
                signal.set_wakeup_fd(-1)
            for signum, handler in previous.items():
                if handler is not None:
                    signal.signal(signum, handler)
            if self._log is not None:
                self._log.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _install_signals(self) -> dict[int, Any]:
        """Stop signals request a stop; SIGCHLD only wakes the loop to reap orphans."""
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: object) -> None:
            self.request_stop(f"stopped by {signal_name(signum)}")

        def on_child(signum: int, frame: object) -> None:
            pass

        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, on_signal)
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, on_child)
        signal.set_wakeup_fd(self._wake_w)
        return previous

    # the main flow
    def _loop(self) -> int:
        while True:
            exit_code, signum, reason = self._run_once()
            finished = self.state["finished_at"]
            assert isinstance(finished, float)
            if self._stop_reason is not None:
                return self._stopped()
            started = self.state["started_at"]
            assert isinstance(started, float)
            decision = self.ledger.decide(
                exit_code=exit_code, runtime=finished - started, now=finished
            )
            what = reason or describe_exit(exit_code, signum)
            if decision.final:
                full = f"{decision.reason}; {what}" if decision.reason else what
                self._set(decision.state, pid=None, reason=full)
                self._note(full)
                return exit_code & 0xFF
            restart_no = self.ledger.restarts + 1
            plan = f"restarting in {decision.delay:.3g}s (restart {restart_no})"
            explained = f"{what}; {decision.reason}" if decision.reason else what
            self._set(
                decision.state,
                pid=None,
                next_restart_at=finished + decision.delay,
                reason=f"{explained}; {plan}",
            )
            self._note(f"{explained}; {plan}")
            self._wait(decision.delay)
            if self._stop_reason is not None:
                return self._stopped()
            self.ledger.record_restart(self._clock())
            self.state["restarts"] = self.ledger.restarts

    def _run_once(self) -> tuple[int, int | None, str]:
        """One run of the command: (exit code, killing signal or None, failure reason)."""
        started = float(self._clock())
        if self.state["first_started_at"] is None:
            self.state["first_started_at"] = started
        self._set(
            "starting",
            pid=None,
            started_at=started,
            finished_at=None,
            next_restart_at=None,
            reason="",
        )
        if self._stop_reason is not None:
            self._finish_run(started, None)
            return 0, None, ""
        out_r, out_w = os.pipe()
        try:
            self._pid = spawn(
                self.spec.command,
                env=self._env,
                workdir=self.spec.workdir,
                stdin_null=self.spec.stdin == "null",
                output_fd=out_w,
            )
        except StartFailure as failure:
            os.close(out_r)
            self._finish_run(started, failure.exit_code)
            return failure.exit_code, None, failure.reason
        finally:
            os.close(out_w)
        self._set("running", pid=self._pid)
        exit_code, signum = self._pump(self._pid, out_r)
        self._pid = None
        self._finish_run(started, exit_code)
        return exit_code, signum, ""

    def _finish_run(self, started: float, exit_code: int | None) -> None:
        finished = float(self._clock())
        self.state["finished_at"] = finished
        if exit_code is None:
            return
        self.state["last_exit_code"] = exit_code
        history = self.state["history"]
        assert isinstance(history, list)
        history.append({"started_at": started, "finished_at": finished, "exit_code": exit_code})
        del history[:-HISTORY_LENGTH]

    def _pump(self, pid: int, out_r: int) -> tuple[int, int | None]:
        """Copy output until the child and the rest of its process group are gone.

        A stop request sends SIGTERM to the group and SIGKILL after stop_timeout. When the
        main process exits by itself, leftovers in its group get the same treatment, so a
        restart never races its predecessor's orphans.
        """
        os.set_blocking(out_r, False)
        poller = select.poll()
        poller.register(out_r, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        pidfd = pidfd_open(pid)
        watching_pid = pidfd >= 0
        if watching_pid:
            poller.register(pidfd, select.POLLIN)
        status: tuple[int, int | None] | None = None
        kill_at: float | None = None  # when SIGKILL follows the SIGTERM already sent
        give_up_at: float | None = None  # after SIGKILL: stop waiting for an unkillable group
        try:
            while True:
                ended = self._collect(pid)
                status = status or ended
                if status is not None and not self._leftovers(pid):
                    break
                now = time.monotonic()
                if kill_at is None and (self._stop_reason is not None or status is not None):
                    while self._copy_output(out_r):  # output first, then our note
                        pass
                    why = (
                        "stopping"
                        if self._stop_reason is not None
                        else "process exited; stopping the rest of its group"
                    )
                    self._note(f"{why}: SIGTERM to process group {pid}")
                    self._signal_group(pid, signal.SIGTERM)
                    kill_at = now + self.spec.stop_timeout
                if kill_at is not None and give_up_at is None and now >= kill_at:
                    self._note(
                        f"still running {seconds(self.spec.stop_timeout)} (stop_timeout) after SIGTERM: SIGKILL"
                    )
                    self._signal_group(pid, signal.SIGKILL)
                    give_up_at = now + _GROUP_GONE_SECONDS
                if status is not None and give_up_at is not None and now >= give_up_at:
                    self._note(
                        f"process group {pid} did not go away after SIGKILL; giving up on it"
                    )
                    break
                timeout = -1.0 if watching_pid and kill_at is None else _POLL_SECONDS
                if kill_at is not None and give_up_at is None:
                    timeout = max(0.0, min(timeout, kill_at - now))
                for fd, _ in poller.poll(timeout if timeout < 0 else timeout * 1000):
                    if fd == out_r:
                        if self._copy_output(out_r) is False:
                            poller.unregister(out_r)
                    elif fd == self._wake_r:
                        _drain(self._wake_r)
                    elif fd == pidfd:
                        poller.unregister(pidfd)
                        watching_pid = False
            while self._copy_output(out_r):  # what the group wrote before it went
                pass
        finally:
            os.close(out_r)
            if pidfd >= 0:
                os.close(pidfd)
        return status or (EXIT_CANNOT_EXECUTE, None)

    def _collect(self, pid: int) -> tuple[int, int | None] | None:
        """Reap ``pid`` if it ended (and, when adopting, any orphan that ended)."""
        if not self._adopting:
            return reap(pid)
        found = None
        while True:
            try:
                done, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return found
            if not done:
                return found
            if done == pid:
                found = decode_status(raw)

    def _copy_output(self, fd: int) -> bool | None:
        """Copy what is readable now: True if something was, None if nothing yet, False at EOF."""
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            return False
        if not data:
            return False
        assert self._log is not None
        self._log.write(data)
        return True

    def _signal_group(self, pgid: int, signum: int) -> None:
        """Signal the child's process group and, when adopting, every descendant
        that left it (``setsid``, ``setpgid``): like systemd's control-group kill,
        nothing the job started outlives a stop or races a restart."""
        send(pgid, signum, group=True)
        if self._adopting and has_children():  # else there is nothing to look up in /proc
            for pid in descendants(os.getpid()):
                if process_group(pid) != pgid:
                    send(pid, signum)

    def _leftovers(self, pgid: int) -> bool:
        """Whether anything of the last run is left, zombies included: ours are reaped
        here, and another descendant's become ours when their parent dies, so waiting
        for none at all means no zombie is left behind for a PID 1 that may not reap."""
        if group_exists(pgid):
            return True
        if not self._adopting:
            return False
        self._collect(-1)
        # every orphan is re-parented to us, the subreaper, so any descendant left means a
        # child of ours is alive (or a zombie about to be reaped)
        return has_children()

    def _kill_group(self, signum: int) -> None:
        if self._pid is not None:
            send(self._pid, signum, group=True)

    def _wait(self, seconds: float) -> None:
        """Wait out a backoff; returns early when a stop is requested."""
        if self._sleep is not None:
            self._sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        while self._stop_reason is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if poller.poll(left * 1000):
                _drain(self._wake_r)

    def _stopped(self) -> int:
        reason = self._stop_reason or "stopped"
        self._set("stopped", pid=None, next_restart_at=None, reason=reason)
        self._note(reason)
        return 0

    # state and notes
    def _set(self, state: str, **fields: object) -> None:
        self.state.update(fields)
        self.state["state"] = state
        self.state["updated_at"] = float(self._clock())
        if self.spec.state_file is not None:
            try:
                write_atomic(self.spec.state_file, dumps(self.state))
            except OSError as e:
                print(
                    f"symphony-supervisor: cannot write {self.spec.state_file}: {e}",
                    file=sys.stderr,
                )

    def _note(self, text: str) -> None:
        if self._log is not None:
            self._log.note(text)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


# -- the program ----------------------------------------------------------------------
USAGE = "usage: supervisor.py SPEC.json"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    path = args[0]
    try:
        spec = load_spec(path)
    except SpecError as e:
        print(f"symphony-supervisor: {path}: {e}", file=sys.stderr)
        _record_bad_spec(path, str(e))
        return 2
    return Supervisor(spec).run(standalone=True)


def _record_bad_spec(path: str, message: str) -> None:
    """Best effort: put a bad spec's error into its state file, if it names one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = loads(f.read())
        if not isinstance(data, dict):
            return
        state_file = data.get("state_file")
        if isinstance(state_file, str) and state_file:
            now = time.time()
            state = {
                "state": "failed", "supervisor_pid": os.getpid(), "pid": None, "restarts": 0,
                "last_exit_code": None, "started_at": None, "first_started_at": None,
                "finished_at": now, "next_restart_at": None, "updated_at": now,
                "reason": f"bad spec: {message}", "history": [], "meta": data.get("meta", {}),
            }  # fmt: skip
            write_atomic(state_file, dumps(state))
    except (OSError, ValueError):
        pass
