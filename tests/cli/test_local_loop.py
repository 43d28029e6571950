"""The local loop through the real CLI on a real tmux server: apply, diff, status, logs, delete …"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from symphony.testing import wait_for


def manifest(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


SERVE = """\
apiVersion: symphony/v1
kind: Experiment
metadata: {name: demo}
spec:
  processes:
    - name: server
      command: 'echo "serving on $SYMPH_API_ADDR"; exec sleep 600'
      binds: [api]
    - name: client
      replicas: 2
      command: 'echo "$SYMPH_PROCESS replica $SYMPH_REPLICA talks to $SYMPH_API_ADDR"; exec sleep 600'
      connects: [api]
  groups:
    - name: tools
      processes:
        - name: client
          command: 'echo "group $SYMPH_PROCESS_GROUP"; exec sleep 600'
"""


def status(symphony, *args: str) -> list[dict]:
    result = symphony("status", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_apply_status_diff_reapply(symphony, tmp_path: Path) -> None:
    path = manifest(tmp_path, SERVE)
    dry = symphony("apply", "-f", str(path), "--dry-run")
    assert dry.returncode == 0 and "+ demo/server (create" in dry.stdout
    assert symphony("status", "-o", "json").stdout.strip() == "[]"  # dry run changed nothing

    assert symphony("diff", "-f", str(path)).returncode == 1
    applied = symphony("apply", "-f", str(path), "--wait", "--timeout", "30")
    assert applied.returncode == 0, applied.stderr
    assert "experiment demo (local): 4 created" in applied.stdout

    rows = status(symphony, "demo")
    assert sorted((r["group"], r["name"]) for r in rows) == [
        ("", "client-0"),
        ("", "client-1"),
        ("", "server"),
        ("tools", "client"),
    ]
    for row in rows:
        assert row["phase"] == "running" and row["state"].startswith("running: ")
        assert (
            row["ready"] == 1 and row["restarts"] == 0 and row["cluster"] == "local" and row["node"]
        )
        assert {
            "experiment",
            "group",
            "name",
            "state",
            "restarts",
            "ready",
            "cluster",
            "node",
        } <= set(row)

    table = symphony("p", "demo").stdout.splitlines()
    assert table[0].split() == ["Group", "Name", "Ready", "Restarts", "State", "Node", "Cluster"]
    assert any(line.split()[:2] == ["tools", "client"] for line in table[1:])

    # global options after the command and abbreviations
    assert status(symphony, "de") == status(symphony, "demo") or len(status(symphony, "de")) == 4
    assert symphony("--cluster", "local", "lsp", "demo").returncode == 0

    pids = {r["name"] + r["group"]: r["pid"] for r in rows}
    again = symphony("apply", "-f", str(path))
    assert "4 unchanged" in again.stdout and "created" not in again.stdout
    assert symphony("diff", "-f", str(path)).returncode == 0

    changed = manifest(
        tmp_path, SERVE.replace("exec sleep 600'\n      binds", "exec sleep 601'\n      binds")
    )
    result = symphony("apply", "-f", str(changed), "--wait", "--timeout", "30")
    assert "1 updated, 3 unchanged" in result.stdout, result.stdout
    after = {r["name"] + r["group"]: r["pid"] for r in status(symphony, "demo")}
    assert after["server"] != pids["server"]
    assert {k: v for k, v in after.items() if k != "server"} == {
        k: v for k, v in pids.items() if k != "server"
    }


def test_environment_and_stable_ports(symphony, tmp_path: Path) -> None:
    path = manifest(tmp_path, SERVE)
    assert symphony("apply", "-f", str(path), "--wait").returncode == 0
    log = wait_for(
        lambda: (
            "talks to 127.0.0.1:" in (out := symphony("logs", "client-1", "demo").stdout) and out
        )
    )
    addr = log.strip().split("talks to ")[1]
    assert "client-1 replica 1" in log
    env = symphony("exec", "server", "demo", "--", "sh", "-c", "env | grep ^SYMPH_ | sort; pwd")
    assert env.returncode == 0, env.stderr
    lines = env.stdout.splitlines()
    assert f"SYMPH_API_ADDR={addr}" in lines
    assert "SYMPH_API_HOST=127.0.0.1" in lines and f"SYMPH_API_PORT={addr.split(':')[1]}" in lines
    assert {
        "SYMPH_EXPERIMENT=demo",
        "SYMPH_PROCESS=server",
        "SYMPH_PROCESS_GROUP=",
        "SYMPH_REPLICA=0",
        "SYMPH_CLUSTER=local",
    } <= set(lines)
    assert lines[-1] == str(tmp_path)  # workdir defaults to the manifest's folder
    assert symphony("exec", "server", "demo", "--", "sh", "-c", "exit 7").returncode == 7
    # a change to one process keeps every port
    changed = manifest(
        tmp_path, SERVE.replace("exec sleep 600'\n      binds", "exec sleep 602'\n      binds")
    )
    assert symphony("apply", "-f", str(changed), "--wait").returncode == 0
    again = symphony("exec", "server", "demo", "--", "sh", "-c", "echo $SYMPH_API_ADDR")
    assert again.stdout.strip() == addr


def interruptible() -> None:
    """In the child: Ctrl-C as a terminal's foreground process gets it. A process started in
    the background of a non-interactive shell (as CI may start the suite) inherits SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_logs_whole_history_tail_since_and_follow(symphony, tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        """\
        apiVersion: symphony/v1
        kind: Experiment
        metadata: {name: chatty}
        spec:
          processes:
            - name: talker
              command: 'for i in $(seq 1 3000); do echo "line $i"; done; sleep 1; echo "late line"; exec sleep 600'
        """,
    )
    assert symphony("apply", "-f", str(path), "--wait").returncode == 0
    wait_for(
        lambda: "line 3000" in symphony("logs", "talker").stdout, message="output never complete"
    )
    full = symphony("logs", "talker").stdout.splitlines()
    assert full[:2] == ["line 1", "line 2"] and "line 3000" in full  # far more than one screen
    tail = symphony("logs", "talker", "--tail", "3").stdout.splitlines()
    assert len(tail) == 3
    follower = subprocess.Popen(
        [sys.executable, "-m", "symphony.cli", "logs", "talker", "chatty", "-f", "--tail", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        preexec_fn=interruptible,
    )
    try:
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = follower.stdout.readline()  # type: ignore[union-attr]
            seen.append(line)
            if "late line" in line:
                break
        assert any("late line" in s for s in seen), seen
        follower.send_signal(signal.SIGINT)  # Ctrl-C ends a follow quietly, as 130
        assert follower.wait(timeout=30) == 130
        assert follower.stderr is not None and follower.stderr.read().strip() == ""
    finally:
        follower.kill()
        follower.wait(timeout=10)
    bad = symphony("logs", "talker", "--since", "soon")
    assert bad.returncode == 2 and "expected a duration" in bad.stderr


def test_states_completed_exited_and_crash_loop(symphony, tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        """\
        apiVersion: symphony/v1
        kind: Experiment
        metadata: {name: states}
        spec:
          processes:
            - {name: ok, command: 'true'}
            - {name: fails, command: 'exit 3'}
            - name: flaky
              command: 'exit 1'
              restart_policy: {type: on-failure, backoff_seconds: 0.05}
        """,
    )
    result = symphony("apply", "-f", str(path), "--wait", "--timeout", "60")
    assert result.returncode == 1
    assert "states/flaky: crash-loop" in result.stderr

    def settled() -> list[dict] | None:
        rows = status(symphony, "states")
        return rows if rows and all(x["phase"] != "pending" for x in rows) else None

    rows = {r["name"]: r for r in wait_for(settled)}
    assert rows["ok"]["state"] == "completed"
    assert rows["fails"]["state"] == "exited: 3"

    def flaky_row() -> dict | None:
        row = {x["name"]: x for x in status(symphony, "states")}["flaky"]
        return row if row["restarts"] >= 3 else None

    flaky = wait_for(flaky_row)
    assert flaky["state"] in {"crash-loop", "backoff", "running: 0s"} and flaky["restarts"] >= 3


def test_prune_delete_and_delete_batch(symphony, tmp_path: Path) -> None:
    exp = SERVE.replace("name: demo", "name: {name}")
    for name in ("alpha-1", "alpha-2", "beta"):
        assert (
            symphony(
                "apply", "-f", str(manifest(tmp_path, exp.replace("{name}", name), f"{name}.yaml"))
            ).returncode
            == 0
        )
    names = lambda: sorted({r["experiment"] for r in status(symphony)})  # noqa: E731
    assert names() == ["alpha-1", "alpha-2", "beta"]

    assert "would delete experiment alpha-1" in symphony("db", "alpha", "--dry-run").stdout
    refused = symphony("db", "alpha")
    assert refused.returncode == 2 and "pass -f" in refused.stderr
    assert names() == ["alpha-1", "alpha-2", "beta"]
    assert symphony("delete-batch", "alpha-", "-f").returncode == 0
    assert names() == ["beta"]

    keep = tmp_path / "only"
    keep.mkdir()
    (keep / "gamma.yaml").write_text(exp.replace("{name}", "gamma"))
    pruned = symphony("apply", "-f", str(keep), "--prune")
    assert "experiment beta (local): pruned" in pruned.stdout, pruned.stdout
    assert names() == ["gamma"]
    assert symphony("d", "gam", "-f").returncode == 0
    assert names() == []


def test_switch_experiment_ls_and_abbreviations(symphony, tmp_path: Path) -> None:
    for name in ("one-a", "one-b"):
        assert (
            symphony(
                "apply", "-f", str(manifest(tmp_path, SERVE.replace("demo", name), f"{name}.yaml"))
            ).returncode
            == 0
        )
    ambiguous = symphony("status", "one")
    assert ambiguous.returncode == 2 and "ambiguous: one-a, one-b" in ambiguous.stderr
    assert symphony("se", "one-b").stdout.strip() == "current experiment: one-b"
    assert {r["experiment"] for r in status(symphony)} == {"one-b"}
    listing = json.loads(symphony("ls", "-o", "json").stdout)
    assert [(r["name"], r["processes"], r["sync"]) for r in listing] == [
        ("one-a", 4, "Synced"),
        ("one-b", 4, "Synced"),
    ]
    table = symphony("ls").stdout
    assert "Sync" in table and "Health" in table
    unknown = symphony("se", "zzz")
    assert unknown.returncode == 2 and "no experiment named 'zzz'" in unknown.stderr


def test_visit_ssh_scp(symphony, tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        """\
        apiVersion: symphony/v1
        kind: Experiment
        metadata: {name: web}
        spec:
          processes:
            - name: site
              command: [python3, -m, http.server, --bind, 127.0.0.1, "18731"]
              exposes: {http: 18731}
        """,
    )
    assert symphony("apply", "-f", str(path), "--wait").returncode == 0
    assert symphony("visit", "http", "web", "-u").stdout.strip() == "http://127.0.0.1:18731"
    assert symphony("vi", "nope", "web", "-u").returncode == 2
    ssh = symphony("ssh", "site", "web")
    assert ssh.returncode != 0 and "Traceback" not in ssh.stderr and ssh.stderr.strip()
    scp = symphony("scp", "site:/etc/hostname", str(tmp_path / "x"), "web")
    assert scp.returncode == 1 and "not supported on tmux" in scp.stderr


BAD = [
    (
        "apiVersion: symphony/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n  processes:\n    - {name: a, command: x, connects: [ghost]}\n",
        6,
    ),
    (
        "apiVersion: symphony/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n  cluster: mars\n  processes: [{name: a, command: x}]\n",
        5,
    ),
    (
        "apiVersion: symphony/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n  processes: [{name: a, command: x, env: {SYMPH_X: 1}}]\n",
        5,
    ),
    ("{{{\n", 1),
]


@pytest.mark.parametrize(("text", "line"), BAD)
@pytest.mark.parametrize("command", ["apply", "validate", "diff"])
def test_bad_input_one_line_exit_2_nothing_changed(
    symphony, tmp_path: Path, text: str, line: int, command: str
) -> None:
    good = manifest(tmp_path, SERVE, "a-good.yaml")
    bad = manifest(tmp_path, text, "b-bad.yaml")
    result = symphony(command, "-f", str(good), "-f", str(bad))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}:{line}: "), lines
    assert symphony("status", "-o", "json").stdout.strip() == "[]"


def test_stdin_and_folder(symphony, tmp_path: Path) -> None:
    result = symphony("apply", "-f", "-", input=SERVE)
    assert result.returncode == 0, result.stderr
    assert {r["experiment"] for r in status(symphony)} == {"demo"}
    assert (
        symphony(
            "validate", "-f", str(Path(__file__).parents[2] / "manifests" / "examples")
        ).returncode
        == 0
    )


def test_usage_errors_exit_2(symphony) -> None:
    for args in (["apply"], ["status", "-o", "xml"], ["frobnicate"], ["logs"]):
        result = symphony(*args)
        assert result.returncode == 2, (args, result)
        assert "Traceback" not in result.stderr


def test_tmux_missing_is_one_clear_line(symphony, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    result = symphony("apply", "-f", str(manifest(tmp_path, SERVE)), env={"PATH": str(bin_dir)})
    assert result.returncode == 2
    assert "tmux is not installed" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
