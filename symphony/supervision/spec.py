"""SPEC.json and the restart rule it sets: validated once into a :class:`Spec`, with the
defaults, and the :class:`RestartLedger` that decides what follows each exit.

A bad spec is a :class:`SpecError` whose message names the field, so the supervisor can
print one line and record it in the state file. The restart decision is pure (times
are passed in), so a backoff schedule is data in, data out.
"""

from __future__ import annotations

from .files import dumps, loads, write_atomic

# -- tunables (each overridable per spec, mostly so tests run fast) ----------------
BACKOFF_CAP_SECONDS = 300.0  # delay never grows beyond max(backoff_seconds, this)
BACKOFF_RESET_SECONDS = 60.0  # a run at least this long resets the backoff growth
CRASH_LOOP_MIN_RUNTIME = 10.0  # runs shorter than this count towards a crash loop
DEFAULT_BACKOFF_SECONDS = 5.0
DEFAULT_STOP_TIMEOUT = 10.0
RESTART_TYPES = ("never", "on-failure", "always")


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
    write_atomic(path, dumps(spec))


# -- the restart decision (pure: times are passed in) ------------------------------
CRASH_LOOP_RUNS = 3  # this many consecutive short runs = "crash-loop" (not per spec)


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
            within = f" within {seconds(self.restart_window)}" if self.restart_window else ""
            reason = f"max_restarts ({self.max_restarts}){within} reached"
            return Decision(final=True, state="exited", reason=reason)
        delay = backoff_delay(self.backoff_seconds, self.step, self.backoff_cap)
        self.step += 1
        if self.short_runs >= self.crash_loop_runs:
            reason = f"crash loop: {self.short_runs} runs in a row shorter than {seconds(self.crash_loop_min_runtime)}"
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


def seconds(value: float) -> str:
    return f"{value:g}s"
