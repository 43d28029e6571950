"""The supervision machinery behind ``symphony/supervisor.py`` (its entry point).

Every process Symphony starts runs under one supervisor process of its own, so a job
outlives whoever launched it: a tmux window runs
``exec python -S /abs/symphony/supervisor.py SPEC.json`` and the node agent uses
:func:`launch_detached`. The state file the supervisor keeps (rewritten atomically on
every transition) is the truth about the process; :func:`read_state`, :func:`is_alive`
and :func:`stop` are the caller's side of that contract.

Standard library only, and careful about imports: a local cluster starts a hundred of
these at once. ``json``, ``signal`` and ``subprocess`` would pull in ``re``, ``enum``
and ``threading`` (about 15 ms together), so this module uses the C modules behind
them (``_json``, ``_signal``); prctl is bound through ``_ctypes``, only when supervising. It
lives apart from ``supervisor.py`` because a script run as ``python supervisor.py`` is
compiled on every start, while an imported module's bytecode is cached (~10 ms saved).
It imports nothing from the symphony package: the script imports it as a top-level
module from its own folder.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    import subprocess
    from collections.abc import Callable
    from typing import Any
else:
    try:  # `signal` itself imports enum (~5 ms); its C module has everything needed
        import _signal as signal
    except ImportError:  # pragma: no cover - non-CPython
        import signal
try:
    import _json
except ImportError:  # pragma: no cover - non-CPython
    _json = None  # type: ignore[assignment]

# -- tunables (each overridable per spec, mostly so tests run fast) ----------------
BACKOFF_CAP_SECONDS = 300.0  # delay never grows beyond max(backoff_seconds, this)
BACKOFF_RESET_SECONDS = 60.0  # a run at least this long resets the backoff growth
CRASH_LOOP_MIN_RUNTIME = 10.0  # runs shorter than this count towards a crash loop
CRASH_LOOP_RUNS = 3  # this many consecutive short runs = "crash-loop"
DEFAULT_BACKOFF_SECONDS = 5.0
DEFAULT_STOP_TIMEOUT = 10.0
HISTORY_LENGTH = 20
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
NOTE_PREFIX = "[symphony] "

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.py")  # entry point
RESTART_TYPES = ("never", "on-failure", "always")
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
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_POLL_SECONDS = 0.05  # fallback child polling (no pidfd) and leftover-group polling
_GROUP_GONE_SECONDS = 5.0  # after SIGKILL, how long to wait for a group to vanish
_READ_SIZE = 65536


# -- JSON without importing json (which imports re) --------------------------------
class _ScanContext:
    """The attributes _json's C scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.get
    memo: dict[str, str] = {}


_scan_once = _json.make_scanner(_ScanContext()) if _json is not None else None  # type: ignore[arg-type]


def loads(text: str) -> object:
    """``json.loads`` for one JSON document, through the C scanner alone."""
    if _scan_once is None:  # pragma: no cover - non-CPython
        import json

        return json.loads(text)
    body = text.strip(" \t\r\n")
    try:
        value, end = _scan_once(body, 0)
    except StopIteration as stop:
        raise ValueError(f"invalid JSON at character {stop.value}") from None
    if end != len(body):
        raise ValueError(f"extra data after JSON at character {end}")
    return value


def dumps(value: object) -> str:
    """``json.dumps(value)`` (same output, default separators) for plain JSON data."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value:
            out.append("NaN")
        elif value in (float("inf"), float("-inf")):
            out.append("Infinity" if value > 0 else "-Infinity")
        else:
            out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            out.append(", " if i else "")
            out.append(_encode_str(key))
            out.append(": ")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode_str(text: str) -> str:
    if _json is not None:
        return _json.encode_basestring_ascii(text)
    import json  # pragma: no cover - non-CPython

    return json.dumps(text)  # pragma: no cover


# -- the spec ---------------------------------------------------------------------
class SpecError(ValueError):
    """The spec is unreadable or a field is wrong; the message names the field."""


_SPEC_KEYS = frozenset(
    {
        "command", "env", "workdir", "stdin", "restart_policy", "log_file", "state_file",
        "echo", "stop_timeout", "log_max_bytes", "log_backups", "restart_window_seconds",
        "backoff_cap_seconds", "backoff_reset_seconds", "crash_loop_min_runtime", "meta",
    }
)  # fmt: skip
_POLICY_KEYS = frozenset({"type", "backoff_seconds", "max_restarts"})


class Spec:
    """A validated SPEC.json; build it with :func:`parse_spec` or :func:`load_spec`.

    Fields (defaults in brackets): ``command`` argv, exec'd directly; ``env`` overlaid
    on the supervisor's environment, a null value unsets [{}]; ``workdir`` [inherited];
    ``stdin`` "inherit" | "null" ["inherit"]; ``restart_policy`` {type never |
    on-failure | always ["never"], backoff_seconds [5], max_restarts, 0 = unlimited
    [0]}; ``restart_window_seconds``, 0 = lifetime [0]; ``log_file``, ``state_file``
    [none]; ``echo`` [false]; ``stop_timeout`` [10]; ``log_max_bytes``, 0 = never
    rotate [0]; ``log_backups`` [3]; ``backoff_cap_seconds`` [300];
    ``backoff_reset_seconds`` [60]; ``crash_loop_min_runtime`` [10]; ``meta``, copied
    into the state [{}]. Unknown fields are an error.
    """

    __slots__ = (
        "backoff_cap", "backoff_reset", "backoff_seconds", "command", "crash_loop_min_runtime",
        "echo", "env", "log_backups", "log_file", "log_max_bytes", "max_restarts", "meta",
        "restart", "restart_window", "state_file", "stdin", "stop_timeout", "workdir",
    )  # fmt: skip

    command: list[str]
    env: dict[str, str | None]
    workdir: str | None
    stdin: str
    restart: str
    backoff_seconds: float
    max_restarts: int
    restart_window: float
    backoff_cap: float
    backoff_reset: float
    crash_loop_min_runtime: float
    log_file: str | None
    state_file: str | None
    echo: bool
    stop_timeout: float
    log_max_bytes: int
    log_backups: int
    meta: object


def parse_spec(data: object) -> Spec:
    """Validate a decoded SPEC.json and fill in the defaults."""
    if not isinstance(data, dict):
        raise SpecError("the spec must be a JSON object")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise SpecError(f"unknown field(s): {', '.join(unknown)}")
    spec = Spec()
    command = data.get("command")
    if not (isinstance(command, list) and command and all(isinstance(a, str) for a in command)):
        raise SpecError("command: must be a non-empty list of strings")
    if not command[0]:
        raise SpecError("command: the program name is empty")
    spec.command = list(command)
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and k and "=" not in k and (v is None or isinstance(v, str))
        for k, v in env.items()
    ):
        raise SpecError("env: must map variable names to strings (or null to unset)")
    spec.env = dict(env)
    spec.workdir = _optional_path(data, "workdir")
    spec.log_file = _optional_path(data, "log_file")
    spec.state_file = _optional_path(data, "state_file")
    spec.stdin = data.get("stdin", "inherit")
    if spec.stdin not in ("inherit", "null"):
        raise SpecError('stdin: must be "inherit" or "null"')
    policy = data.get("restart_policy") or {}
    if not isinstance(policy, dict):
        raise SpecError("restart_policy: must be an object")
    unknown = sorted(set(policy) - _POLICY_KEYS)
    if unknown:
        raise SpecError(f"restart_policy: unknown field(s): {', '.join(unknown)}")
    spec.restart = policy.get("type", "never")
    if spec.restart not in RESTART_TYPES:
        raise SpecError(f"restart_policy.type: must be one of {', '.join(RESTART_TYPES)}")
    spec.backoff_seconds = _number(
        policy, "backoff_seconds", DEFAULT_BACKOFF_SECONDS, "restart_policy."
    )
    spec.max_restarts = int(_number(policy, "max_restarts", 0, "restart_policy.", integer=True))
    spec.restart_window = _number(data, "restart_window_seconds", 0.0)
    spec.backoff_cap = _number(data, "backoff_cap_seconds", BACKOFF_CAP_SECONDS)
    spec.backoff_reset = _number(data, "backoff_reset_seconds", BACKOFF_RESET_SECONDS)
    spec.crash_loop_min_runtime = _number(data, "crash_loop_min_runtime", CRASH_LOOP_MIN_RUNTIME)
    spec.stop_timeout = _number(data, "stop_timeout", DEFAULT_STOP_TIMEOUT)
    spec.log_max_bytes = int(_number(data, "log_max_bytes", 0, integer=True))
    spec.log_backups = int(_number(data, "log_backups", 3, integer=True))
    echo = data.get("echo", False)
    if not isinstance(echo, bool):
        raise SpecError("echo: must be true or false")
    spec.echo = echo
    spec.meta = data.get("meta", {})
    return spec


def _optional_path(data: dict[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SpecError(f"{key}: must be a non-empty path")
    return value


def _number(
    data: dict[str, object], key: str, default: float, prefix: str = "", *, integer: bool = False
) -> float:
    value = data.get(key, default)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value >= 0:
        what = "a whole number" if integer else "a number"
        raise SpecError(f"{prefix}{key}: must be {what} >= 0")
    return value


def load_spec(path: str) -> Spec:
    """Read and validate SPEC.json; any problem is a :class:`SpecError`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SpecError(f"cannot read the spec: {e.strerror}") from None
    try:
        data = loads(text)
    except ValueError as e:
        raise SpecError(f"not valid JSON: {e}") from None
    return parse_spec(data)


def write_spec(path: str, spec: dict[str, object]) -> None:
    """Validate ``spec`` and write it to ``path`` atomically (a caller's helper)."""
    parse_spec(spec)
    _write_atomic(path, dumps(spec))


# -- the restart decision (pure: times are passed in) ------------------------------
def backoff_delay(base: float, step: int, cap: float) -> float:
    """``base * 2**step``, never above ``max(base, cap)``."""
    limit = max(base, cap)
    return min(limit, base * 2.0 ** min(step, 64))


class Decision:
    """What to do after a run ended: give up (``final``) or wait ``delay`` seconds."""

    __slots__ = ("delay", "final", "reason", "state")

    def __init__(self, *, final: bool, state: str, delay: float = 0.0, reason: str = ""):
        self.final = final
        self.state = state
        self.delay = delay
        self.reason = reason

    def __repr__(self) -> str:
        return f"Decision(final={self.final}, state={self.state!r}, delay={self.delay}, reason={self.reason!r})"


class RestartLedger:
    """Counts restarts and short runs and decides what follows each exit.

    Kept free of clocks and I/O so the backoff schedule is plain data in, data out.
    """

    def __init__(
        self,
        *,
        policy: str = "never",
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        max_restarts: int = 0,
        restart_window: float = 0.0,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        backoff_reset: float = BACKOFF_RESET_SECONDS,
        crash_loop_min_runtime: float = CRASH_LOOP_MIN_RUNTIME,
        crash_loop_runs: int = CRASH_LOOP_RUNS,
    ):
        self.policy = policy
        self.backoff_seconds = backoff_seconds
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.backoff_cap = backoff_cap
        self.backoff_reset = backoff_reset
        self.crash_loop_min_runtime = crash_loop_min_runtime
        self.crash_loop_runs = crash_loop_runs
        self.restarts = 0
        self.step = 0  # k in backoff_seconds * 2**k
        self.short_runs = 0  # consecutive runs shorter than crash_loop_min_runtime
        self._restart_times: list[float] = []

    @classmethod
    def from_spec(cls, spec: Spec) -> RestartLedger:
        return cls(
            policy=spec.restart,
            backoff_seconds=spec.backoff_seconds,
            max_restarts=spec.max_restarts,
            restart_window=spec.restart_window,
            backoff_cap=spec.backoff_cap,
            backoff_reset=spec.backoff_reset,
            crash_loop_min_runtime=spec.crash_loop_min_runtime,
        )

    def decide(self, *, exit_code: int, runtime: float, now: float) -> Decision:
        """Account for a run that lasted ``runtime`` and ended with ``exit_code`` at ``now``."""
        if runtime >= self.backoff_reset:
            self.step = 0
        self.short_runs = self.short_runs + 1 if runtime < self.crash_loop_min_runtime else 0
        if self.policy == "never" or (self.policy == "on-failure" and exit_code == 0):
            return Decision(final=True, state="completed" if exit_code == 0 else "exited")
        if self.max_restarts and self.restarts_counted(now) >= self.max_restarts:
            within = f" within {_seconds(self.restart_window)}" if self.restart_window else ""
            reason = f"max_restarts ({self.max_restarts}){within} reached"
            return Decision(final=True, state="exited", reason=reason)
        delay = backoff_delay(self.backoff_seconds, self.step, self.backoff_cap)
        self.step += 1
        if self.short_runs >= self.crash_loop_runs:
            reason = f"crash loop: {self.short_runs} runs in a row shorter than {_seconds(self.crash_loop_min_runtime)}"
            return Decision(final=False, state="crash-loop", delay=delay, reason=reason)
        return Decision(final=False, state="backoff", delay=delay)

    def restarts_counted(self, now: float) -> int:
        """Restarts that count against max_restarts: all, or those inside the window."""
        if not self.restart_window:
            return self.restarts
        return sum(1 for t in self._restart_times if t > now - self.restart_window)

    def record_restart(self, now: float) -> None:
        self.restarts += 1
        if self.restart_window:
            self._restart_times = [t for t in self._restart_times if t > now - self.restart_window]
            self._restart_times.append(now)


def _seconds(value: float) -> str:
    return f"{value:g}s"


# -- the log ----------------------------------------------------------------------
INDEX_SUFFIX = ".idx"
INDEX_EVERY = 1.0  # seconds between two time marks in the index


class LogWriter:
    """Appends raw output to the log file (rotating by size) and echoes it to stdout.

    Beside ``x.log`` it keeps ``x.log.idx``: lines ``<unix time> <byte offset>``, one
    at the first write of every second at most, so ``logs --since`` can start at
    the right place without time-stamping the raw output itself.
    """

    def __init__(
        self,
        path: str | None,
        *,
        echo: bool = False,
        max_bytes: int = 0,
        backups: int = 3,
        echo_fd: int = 1,
    ):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._echo_fd = echo_fd if echo else -1
        self._fd = -1
        self._index_fd = -1
        self._last_mark = -INDEX_EVERY
        self._size = 0
        self._at_line_start = True
        self._write_failed = False
        if path is not None:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self._open()
            if self._size:  # a note must start on a line of its own
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    self._at_line_start = f.read(1) == b"\n"

    def _open(self, *, truncate: bool = False) -> None:
        assert self.path is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(self.path, flags | (os.O_TRUNC if truncate else 0), 0o644)
        self._size = os.fstat(self._fd).st_size
        try:
            trunc = os.O_TRUNC if truncate else 0
            self._index_fd = os.open(self.path + INDEX_SUFFIX, flags | trunc, 0o644)
        except OSError:
            self._index_fd = -1  # the log still works; only --since gets coarser
        self._last_mark = -INDEX_EVERY

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._at_line_start = data.endswith(b"\n")
        if self._echo_fd >= 0 and not _write_all(self._echo_fd, data):
            self._echo_fd = -1  # the pane or pipe went away; the log still has everything
        if self._fd < 0:
            return
        while data:
            if self.max_bytes and self._size + len(data) > self.max_bytes:
                room = self.max_bytes - self._size
                cut = data.rfind(b"\n", 0, max(room, 0)) + 1  # keep lines whole where we can
                if not cut:
                    if self._size:
                        self._rotate()
                        continue
                    cut = room  # one line longer than a whole file: split it
                self._append(data[:cut])
                data = data[cut:]
                self._rotate()
                continue
            self._append(data)
            break

    def note(self, text: str) -> None:
        """One ``[symphony] …`` line, always starting on a line of its own."""
        line = ("" if self._at_line_start else "\n") + NOTE_PREFIX + text + "\n"
        self.write(line.encode("utf-8", "replace"))

    def _append(self, data: bytes) -> None:
        now = time.time()
        if self._index_fd >= 0 and now - self._last_mark >= INDEX_EVERY:
            self._last_mark = now
            _write_all(self._index_fd, f"{now:.3f} {self._size}\n".encode())
        if _write_all(self._fd, data):
            self._size += len(data)
        elif not self._write_failed:
            self._write_failed = True
            print(f"symphony-supervisor: cannot write to {self.path}", file=sys.stderr)

    def _rotate(self) -> None:
        assert self.path is not None
        os.close(self._fd)
        self._fd = -1
        if self._index_fd >= 0:
            os.close(self._index_fd)
            self._index_fd = -1
        if self.backups <= 0:
            self._open(truncate=True)
            return
        for i in range(self.backups - 1, 0, -1):
            for suffix in ("", INDEX_SUFFIX):
                older = f"{self.path}.{i}{suffix}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i + 1}{suffix}")
        os.replace(self.path, f"{self.path}.1")
        if os.path.exists(self.path + INDEX_SUFFIX):
            os.replace(self.path + INDEX_SUFFIX, f"{self.path}.1{INDEX_SUFFIX}")
        self._open()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._index_fd >= 0:
            os.close(self._index_fd)
            self._index_fd = -1


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        return False
    return True


# -- starting a child ---------------------------------------------------------------
class StartFailure(Exception):
    """The command could not be started; ``exit_code`` is 127 or 126 as a shell would say."""

    def __init__(self, exit_code: int, reason: str):
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


_prctl: Callable[[int, int], int] | bool | None = False  # False = not looked up yet


def _libc_prctl() -> Callable[[int, int], int] | None:
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
    prctl = _libc_prctl()
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
        _write_all(err_w, report.encode("utf-8", "replace"))
    except BaseException as e:
        _write_all(err_w, f"{stage}\0{0}\0{e!r}".encode("utf-8", "replace"))
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


# -- the supervisor -----------------------------------------------------------------
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
            _write_all(self._wake_w, b"\0")

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
            prctl = _libc_prctl()
            self._adopting = prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
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
        pidfd = _pidfd_open(pid)
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
                        f"still running {_seconds(self.spec.stop_timeout)} (stop_timeout) after SIGTERM: SIGKILL"
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
            return _reap(pid)
        found = None
        while True:
            try:
                done, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return found
            if not done:
                return found
            if done == pid:
                found = _decode_status(raw)

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
        _send(pgid, signum, group=True)
        if self._adopting and _has_children():  # else there is nothing to look up in /proc
            for pid in _descendants(os.getpid()):
                if _pgid(pid) != pgid:
                    _send(pid, signum)

    def _leftovers(self, pgid: int) -> bool:
        """Whether anything of the last run is left, zombies included: ours are reaped
        here, and another descendant's become ours when their parent dies, so waiting
        for none at all means no zombie is left behind for a PID 1 that may not reap."""
        if _group_exists(pgid):
            return True
        if not self._adopting:
            return False
        self._collect(-1)
        # every orphan is re-parented to us, the subreaper, so any descendant left means a
        # child of ours is alive (or a zombie about to be reaped)
        return _has_children()

    def _kill_group(self, signum: int) -> None:
        if self._pid is not None:
            _send(self._pid, signum, group=True)

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
                _write_atomic(self.spec.state_file, dumps(self.state))
            except OSError as e:
                print(
                    f"symphony-supervisor: cannot write {self.spec.state_file}: {e}",
                    file=sys.stderr,
                )

    def _note(self, text: str) -> None:
        if self._log is not None:
            self._log.note(text)


def _pidfd_open(pid: int) -> int:
    """A descriptor that polls readable when ``pid`` exits (Linux ≥ 5.3), else -1."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


def _reap(pid: int) -> tuple[int, int | None] | None:
    """(exit code, signal) once ``pid`` ended, a signal death as 128+signum; else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # pragma: no cover - somebody else reaped it
        return (EXIT_CANNOT_EXECUTE, None)
    if not done:
        return None
    return _decode_status(status)


def _decode_status(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return 128 + signum, signum
    return os.waitstatus_to_exitcode(status), None


def _send(pid: int, signum: int, *, group: bool = False) -> None:
    """Signal a process (or process group) that may already be gone."""
    try:  # noqa: SIM105 - contextlib would cost start-up time
        (os.killpg if group else os.kill)(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed its uid
        return True
    return True


def _has_children() -> bool:
    """Whether this process has any child, running or exited, without reaping one."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _descendants(root: int) -> list[int]:
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


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass


def _write_atomic(path: str, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        ok = _write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    if not ok:
        os.unlink(tmp)
        raise OSError(errno.EIO, f"cannot write {tmp}")
    os.replace(tmp, path)


# -- the caller's side --------------------------------------------------------------
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
        _send(sup, signal.SIGTERM)
        while is_alive(sup) and time.monotonic() < deadline:
            time.sleep(0.02)
        if is_alive(sup):
            reason = "the supervisor did not stop in time; killed"
            _send(sup, signal.SIGKILL)
        else:
            state = read_state(state_path)
            if is_final(state):
                return state
            reason = "the supervisor exited without a final state; its process group was killed"
    else:
        reason = "the supervisor was gone; its process group was killed"
    pid = (state or {}).get("pid")
    if isinstance(pid, int) and pid > 0:
        _send(pid, signal.SIGKILL, group=True)
    final = dict(state or {})
    now = time.time()
    final.update(state="stopped", pid=None, reason=reason, updated_at=now, next_restart_at=None)
    final["finished_at"] = final.get("finished_at") or now
    _write_atomic(state_path, dumps(final))
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
            _write_atomic(state_file, dumps(state))
    except (OSError, ValueError):
        pass
