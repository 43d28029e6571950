"""The tmux cluster's parts: status mapping and port assignment (pure), log reading, batching."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.clusters.tmux_files import ProcessFiles, key_of, parse_ports, safe_name
from symphony.clusters.tmux_logs import follow, read_history
from symphony.clusters.tmux_server import MAX_BATCH_BYTES, TmuxServer
from symphony.clusters.tmux_status import Window, observed
from symphony.model import ProcessState
from symphony.ports import assign_ports

# --------------------------------------------------------------------------- status (pure)

ALIVE = Window("exp", "@1", "g/p", "h1", "local", pane_pid=100, pane_dead=False, dead_status=None)
DEAD = Window("exp", "@1", "g/p", "h1", "local", pane_pid=100, pane_dead=True, dead_status=0)


def st_(state: str, **extra: Any) -> dict[str, Any]:
    return {"state": state, "supervisor_pid": 100, "pid": 200, "restarts": 0, **extra}


@pytest.mark.parametrize(
    ("window", "state", "expected", "ready", "exit_code", "reason"),
    [
        (ALIVE, None, ProcessState.PENDING, False, None, "starting"),
        (DEAD, None, ProcessState.UNKNOWN, False, None, "supervisor exited (status 0) before reporting a state; apply restarts it"),
        (ALIVE, st_("starting"), ProcessState.PENDING, False, None, ""),
        (ALIVE, st_("running", started_at=5.0), ProcessState.RUNNING, True, None, ""),
        (ALIVE, st_("backoff", last_exit_code=3), ProcessState.BACKOFF, False, 3, ""),
        (ALIVE, st_("crash-loop", last_exit_code=2, reason="crash loop: 3 runs"), ProcessState.CRASH_LOOP, False, 2, "crash loop: 3 runs"),
        (DEAD, st_("exited", last_exit_code=1), ProcessState.EXITED, False, 1, ""),
        (DEAD, st_("completed", last_exit_code=0), ProcessState.COMPLETED, False, 0, ""),
        (DEAD, st_("stopped", last_exit_code=143), ProcessState.EXITED, False, 143, "stopped"),
        (DEAD, st_("failed", reason="bad spec: command"), ProcessState.EXITED, False, None, "bad spec: command"),
        (DEAD, st_("running"), ProcessState.UNKNOWN, False, None, "supervisor (pid 100) vanished while running without a final state; apply restarts it"),
        (DEAD, st_("crash-loop"), ProcessState.UNKNOWN, False, None, "supervisor (pid 100) vanished while crash-loop without a final state; apply restarts it"),
        (ALIVE, st_("sleeping"), ProcessState.UNKNOWN, False, None, "unknown supervisor state 'sleeping'"),
        # a state file left by an earlier supervisor in this window says nothing about this one
        (ALIVE, {**st_("completed"), "supervisor_pid": 99}, ProcessState.PENDING, False, None, "starting"),
        (ALIVE, ["not", "a", "dict"], ProcessState.PENDING, False, None, "starting"),
    ],
)  # fmt: skip
def test_observed_state_table(
    window: Window,
    state: Any,
    expected: ProcessState,
    ready: bool,
    exit_code: int | None,
    reason: str,
) -> None:
    got = observed(window, state, node="localhost")
    assert (got.state, got.ready, got.exit_code, got.reason) == (expected, ready, exit_code, reason)
    assert (got.experiment, got.key, got.group, got.name) == ("exp", "g/p", "g", "p")
    # an orphaned window matches no spec, so the next apply restarts it
    orphaned = expected is ProcessState.UNKNOWN and window.pane_dead
    assert got.spec_hash == ("" if orphaned else "h1")


def test_running_carries_pid_start_and_restarts() -> None:
    got = observed(ALIVE, st_("running", started_at=12.5, restarts=4), node="box")
    assert (got.pid, got.started_at, got.restarts, got.node, got.cluster) == (
        200,
        12.5,
        4,
        "box",
        "local",
    )


# --------------------------------------------------------------------------- ports (pure)

names = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), unique=True, max_size=6)


@given(
    names=names,
    fixed=st.dictionaries(st.integers(0, 5), st.integers(20000, 20005), max_size=3),
    previous=st.lists(st.integers(20000, 20010), unique=True, max_size=6),
    taken=st.sets(st.integers(20000, 20010), max_size=4),
)
def test_assigned_ports_are_distinct_fixed_wins_previous_kept(
    names: list[str], fixed: dict[int, int], previous: list[int], taken: set[int]
) -> None:
    fixed_ports = {names[i]: p for i, p in fixed.items() if i < len(names)}
    if len(set(fixed_ports.values())) < len(fixed_ports):
        return  # a fixed port twice is a validation error, never reaches the cluster
    wanted = {n: fixed_ports.get(n) for n in names}
    old = dict(zip(names, previous, strict=False))
    got = assign_ports(wanted, previous=old, taken=taken)
    assert list(got) == names
    assert len(set(got.values())) == len(got)
    claimed = taken | set(fixed_ports.values())
    for name, port in got.items():
        if name in fixed_ports:
            assert port == fixed_ports[name]
            continue
        assert port not in claimed
        if name in old and old[name] not in claimed:
            assert port == old[name]
    assert assign_ports(wanted, previous=got, taken=taken) == got  # stable


def test_file_names_of_keys_round_trip() -> None:
    assert (
        safe_name("group/proc-1") == "group__proc-1" and key_of("group__proc-1") == "group/proc-1"
    )
    assert (
        parse_ports('{"a": 80, "b": "x", "c": 70000}') == {"a": 80} and parse_ports("{oops") == {}
    )


# --------------------------------------------------------------------------- logs


def rotated(tmp_path: Path) -> ProcessFiles:
    files = ProcessFiles(tmp_path, "g/p")
    (tmp_path / "g__p.log.2").write_bytes(b"one\ntwo\nthr")  # a line cut by rotation
    (tmp_path / "g__p.log.1").write_bytes(b"ee\nfour\n")
    (tmp_path / "g__p.log").write_bytes(b"five\nsix\nseven")
    (tmp_path / "g__p.log.x").write_bytes(b"not a backup\n")
    return files


def test_history_is_the_backups_oldest_first_then_the_live_log(tmp_path: Path) -> None:
    files = rotated(tmp_path)
    assert [p.name for p in files.log_files()] == ["g__p.log.2", "g__p.log.1", "g__p.log"]
    lines = [b"one\n", b"two\n", b"three\n", b"four\n", b"five\n", b"six\n", b"seven"]
    assert list(read_history(files.log_files())) == lines


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 7, 50])
def test_tail_reads_backwards_across_files(tmp_path: Path, count: int) -> None:
    files = rotated(tmp_path)
    whole = list(read_history(files.log_files()))
    assert list(read_history(files.log_files(), tail=count)) == (whole[-count:] if count else [])


def test_tail_of_a_big_file_reads_only_its_end(tmp_path: Path) -> None:
    big = tmp_path / "p.log"
    big.write_bytes(b"".join(b"%d\n" % i for i in range(200_000)))
    assert list(read_history([big], tail=2)) == [b"199998\n", b"199999\n"]
    assert list(
        read_history([big], tail=2, limit=len(b"".join(b"%d\n" % i for i in range(10))))
    ) == [
        b"8\n",
        b"9\n",
    ]


def test_since_skips_files_last_written_before_the_cutoff(tmp_path: Path) -> None:
    files = rotated(tmp_path)
    now = time.time()
    os.utime(tmp_path / "g__p.log.2", (now - 7200, now - 7200))
    os.utime(tmp_path / "g__p.log.1", (now - 60, now - 60))
    got = list(read_history(files.log_files(), since=600, now=now))
    assert got == [b"ee\n", b"four\n", b"five\n", b"six\n", b"seven"]
    assert list(read_history(files.log_files(), since=600, now=now + 3600)) == []


def test_follow_survives_rotation_and_stops_when_finished(tmp_path: Path) -> None:
    live = tmp_path / "p.log"
    live.write_bytes(b"old\n")
    steps: list[Callable[[], object]] = [
        lambda: live.open("ab").write(b"new 1\npart"),
        lambda: live.open("ab").write(b"ial\nbefore rotation\n"),
        lambda: (live.rename(tmp_path / "p.log.1"), live.write_bytes(b"after rotation\n")),
        lambda: live.open("ab").write(b"last words"),
    ]
    done: list[bool] = []

    def sleep(_: float) -> None:
        if steps:
            steps.pop(0)()
        else:
            done.append(True)

    got = list(follow(live, start=4, finished=lambda: bool(done), sleep=sleep))
    assert got == [
        b"new 1\n",
        b"partial\n",
        b"before rotation\n",
        b"after rotation\n",
        b"last words",
    ]


# --------------------------------------------------------------------------- batching (real tmux)


@pytest.mark.timeout(30)
def test_a_big_batch_is_chunked_below_the_tmux_limit(
    tmux_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = TmuxServer(tmux_socket)
    server.run("new-session", "-d", "-s", "s", "--", "sleep", "60")
    calls: list[int] = []
    real_run = server.run

    def counting(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        calls.append(sum(len(a.encode()) + 1 for a in args))
        return real_run(*args, check=check)

    monkeypatch.setattr(server, "run", counting)
    units = [[["set-option", "-t", "=s:", f"@opt{i}", f"value {i};"]] for i in range(600)]
    result = server.batch(units)
    assert result.ok and 1 < len(calls) < 10 and max(calls) <= MAX_BATCH_BYTES
    shown = real_run("show-options", "-t", "=s:").stdout
    assert (
        '@opt0 "value 0;"' in shown and '@opt599 "value 599;"' in shown
    )  # a trailing ; is literal

    failing = server.batch(
        [[["kill-window", "-t", "@999"]], [["set-option", "-t", "=s:", "@late", "1"]]]
    )
    assert failing.errors == ["can't find window: @999"]
    # tmux skipped the rest of that command list: why apply verifies after a failed chunk
    assert "@late" not in real_run("show-options", "-t", "=s:").stdout


@pytest.mark.timeout(60)
def test_a_read_racing_the_exit_of_an_emptied_server_sees_no_server(tmux_socket: str) -> None:
    """Killing the last session makes tmux exit a moment later; a client that
    connects in between got "server exited unexpectedly" (a red CI run). Every
    read must instead see the server or no server, and a new session must start."""
    server = TmuxServer(tmux_socket)
    for _ in range(150):
        server.run("new-session", "-d", "-s", "last", "--", "sleep", "60")
        killer = subprocess.Popen(server.argv("kill-session", "-t", "=last"))
        try:
            server.rows("list-windows", ["session_name"], "-a")  # must not raise
        finally:
            killer.wait()
    server.run("new-session", "-d", "-s", "after", "--", "sleep", "60")
    assert server.rows("list-sessions", ["session_name"]) == [["after"]]
