"""The process supervisor: restart policies, backoff, exit codes, stopping, logs, state.

Most tests run the real program (``python -S symphony/supervisor.py SPEC.json``) on
real child commands; the backoff arithmetic is also replayed in-process with an
injected clock and sleep, so long schedules cost no waiting.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony import supervision as sv
from symphony import supervisor

SUPERVISOR = str(Path(supervisor.__file__).resolve())
PY = sys.executable
REPO = str(Path(SUPERVISOR).parents[1])

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")

# A child that behaves differently on each run: argv = COUNTER PLAN, where PLAN is a
# comma list of "code" or "code:seconds" (sleep first); the last entry repeats.
SEQUENCE_CHILD = """
import os, sys, time
counter, plan = sys.argv[1], sys.argv[2].split(",")
n = int(open(counter).read()) if os.path.exists(counter) else 0
open(counter, "w").write(str(n + 1))
code, _, pause = plan[min(n, len(plan) - 1)].partition(":")
print(f"run {n}", flush=True)
if pause:
    time.sleep(float(pause))
sys.exit(int(code))
"""


# -- helpers ------------------------------------------------------------------------
def make_spec(tmp: Path, command: list[str], **fields: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "command": command,
        "log_file": str(tmp / "logs" / "p.log"),
        "state_file": str(tmp / "state" / "p.state.json"),
        "stdin": "null",
    }
    spec.update(fields)
    return spec


def sequence(tmp: Path, plan: str) -> list[str]:
    script = tmp / "seq.py"
    script.write_text(SEQUENCE_CHILD)
    return [PY, "-S", str(script), str(tmp / "counter"), plan]


def policy(kind: str, backoff: float = 0.02, max_restarts: int = 0) -> dict[str, object]:
    return {"type": kind, "backoff_seconds": backoff, "max_restarts": max_restarts}


class Result:
    def __init__(
        self, tmp: Path, spec: dict[str, object], proc: subprocess.CompletedProcess[bytes]
    ):
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode()
        self.stderr = proc.stderr.decode()
        self.state = sv.read_state(str(spec["state_file"]))
        self.log = (
            Path(str(spec["log_file"])).read_text() if Path(str(spec["log_file"])).exists() else ""
        )

    @property
    def notes(self) -> list[str]:
        return [
            line[len(sv.NOTE_PREFIX) :]
            for line in self.log.splitlines()
            if line.startswith(sv.NOTE_PREFIX)
        ]


def write(tmp: Path, spec: dict[str, object]) -> str:
    path = str(tmp / "spec.json")
    sv.write_spec(path, spec)
    return path


def run(
    tmp: Path,
    spec: dict[str, object],
    *,
    env: dict[str, str] | None = None,
    stdin_data: bytes | None = None,
) -> Result:
    """Run the supervisor program to the end."""
    command = [PY, "-S", SUPERVISOR, write(tmp, spec)]
    stdin = subprocess.DEVNULL if stdin_data is None else None
    proc = subprocess.run(
        command, input=stdin_data, stdin=stdin, capture_output=True, env=env, timeout=30
    )
    return Result(tmp, spec, proc)


def start(tmp: Path, spec: dict[str, object]) -> subprocess.Popen[bytes]:
    command = [PY, "-S", SUPERVISOR, write(tmp, spec)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def wait_for(predicate: Callable[[], T], *, timeout: float = 15.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def state_of(spec: dict[str, object]) -> dict[str, Any]:
    return sv.read_state(str(spec["state_file"])) or {}


def wait_state(spec: dict[str, object], *states: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        state = state_of(spec)
        return state if state.get("state") in states else None

    found = wait_for(reached, what=f"state {states}")
    assert found is not None
    return found


def pid_gone(pid: int) -> bool:
    return not sv.is_alive(pid)


# -- pure parts: backoff, restart decisions, JSON, spec, environment -------------------
@pytest.mark.parametrize(
    ("base", "step", "cap", "expected"),
    [
        (5, 0, 300, 5),
        (5, 1, 300, 10),
        (5, 5, 300, 160),
        (5, 6, 300, 300),  # 320 capped
        (5, 10_000, 300, 300),  # no overflow
        (500, 3, 300, 500),  # a base above the cap is the cap
        (0, 7, 300, 0),
        (0.05, 2, 0.4, 0.2),
        (0.05, 4, 0.4, 0.4),
    ],
)
def test_backoff_delay(base: float, step: int, cap: float, expected: float) -> None:
    assert sv.backoff_delay(base, step, cap) == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=0, max_value=1000),
    cap=st.floats(min_value=0, max_value=1000),
    reset=st.floats(min_value=0.001, max_value=100),
    runtimes=st.lists(st.floats(min_value=0, max_value=200), min_size=1, max_size=40),
)
def test_backoff_schedule_grows_until_reset_and_never_passes_cap(
    base: float, cap: float, reset: float, runtimes: list[float]
) -> None:
    ledger = sv.RestartLedger(
        policy="always", backoff_seconds=base, backoff_cap=cap, backoff_reset=reset
    )
    previous = None
    now = 0.0
    for runtime in runtimes:
        now += runtime
        decision = ledger.decide(exit_code=1, runtime=runtime, now=now)
        assert not decision.final
        assert decision.delay <= max(base, cap)
        if runtime >= reset:
            assert decision.delay == pytest.approx(min(base, max(base, cap)))
        elif previous is not None:
            assert decision.delay >= previous
        previous = decision.delay
        now += decision.delay
        ledger.record_restart(now)


@pytest.mark.parametrize(
    ("kind", "exit_code", "final", "state"),
    [
        ("never", 0, True, "completed"),
        ("never", 3, True, "exited"),
        ("never", 137, True, "exited"),
        ("on-failure", 0, True, "completed"),
        ("on-failure", 1, False, "backoff"),
        ("always", 0, False, "backoff"),
        ("always", 2, False, "backoff"),
    ],
)
def test_restart_decision_by_policy(kind: str, exit_code: int, final: bool, state: str) -> None:
    decision = sv.RestartLedger(policy=kind).decide(exit_code=exit_code, runtime=100, now=100)
    assert (decision.final, decision.state) == (final, state)


@pytest.mark.parametrize(
    ("window", "restart_times", "now", "gives_up"),
    [
        (0, [10, 20, 30], 1000, True),  # lifetime: 3 restarts used up
        (0, [10, 20], 1000, False),
        (60, [10, 20, 30], 1000, False),  # all outside the window
        (60, [950, 960, 970], 1000, True),
        (60, [10, 960, 970], 1000, False),  # only 2 inside
        (60, [940, 960, 970], 1000, False),  # 940 is exactly at the edge: outside
    ],
)
def test_max_restarts_counted_within_window(
    window: float, restart_times: list[float], now: float, gives_up: bool
) -> None:
    ledger = sv.RestartLedger(policy="always", max_restarts=3, restart_window=window)
    for t in restart_times:
        ledger.record_restart(t)
    decision = ledger.decide(exit_code=1, runtime=100, now=now)
    assert decision.final is gives_up
    if gives_up:
        assert decision.state == "exited"
        assert decision.reason.startswith("max_restarts (3)")


def test_crash_loop_needs_three_short_runs_in_a_row() -> None:
    ledger = sv.RestartLedger(policy="always", crash_loop_min_runtime=10)
    states = [ledger.decide(exit_code=1, runtime=r, now=0).state for r in [1, 1, 1, 2, 20, 1, 1, 1]]
    assert states == [
        "backoff",
        "backoff",
        "crash-loop",
        "crash-loop",
        "backoff",
        "backoff",
        "backoff",
        "crash-loop",
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_helpers_match_the_json_module(value: object) -> None:
    assert sv.dumps(value) == json.dumps(value)
    assert sv.loads(json.dumps(value)) == value
    assert sv.loads(json.dumps(value, indent=2)) == value


def test_json_nan_and_errors() -> None:
    nan = sv.loads("NaN")
    assert isinstance(nan, float) and math.isnan(nan)
    assert sv.dumps([float("inf"), float("nan")]) == json.dumps([float("inf"), float("nan")])
    for bad in ["", "{", '{"a": 1} x', "[1,]", "{'a': 1}"]:
        with pytest.raises(ValueError):
            sv.loads(bad)
    with pytest.raises(TypeError):
        sv.dumps({1: 2})
    with pytest.raises(TypeError):
        sv.dumps({"a": object()})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"command": []}, "command: must be a non-empty list"),
        ({"command": "echo hi"}, "command: must be a non-empty list"),
        ({"command": [""]}, "command: the program name is empty"),
        ({"env": {"A": 1}}, "env: must map"),
        ({"env": {"A=B": "x"}}, "env: must map"),
        ({"restart_policy": {"type": "sometimes"}}, "restart_policy.type: must be one of"),
        (
            {"restart_policy": {"type": "always", "backoff": 1}},
            "restart_policy: unknown field(s): backoff",
        ),
        (
            {"restart_policy": {"max_restarts": -1}},
            "restart_policy.max_restarts: must be a whole number",
        ),
        (
            {"restart_policy": {"max_restarts": 1.5}},
            "restart_policy.max_restarts: must be a whole number",
        ),
        ({"stop_timeout": "10"}, "stop_timeout: must be a number"),
        ({"stop_timeout": True}, "stop_timeout: must be a number"),
        ({"echo": "yes"}, "echo: must be true or false"),
        ({"stdin": "tty"}, 'stdin: must be "inherit" or "null"'),
        ({"log_file": ""}, "log_file: must be a non-empty path"),
        ({"colour": "red"}, "unknown field(s): colour"),
    ],
)
def test_bad_specs_are_rejected_with_the_field_named(
    change: dict[str, object], message: str
) -> None:
    data: dict[str, object] = {"command": ["true"], **change}
    with pytest.raises(sv.SpecError) as err:
        sv.parse_spec(data)
    assert message in str(err.value)


def test_spec_defaults() -> None:
    spec = sv.parse_spec({"command": ["true"]})
    assert (spec.restart, spec.backoff_seconds, spec.max_restarts) == ("never", 5.0, 0)
    assert (spec.stop_timeout, spec.echo, spec.stdin, spec.log_max_bytes, spec.log_backups) == (
        10.0,
        False,
        "inherit",
        0,
        3,
    )
    assert (spec.backoff_cap, spec.backoff_reset, spec.crash_loop_min_runtime) == (
        300.0,
        60.0,
        10.0,
    )


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ({}, {"BASE": "1", "DROP": "x", "PYTHONUNBUFFERED": "1"}),
        ({"A": "2", "DROP": None}, {"BASE": "1", "A": "2", "PYTHONUNBUFFERED": "1"}),
        ({"BASE": "over"}, {"BASE": "over", "DROP": "x", "PYTHONUNBUFFERED": "1"}),
        ({"PYTHONUNBUFFERED": ""}, {"BASE": "1", "DROP": "x", "PYTHONUNBUFFERED": ""}),
        ({"PYTHONUNBUFFERED": None}, {"BASE": "1", "DROP": "x"}),
    ],
)
def test_child_environment_overlay(
    overlay: dict[str, str | None], expected: dict[str, str]
) -> None:
    assert sv.child_environment(overlay, {"BASE": "1", "DROP": "x"}) == expected


# -- the log writer, in-process ------------------------------------------------------
def test_log_rotation_keeps_lines_whole_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "p.log"
    log = sv.LogWriter(str(path), max_bytes=100, backups=2)
    lines = [f"line {i:03d} {'x' * 20}\n".encode() for i in range(40)]  # 30 bytes each
    for i in range(0, 40, 3):
        log.write(b"".join(lines[i : i + 3]))
    log.close()
    files = [path.with_name("p.log.2"), path.with_name("p.log.1"), path]
    assert not path.with_name("p.log.3").exists()
    for f in files:
        data = f.read_bytes()
        assert 0 < len(data) <= 100
        assert data.endswith(b"\n") and data.startswith(b"line ")
    kept = b"".join(f.read_bytes() for f in files)
    assert b"".join(lines).endswith(kept)


def test_log_rotation_splits_a_line_longer_than_a_file_and_zero_backups_truncate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.log"
    log = sv.LogWriter(str(path), max_bytes=10, backups=0)
    log.write(b"abcdefghijklmnopqrstuvwxy")  # 25 bytes, no newline
    log.close()
    assert path.read_bytes() == b"uvwxy"
    assert sorted(tmp_path.iterdir()) == [path, path.with_name("p.log.idx")]


def test_log_index_marks_time_and_offset_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    path = tmp_path / "p.log"
    log = sv.LogWriter(str(path))
    log.write(b"one\n")
    now[0] += 0.5
    log.write(b"two\n")  # same second: no new mark
    now[0] += 1.0
    log.write(b"three\n")
    log.close()
    marks = path.with_name("p.log.idx").read_text().splitlines()
    assert marks == ["1000.000 0", "1001.500 8"]
    assert path.read_bytes()[8:] == b"three\n"


def test_notes_start_on_their_own_line_and_existing_log_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.log"
    path.write_bytes(b"earlier run without newline")
    log = sv.LogWriter(str(path))
    log.note("first")
    log.write(b"partial")
    log.note("second")
    log.close()
    assert (
        path.read_text()
        == "earlier run without newline\n[symphony] first\npartial\n[symphony] second\n"
    )


# -- small caller-side functions -------------------------------------------------------
def test_read_state_is_tolerant(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    assert sv.read_state(str(path)) is None
    path.write_text('{"state": "runn')
    assert sv.read_state(str(path)) is None
    path.write_text("[1, 2]")
    assert sv.read_state(str(path)) is None
    path.write_bytes(b"\xff\xfe")
    assert sv.read_state(str(path)) is None
    path.write_text('{"state": "running", "pid": 3}')
    assert sv.read_state(str(path)) == {"state": "running", "pid": 3}


def test_is_alive() -> None:
    assert sv.is_alive(os.getpid())
    for bad in (0, -1, None, True, "12"):
        assert not sv.is_alive(bad)
    done = subprocess.Popen(["true"])
    done.wait()
    assert not sv.is_alive(done.pid)
    zombie = subprocess.Popen(["true"])
    wait_for(
        lambda: Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] == "Z", what="zombie"
    )
    assert not sv.is_alive(zombie.pid)  # exited but not reaped yet
    zombie.wait()


# -- the Supervisor class in-process, with injected clock and sleep --------------------
class FakeTime:
    """A clock that only moves when the supervisor sleeps; records each sleep."""

    def __init__(self, spec: dict[str, object]) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []
        self.states: list[str] = []
        self.spec = spec

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.states.append(str(state_of(self.spec)["state"]))
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_schedule_in_process_with_fake_time(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        ["sh", "-c", "exit 1"],
        restart_policy=policy("always", 5, 24),
        backoff_cap_seconds=40,
    )
    fake = FakeTime(spec)
    rc = sv.Supervisor(sv.parse_spec(spec), clock=fake.clock, sleep=fake.sleep).run()
    assert rc == 1
    assert fake.sleeps == [5, 10, 20, 40] + [40] * 20
    assert (
        fake.states == ["backoff", "backoff"] + ["crash-loop"] * 22
    )  # every run took 0 fake seconds
    state = state_of(spec)
    assert state["state"] == "exited" and state["restarts"] == 24 and state["last_exit_code"] == 1
    assert state["reason"] == "max_restarts (24) reached; exited with code 1"
    assert len(state["history"]) == sv.HISTORY_LENGTH
    assert state["first_started_at"] == 1000.0
    assert state["started_at"] == 1000.0 + sum(fake.sleeps)


def test_stop_requested_during_backoff_in_process(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, ["sh", "-c", "exit 4"], restart_policy=policy("on-failure", 30))
    fake = FakeTime(spec)
    sup = sv.Supervisor(
        sv.parse_spec(spec), clock=fake.clock, sleep=lambda s: sup.request_stop("told to")
    )
    assert sup.run() == 0
    state = state_of(spec)
    assert (state["state"], state["reason"], state["last_exit_code"], state["restarts"]) == (
        "stopped",
        "told to",
        4,
        0,
    )


# -- the real program ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "max_restarts", "plan", "state", "restarts", "rc", "reason"),
    [
        ("never", 0, "0", "completed", 0, 0, "exited with code 0"),
        ("never", 0, "3", "exited", 0, 3, "exited with code 3"),
        ("on-failure", 0, "1,2,0", "completed", 2, 0, "exited with code 0"),
        (
            "on-failure",
            2,
            "1,1,1,0",
            "exited",
            2,
            1,
            "max_restarts (2) reached; exited with code 1",
        ),
        ("always", 3, "0,0,5,0", "exited", 3, 0, "max_restarts (3) reached; exited with code 0"),
    ],
)
def test_restart_policies(
    tmp_path: Path,
    kind: str,
    max_restarts: int,
    plan: str,
    state: str,
    restarts: int,
    rc: int,
    reason: str,
) -> None:
    result = run(
        tmp_path,
        make_spec(
            tmp_path, sequence(tmp_path, plan), restart_policy=policy(kind, 0.01, max_restarts)
        ),
    )
    assert result.rc == rc, result.stderr
    assert result.state is not None
    assert (result.state["state"], result.state["restarts"], result.state["reason"]) == (
        state,
        restarts,
        reason,
    )
    assert result.state["pid"] is None and result.state["next_restart_at"] is None
    assert len(result.state["history"]) == restarts + 1
    assert [f"run {i}" for i in range(restarts + 1)] == [
        ln for ln in result.log.splitlines() if ln.startswith("run")
    ]


@pytest.mark.parametrize(
    ("command", "code", "reason"),
    [
        (["sh", "-c", "exit 0"], 0, "exited with code 0"),
        (["sh", "-c", "exit 2"], 2, "exited with code 2"),
        (["sh", "-c", "exit 255"], 255, "exited with code 255"),
        (["sh", "-c", "kill -KILL $$"], 137, "killed by SIGKILL (exit code 137)"),
        (["sh", "-c", "kill -TERM $$"], 143, "killed by SIGTERM (exit code 143)"),
        (["sh", "-c", "kill -SEGV $$"], 139, "killed by SIGSEGV (exit code 139)"),
        (["sh", "-c", "kill -ABRT $$"], 134, "killed by SIGABRT (exit code 134)"),
    ],
)
def test_exit_codes_and_signal_deaths(
    tmp_path: Path, command: list[str], code: int, reason: str
) -> None:
    result = run(tmp_path, make_spec(tmp_path, command))
    assert result.state is not None
    assert (result.rc, result.state["last_exit_code"], result.state["reason"]) == (
        code,
        code,
        reason,
    )
    assert result.state["history"][0]["exit_code"] == code
    assert result.notes == [reason]


def test_backoff_grows_caps_and_resets_after_a_long_run(tmp_path: Path) -> None:
    # runs 0-4 fail at once, run 5 lasts 2.5 s (>= reset), run 6 fails at once, run 7 succeeds;
    # "at once" only has to stay under 2 s, which a loaded machine manages
    spec = make_spec(
        tmp_path,
        sequence(tmp_path, "1,1,1,1,1,1:2.5,1,0"),
        restart_policy=policy("on-failure", 0.05),
        backoff_cap_seconds=0.4,
        backoff_reset_seconds=2.0,
        crash_loop_min_runtime=2.0,
    )
    result = run(tmp_path, spec)
    assert result.rc == 0 and result.state is not None and result.state["restarts"] == 7
    delays = [float(m) for m in re.findall(r"restarting in ([0-9.]+)s", result.log)]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.4, 0.05, 0.1]
    crash = ["crash loop" in n for n in result.notes if "restarting" in n]
    assert crash == [False, False, True, True, True, False, False]
    history = result.state["history"]
    assert isinstance(history, list)
    for before, after, delay in zip(history[:-1], history[1:], delays, strict=True):
        assert after["started_at"] - before["finished_at"] >= delay * 0.9


@pytest.mark.parametrize(("window", "state", "restarts"), [(0, "exited", 2), (0.2, "completed", 4)])
def test_max_restarts_within_a_window(
    tmp_path: Path, window: float, state: str, restarts: int
) -> None:
    # restarts come >= 0.3 s apart: a 0.2 s window never holds two of them
    spec = make_spec(
        tmp_path,
        sequence(tmp_path, "1,1,1,1,0"),
        restart_policy=policy("on-failure", 0.3, 2),
        backoff_cap_seconds=0,
        restart_window_seconds=window,
    )
    result = run(tmp_path, spec)
    assert result.state is not None
    assert (result.state["state"], result.state["restarts"]) == (state, restarts)
    if state == "exited":
        assert result.state["reason"] == "max_restarts (2) reached; exited with code 1"


def test_unrunnable_commands(tmp_path: Path) -> None:
    not_exec = tmp_path / "script.sh"
    not_exec.write_text("#!/bin/sh\necho hi\n")
    no_interpreter = tmp_path / "broken.sh"
    no_interpreter.write_text("#!/nonexistent/interpreter\n")
    no_interpreter.chmod(0o755)
    cases = [
        (["no-such-command-xyz"], None, 127, "command not found: no-such-command-xyz"),
        ([str(tmp_path / "missing")], None, 127, f"command not found: {tmp_path / 'missing'}"),
        ([str(not_exec)], None, 126, f"cannot execute {not_exec}: Permission denied"),
        ([str(no_interpreter)], None, 126, f"cannot execute {no_interpreter}: bad interpreter"),
        (
            ["true"],
            str(tmp_path / "nowhere"),
            127,
            f"bad workdir: {tmp_path / 'nowhere'}: No such file or directory",
        ),
        (["true"], str(not_exec), 127, f"bad workdir: {not_exec}: Not a directory"),
    ]
    for i, (command, workdir, code, reason) in enumerate(cases):
        case = tmp_path / f"case{i}"
        result = run(case, make_spec(case, command, workdir=workdir))
        assert result.state is not None
        assert (result.rc, result.state["state"], result.state["last_exit_code"]) == (
            code,
            "exited",
            code,
        )
        assert result.state["reason"] == reason
        assert result.notes == [reason]


def test_unrunnable_command_follows_the_restart_policy(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        make_spec(tmp_path, ["no-such-command-xyz"], restart_policy=policy("on-failure", 0.01, 2)),
    )
    assert result.state is not None
    assert (result.rc, result.state["state"], result.state["restarts"]) == (127, "exited", 2)
    assert result.notes == [
        "command not found: no-such-command-xyz; restarting in 0.01s (restart 1)",
        "command not found: no-such-command-xyz; restarting in 0.02s (restart 2)",
        "max_restarts (2) reached; command not found: no-such-command-xyz",
    ]


def test_workdir_and_relative_command(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "run.sh").write_text("#!/bin/sh\npwd\n")
    (work / "run.sh").chmod(0o755)
    result = run(tmp_path, make_spec(tmp_path, ["./run.sh"], workdir=str(work)))
    assert result.rc == 0 and result.log == f"{work}\n[symphony] exited with code 0\n"


# A child that ignores SIGTERM (or not), starts a grandchild in its group, and reports.
STUBBORN_CHILD = """
import signal, subprocess, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen(["sleep", "300"])
open(sys.argv[2], "w").write(str(grandchild.pid))
print("ready")
time.sleep(300)
"""


@pytest.mark.parametrize(
    ("signum", "term"),
    [
        (signal.SIGTERM, "ignore"),
        (signal.SIGINT, "obey"),
        (signal.SIGHUP, "ignore"),
        (signal.SIGTERM, "obey"),
    ],
)
def test_stop_signals_stop_the_whole_group(tmp_path: Path, signum: int, term: str) -> None:
    script = tmp_path / "child.py"
    script.write_text(STUBBORN_CHILD)
    pidfile = tmp_path / "grandchild.pid"
    spec = make_spec(
        tmp_path,
        [PY, str(script), term, str(pidfile)],
        restart_policy=policy("always"),
        stop_timeout=0.5,
    )
    proc = start(tmp_path, spec)
    state = wait_state(spec, "running")
    wait_for(lambda: "ready" in Path(str(spec["log_file"])).read_text(), what="child ready")
    child, grandchild = int(state["pid"]), int(pidfile.read_text())
    began = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=15) == 0
    took = time.monotonic() - began
    final = state_of(spec)
    name = signal.Signals(signum).name
    assert (final["state"], final["reason"], final["pid"]) == (
        "stopped",
        f"stopped by {name}",
        None,
    )
    notes = Result(tmp_path, spec, subprocess.CompletedProcess([], 0, b"", b"")).notes
    assert notes[0] == f"stopping: SIGTERM to process group {child}"
    if term == "ignore":
        assert final["last_exit_code"] == 137 and took >= 0.5
        assert notes[1] == "still running 0.5s (stop_timeout) after SIGTERM: SIGKILL"
    else:
        assert final["last_exit_code"] == 143
    assert notes[-1] == f"stopped by {name}"
    wait_for(lambda: pid_gone(child) and pid_gone(grandchild), timeout=5, what="group gone")


def test_stop_function_on_a_detached_supervisor(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(STUBBORN_CHILD)
    pidfile = tmp_path / "grandchild.pid"
    spec = make_spec(
        tmp_path, [PY, str(script), "ignore", str(pidfile)], stop_timeout=0.3, meta={"job": 7}
    )
    sup = sv.launch_detached(write(tmp_path, spec))
    state = wait_state(spec, "running")
    assert state["supervisor_pid"] == sup and sv.is_alive(sup) and state["meta"] == {"job": 7}
    wait_for(pidfile.exists, what="grandchild pid")
    grandchild = int(pidfile.read_text())
    final = sv.stop(str(spec["state_file"]), timeout=10)
    assert (
        final is not None
        and final["state"] == "stopped"
        and final["reason"] == "stopped by SIGTERM"
    )
    assert not sv.is_alive(sup)
    wait_for(
        lambda: pid_gone(int(state["pid"])) and pid_gone(grandchild), timeout=5, what="group gone"
    )
    assert sv.stop(str(spec["state_file"])) == final  # stopping again changes nothing


def test_stop_during_backoff_is_prompt(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, ["sh", "-c", "exit 9"], restart_policy=policy("on-failure", 60))
    proc = start(tmp_path, spec)
    state = wait_state(spec, "backoff")
    assert state["next_restart_at"] == pytest.approx(state["finished_at"] + 60)
    began = time.monotonic()
    final = sv.stop(str(spec["state_file"]), timeout=10)
    assert time.monotonic() - began < 5
    assert final is not None and (final["state"], final["last_exit_code"]) == ("stopped", 9)
    assert proc.wait(timeout=5) == 0


def test_stop_when_the_supervisor_vanished(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, ["sleep", "300"])
    proc = start(tmp_path, spec)
    child = int(wait_state(spec, "running")["pid"])
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    wait_for(lambda: pid_gone(child), timeout=5, what="child killed by PR_SET_PDEATHSIG")
    final = sv.stop(str(spec["state_file"]))
    assert (
        final is not None
        and final["state"] == "stopped"
        and "supervisor was gone" in str(final["reason"])
    )
    assert state_of(spec) == final


def test_leftover_group_members_are_stopped_when_the_process_exits(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    spec = make_spec(
        tmp_path, ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo done"], stop_timeout=2
    )
    result = run(tmp_path, spec)
    assert result.rc == 0 and result.state is not None and result.state["state"] == "completed"
    assert wait_for(
        lambda: pid_gone(int(pidfile.read_text())), timeout=5, what="background sleep gone"
    )
    assert result.log.startswith("done\n[symphony] process exited; stopping the rest of its group")


def test_log_keeps_the_whole_output_across_restarts(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path, sequence(tmp_path, "1,2,0"), restart_policy=policy("on-failure", 0.01)
    )
    Path(str(spec["log_file"])).parent.mkdir(parents=True)
    Path(str(spec["log_file"])).write_text("from before\n")
    result = run(tmp_path, spec)
    assert result.log == (
        "from before\nrun 0\n[symphony] exited with code 1; restarting in 0.01s (restart 1)\n"
        "run 1\n[symphony] exited with code 2; restarting in 0.02s (restart 2)\n"
        "run 2\n[symphony] exited with code 0\n"
    )


@pytest.mark.parametrize("echo", [True, False])
def test_echo_copies_output_to_stdout(tmp_path: Path, echo: bool) -> None:
    spec = make_spec(tmp_path, ["sh", "-c", "echo out; echo err >&2"], echo=echo)
    result = run(tmp_path, spec)
    assert result.log == "out\nerr\n[symphony] exited with code 0\n"
    assert result.stdout == (result.log if echo else "")


def test_log_rotation_in_a_real_run(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(300):\n    print(f'line {i:04d} ' + 'x' * 29)\n"  # 40 bytes a line
    spec = make_spec(tmp_path, [PY, "-S", "-c", code], log_max_bytes=2000, log_backups=2)
    result = run(tmp_path, spec)
    log = Path(str(spec["log_file"]))
    files = [log.with_name("p.log.2"), log.with_name("p.log.1"), log]
    assert not log.with_name("p.log.3").exists()
    for f in files:
        assert 0 < f.stat().st_size <= 2000
    tail = "".join(f.read_text() for f in files)
    assert tail.endswith("line 0299 " + "x" * 29 + "\n[symphony] exited with code 0\n")
    numbers = [int(m) for m in re.findall(r"^line (\d+)", tail, re.M)]
    assert numbers == list(range(numbers[0], 300))
    assert result.rc == 0


def test_state_file_is_always_parseable_while_restarting(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path, ["true"], restart_policy=policy("always", 0, 150), meta={"blob": "x" * 20_000}
    )
    path = Path(str(spec["state_file"]))
    seen: list[str] = []
    failures: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            try:
                seen.append(json.loads(text)["state"])
            except ValueError:
                failures.append(text[:80])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = run(tmp_path, spec)
    finally:
        done.set()
        thread.join()
    assert result.state is not None and result.state["restarts"] == 150
    assert failures == []
    assert len(seen) > 20 and {"starting", "running", "backoff", "crash-loop"} & set(seen)
    assert [p.name for p in path.parent.iterdir()] == ["p.state.json"]  # no temporary files left


ENV_CHILD = "import os, json; print(json.dumps({k: os.environ.get(k) for k in ['BASE', 'DROP', 'NEW', 'PYTHONUNBUFFERED']}))"


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        (
            {"NEW": "n", "DROP": None},
            {"BASE": "b", "DROP": None, "NEW": "n", "PYTHONUNBUFFERED": "1"},
        ),
        (
            {"BASE": "over", "PYTHONUNBUFFERED": "0"},
            {"BASE": "over", "DROP": "d", "NEW": None, "PYTHONUNBUFFERED": "0"},
        ),
    ],
)
def test_env_overlay_in_a_real_run(
    tmp_path: Path, overlay: dict[str, str | None], expected: dict[str, str]
) -> None:
    env = {**os.environ, "BASE": "b", "DROP": "d"}
    env.pop("PYTHONUNBUFFERED", None)
    result = run(tmp_path, make_spec(tmp_path, [PY, "-c", ENV_CHILD], env=overlay), env=env)
    assert json.loads(result.log.splitlines()[0]) == expected


def test_python_output_reaches_the_log_while_running(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path, [PY, "-c", "import time; print('hello'); time.sleep(300)"], stop_timeout=1
    )
    proc = start(tmp_path, spec)
    log = Path(str(spec["log_file"]))
    wait_for(lambda: log.exists() and "hello" in log.read_text(), what="unbuffered output")
    proc.terminate()
    assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize(("stdin", "expected"), [("null", "''"), ("inherit", "'typed'")])
def test_stdin(tmp_path: Path, stdin: str, expected: str) -> None:
    spec = make_spec(tmp_path, [PY, "-c", "import sys; print(repr(sys.stdin.read()))"], stdin=stdin)
    result = run(tmp_path, spec, stdin_data=b"typed")
    assert result.log.splitlines()[0] == expected


def test_bad_spec_exits_2_with_one_line_and_a_failed_state(tmp_path: Path) -> None:
    state_file = tmp_path / "s.json"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"command": [], "state_file": str(state_file)}))
    proc = subprocess.run([PY, "-S", SUPERVISOR, str(spec_file)], capture_output=True, timeout=30)
    assert proc.returncode == 2
    assert (
        proc.stderr.decode()
        == f"symphony-supervisor: {spec_file}: command: must be a non-empty list of strings\n"
    )
    state = sv.read_state(str(state_file))
    assert state is not None and state["state"] == "failed"
    assert state["reason"] == "bad spec: command: must be a non-empty list of strings"
    for args, rc in [
        ([str(tmp_path / "missing.json")], 2),
        ([], 2),
        (["a", "b"], 2),
        (["--help"], 0),
    ]:
        proc = subprocess.run([PY, "-S", SUPERVISOR, *args], capture_output=True, timeout=30)
        assert proc.returncode == rc
        assert len(proc.stderr.decode().splitlines()) == 1 and b"Traceback" not in proc.stderr


def test_unwritable_log_fails_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    spec = make_spec(tmp_path, ["true"], log_file=str(blocker / "p.log"))
    result = run(tmp_path, spec)
    assert result.rc == 1 and result.state is not None and result.state["state"] == "failed"
    assert str(result.state["reason"]).startswith(f"cannot open log file {blocker / 'p.log'}")


def test_runs_as_a_module(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, ["sh", "-c", "echo via -m; exit 5"])
    proc = subprocess.run(
        [PY, "-m", "symphony.supervisor", write(tmp_path, spec)],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 5
    assert state_of(spec)["state"] == "exited"


def test_startup_imports_stay_minimal() -> None:
    # what the script does: its folder is sys.path[0] and it imports the top-level package
    # supervision from there (not symphony.supervision)
    heavy = {"json", "re", "enum", "typing", "subprocess", "threading", "ctypes", "signal"}
    heavy |= {"contextlib", "dataclasses", "symphony"}
    probe = (
        f"import sys; sys.path.insert(0, {os.path.dirname(SUPERVISOR)!r}); import supervision\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
        "print(supervision.__file__)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'supervision'))"
    )
    out = subprocess.run([PY, "-S", "-E", "-c", probe], capture_output=True, timeout=30, check=True)
    loaded_heavy, package, modules = out.stdout.decode().splitlines()
    assert loaded_heavy == "[]"
    assert package == os.path.join(os.path.dirname(SUPERVISOR), "supervision", "__init__.py")
    # each module costs every supervisor start about 0.1 ms of CPU: add one only on purpose
    expected = [
        "supervision",
        *(f"supervision.{m}" for m in ("files", "loop", "processes", "spec")),
    ]
    assert modules == repr(expected)
    assert len(Path(SUPERVISOR).read_text().splitlines()) < 80  # compiled on every start


def test_entry_point_reexports_the_callers_api() -> None:
    for name in supervisor.__all__:
        assert getattr(supervisor, name) is getattr(sv, name)
    assert {"read_state", "is_alive", "stop", "launch_detached", "write_spec", "Supervisor"} <= set(
        supervisor.__all__
    )
    assert sv.SCRIPT == SUPERVISOR


def test_orphans_are_adopted_and_reaped(tmp_path: Path) -> None:
    pidfile = tmp_path / "orphan.pid"
    # the subshell exits at once, so its sleep is orphaned while the main process runs on
    spec = make_spec(tmp_path, ["sh", "-c", f"(sleep 300 & echo $! > {pidfile}); sleep 300"])
    proc = start(tmp_path, spec)
    wait_state(spec, "running")
    orphan = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="orphan"))

    def parent_of(pid: int) -> int:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rfind(")") + 2 :].split()[1])

    wait_for(lambda: parent_of(orphan) == proc.pid, what="orphan adopted by the supervisor")
    proc.terminate()
    assert proc.wait(timeout=15) == 0
    assert not Path(f"/proc/{orphan}").exists()  # killed with the group and reaped, no zombie


@pytest.mark.parametrize("ending", ["stop", "main exits"])
def test_a_descendant_that_left_the_process_group_does_not_survive(
    tmp_path: Path, ending: str
) -> None:
    """setsid puts it in a session of its own, out of reach of the group's SIGTERM."""
    pidfile = tmp_path / "escaped.pid"
    go = tmp_path / "go"
    main = "sleep 300" if ending == "stop" else f"while [ ! -e {go} ]; do sleep 0.05; done"
    spec = make_spec(tmp_path, ["sh", "-c", f"setsid sleep 300 & echo $! > {pidfile}; {main}"])
    proc = start(tmp_path, spec)
    child = int(wait_state(spec, "running")["pid"])
    escaped = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="pid"))
    wait_for(lambda: os.getpgid(escaped) == escaped, what="setsid")  # really outside the group
    assert os.getpgid(child) == child != escaped
    if ending == "stop":
        proc.terminate()
    else:
        go.touch()
    assert proc.wait(timeout=15) == 0
    assert not Path(f"/proc/{escaped}").exists()  # signalled, then reaped by the supervisor


def test_stop_kills_a_supervisor_that_does_not_answer(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, ["sleep", "300"])
    proc = start(tmp_path, spec)
    child = int(wait_state(spec, "running")["pid"])
    proc.send_signal(signal.SIGSTOP)
    final = sv.stop(str(spec["state_file"]), timeout=0.5)
    assert final is not None and final["state"] == "stopped"
    assert final["reason"] == "the supervisor did not stop in time; killed"
    assert proc.wait(timeout=5) == -signal.SIGKILL
    wait_for(lambda: pid_gone(child), timeout=5, what="child gone")


PANE_CHILD = """
import os, time
print("tty", os.isatty(0))
print("got", input("name? "))
time.sleep(300)
"""


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """tmux on a socket of its own, killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    socket = f"symphony-supervisor-test-{os.getpid()}-{tmp_path.name}"
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", socket, *args], env=env, capture_output=True, text=True, timeout=10
        )

    yield call
    call("kill-server")


def test_in_a_tmux_pane_input_reaches_the_child_and_ctrl_c_stops_it(
    tmp_path: Path, tmux: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    script = tmp_path / "pane.py"
    script.write_text(PANE_CHILD)
    spec = make_spec(
        tmp_path, [PY, str(script)], stdin="inherit", echo=True, restart_policy=policy("always")
    )
    command = f"exec {PY} -S {SUPERVISOR} {write(tmp_path, spec)}"
    assert tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "20", command).returncode == 0
    log = Path(str(spec["log_file"]))
    wait_for(lambda: log.exists() and "name? " in log.read_text(), what="prompt")
    tmux("send-keys", "-t", "t", "bob", "Enter")
    wait_for(lambda: "got bob" in log.read_text(), what="input to reach the child")
    assert log.read_text().startswith("tty True\nname? got bob\n")
    assert "got bob" in tmux("capture-pane", "-p", "-t", "t").stdout  # echoed to the pane
    tmux("send-keys", "-t", "t", "C-c")
    final = wait_state(spec, "stopped")
    assert final["reason"] == "stopped by SIGINT"
