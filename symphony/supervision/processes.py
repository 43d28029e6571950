"""The child process: starting it, signalling it and its group, reaping, reading /proc.

Like ``subprocess`` (which would import ``threading`` and more, in every supervisor)
:func:`spawn` forks and execs in a new session and gets an exec failure back over a
close-on-exec pipe; on Linux the child dies with the supervisor (prctl, bound through
``_ctypes`` only when supervising). The helpers after it tolerate a process already
gone; the loop uses them to leave nothing of a run behind, the caller's :func:`stop` too.
"""

from __future__ import annotations

import errno
import os
import sys

from .files import write_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import Any
else:
    try:  # `signal` itself imports enum (~5 ms); its C module has everything needed
        import _signal as signal
    except ImportError:  # pragma: no cover - non-CPython
        import signal

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


# -- names --------------------------------------------------------------------------
_SIGNAL_NAMES: dict[int, str] = {}
for _name in sorted(dir(signal)):  # the first of two aliases wins: SIGABRT, not SIGIOT
    if _name.startswith("SIG") and not _name.startswith(("SIG_", "SIGRT")):
        _SIGNAL_NAMES.setdefault(getattr(signal, _name), _name)


def signal_name(signum: int) -> str:
    return _SIGNAL_NAMES.get(signum, f"signal {signum}")


def describe_exit(exit_code: int, signum: int | None = None) -> str:
    if signum is not None:
        return f"killed by {signal_name(signum)} (exit code {exit_code})"
    return f"exited with code {exit_code}"


# -- starting a child ---------------------------------------------------------------
_PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class StartFailure(Exception):
    """The command could not be started; ``exit_code`` is 127 or 126 as a shell would say."""

    def __init__(self, exit_code: int, reason: str):
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


_prctl: Callable[[int, int], int] | bool | None = False  # False = not looked up yet


def libc_prctl() -> Callable[[int, int], int] | None:
    """libc's prctl on Linux, looked up once, in the parent: importing after fork is unsafe."""
    global _prctl
    if _prctl is False:
        _prctl = None
        if sys.platform.startswith("linux"):
            try:
                _prctl = _bind_libc("prctl")
            except (ImportError, OSError, AttributeError):  # pragma: no cover
                _prctl = None
    return _prctl  # type: ignore[return-value]


def _bind_libc(name: str) -> Callable[[int, int], int]:
    """``ctypes.CDLL(None).name`` built from the C module ``_ctypes`` alone: importing
    ``ctypes`` itself costs about 4 ms of CPU, in every one of a hundred supervisors."""
    import _ctypes

    c: Any = _ctypes  # typeshed's stubs describe ctypes' wrappers, not this use

    class Int(c._SimpleCData):  # type: ignore[misc]
        _type_ = "i"

    class Function(c.CFuncPtr):  # type: ignore[misc]
        _flags_ = c.FUNCFLAG_CDECL | c.FUNCFLAG_USE_ERRNO
        _restype_ = Int

    class Libc:
        _handle = c.dlopen(None, os.RTLD_NOW)

    function: Callable[[int, int], int] = Function((name, Libc()))
    return function


def spawn(
    command: list[str],
    *,
    env: dict[str, str],
    workdir: str | None,
    stdin_null: bool,
    output_fd: int,
) -> int:
    """Fork and exec ``command`` in a new session with stdout+stderr on ``output_fd``.

    Returns the pid once exec succeeded; raises :class:`StartFailure` when it did not
    (the child's errno travels back over a close-on-exec pipe, as subprocess does it).
    """
    prctl = libc_prctl()
    parent = os.getpid()
    err_r, err_w = os.pipe()  # close-on-exec: EOF without data means exec worked
    try:
        pid = os.fork()
    except OSError as e:
        os.close(err_r)
        os.close(err_w)
        raise StartFailure(EXIT_CANNOT_EXECUTE, f"cannot fork: {e.strerror}") from None
    if pid == 0:  # pragma: no cover - runs in the child, which execs or _exits
        _exec_child(command, env, workdir, stdin_null, output_fd, err_w, parent, prctl)
    os.close(err_w)
    chunks = []
    while chunk := os.read(err_r, 4096):
        chunks.append(chunk)
    os.close(err_r)
    if not chunks:
        return pid
    os.waitpid(pid, 0)
    stage, code, message = b"".join(chunks).decode("utf-8", "replace").split("\0", 2)
    exit_code = (
        EXIT_NOT_FOUND if int(code) in (errno.ENOENT, errno.ENOTDIR) else EXIT_CANNOT_EXECUTE
    )
    if stage == "workdir":
        raise StartFailure(exit_code, f"bad workdir: {workdir}: {message}")
    if stage == "exec" and int(code) == errno.ENOENT and _findable(command[0], env):
        # the file is there, so exec missed its #! interpreter (bash says the same, 126)
        raise StartFailure(EXIT_CANNOT_EXECUTE, f"cannot execute {command[0]}: bad interpreter")
    if stage == "exec" and int(code) == errno.ENOENT:
        raise StartFailure(exit_code, f"command not found: {command[0]}")
    if stage == "exec":
        raise StartFailure(exit_code, f"cannot execute {command[0]}: {message}")
    raise StartFailure(exit_code, f"cannot start {command[0]}: {message}")


def _findable(program: str, env: dict[str, str]) -> bool:
    """Whether ``program`` names an existing file, directly or through PATH."""
    if "/" in program:
        return os.path.isfile(program)
    path = env.get("PATH", os.defpath)
    return any(os.path.isfile(os.path.join(d or ".", program)) for d in path.split(os.pathsep))


def _exec_child(  # pragma: no cover - runs in the forked child
    command: list[str],
    env: dict[str, str],
    workdir: str | None,
    stdin_null: bool,
    output_fd: int,
    err_w: int,
    parent: int,
    prctl: Callable[[int, int], int] | None,
) -> None:
    stage, code = "setup", EXIT_CANNOT_EXECUTE
    try:
        try:  # handlers die with exec anyway; ignored signals and the mask would not
            signal.set_wakeup_fd(-1)
            for signum in (*STOP_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
        except ValueError:  # forked from a thread Python does not treat as main
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.setsid()
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the supervisor …
            if os.getppid() != parent:  # … even if it died before prctl ran
                os._exit(EXIT_CANNOT_EXECUTE)
        if stdin_null:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        if output_fd > 2:
            os.close(output_fd)
        stage = "workdir"
        if workdir is not None:
            os.chdir(workdir)
        stage = "exec"
        os.execvpe(command[0], command, env)
    except OSError as e:
        code = EXIT_NOT_FOUND if e.errno in (errno.ENOENT, errno.ENOTDIR) else EXIT_CANNOT_EXECUTE
        report = f"{stage}\0{e.errno or 0}\0{e.strerror or e}"
        write_all(err_w, report.encode("utf-8", "replace"))
    except BaseException as e:
        write_all(err_w, f"{stage}\0{0}\0{e!r}".encode("utf-8", "replace"))
    finally:
        os._exit(code)


def child_environment(
    overlay: dict[str, str | None], base: dict[str, str] | None = None
) -> dict[str, str]:
    """The supervisor's environment with the spec's on top (``None`` unsets a variable).

    PYTHONUNBUFFERED defaults to 1 so a Python child's prints reach the log promptly.
    """
    env = dict(os.environ if base is None else base)
    for key, value in overlay.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if "PYTHONUNBUFFERED" not in overlay:
        env["PYTHONUNBUFFERED"] = "1"
    return env


# -- signalling, reaping, /proc ----------------------------------------------------
def pidfd_open(pid: int) -> int:
    """A descriptor that polls readable when ``pid`` exits (Linux ≥ 5.3), else -1."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


def reap(pid: int) -> tuple[int, int | None] | None:
    """(exit code, signal) once ``pid`` ended, a signal death as 128+signum; else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # pragma: no cover - somebody else reaped it
        return (EXIT_CANNOT_EXECUTE, None)
    if not done:
        return None
    return decode_status(status)


def decode_status(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return 128 + signum, signum
    return os.waitstatus_to_exitcode(status), None


def send(pid: int, signum: int, *, group: bool = False) -> None:
    """Signal a process (or process group) that may already be gone."""
    try:  # noqa: SIM105 - contextlib would cost start-up time
        (os.killpg if group else os.kill)(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed its uid
        return True
    return True


def has_children() -> bool:
    """Whether this process has any child, running or exited, without reaping one."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root``, from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        parent = _ppid(int(entry))
        if parent is not None:
            children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, …)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode("ascii", "replace").split()


def _ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
