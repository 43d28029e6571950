"""``symphony sync``, ``watch`` and ``serve`` as users run them: the real CLI in a subprocess,
real git repositories, a real tmux server on this test's own socket."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from symphony.clusters.tmux import TmuxCluster
from symphony.testing import wait_for

from .conftest import GitRepo
from .helpers import experiment

pytestmark = pytest.mark.timeout(90)

A = experiment("a", {"p": "sleep 600"})
B = experiment("b", {"q": "sleep 600"})


class Daemon:
    """A long-running ``symphony`` command with its output in a file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.out = tmp_path / f"daemon-{args[0]}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "symphony.cli", *args],
            stdout=self.out.open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )

    def output(self) -> str:
        return self.out.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symphony.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def live(cluster: TmuxCluster) -> dict[tuple[str, str], Any]:
    return {(o.experiment, o.key): o for o in cluster.observe() if o.state.value == "running"}


def ls() -> dict[str, dict[str, Any]]:
    done = cli("ls", "-o", "json")
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


def test_sync_follows_git_blocks_bad_documents_heals_prunes_and_stops(
    repo: GitRepo, tmux_cluster: TmuxCluster, daemons: list[Daemon], tmp_path: Path
) -> None:
    first = repo.commit({"a.yaml": A, "b.yaml": B}, "a and b")
    sync = Daemon(
        tmp_path, "sync", "--repo", str(repo.remote), "--interval", "0.2", "--resync", "1"
    )
    daemons.append(sync)
    wait_for(
        lambda: set(live(tmux_cluster)) == {("a", "p"), ("b", "q")}, timeout=30, message=sync.output
    )
    rows = ls()
    assert rows["a"]["source"].startswith("git-remote-") and rows["a"]["revision"] == first[:12]
    pid_a = live(tmux_cluster)[("a", "p")].pid

    # a bad document blocks only its experiment; the other converges
    bad = repo.commit(
        {"a.yaml": A.replace("sleep 600", "sleep 601").replace("command:", "bogus: 1, command:"),
         "b.yaml": experiment("b", {"q": "sleep 600", "r": "sleep 600"})},
        "break a, grow b",
    )  # fmt: skip
    wait_for(lambda: ("b", "r") in live(tmux_cluster), timeout=30, message=sync.output)
    rows = ls()
    assert rows["a"]["sync"] == "OutOfSync" and rows["a"]["error"].startswith("a.yaml:6: ")
    assert rows["a"]["revision"] == first[:12]  # the last good revision is what runs
    assert rows["b"]["sync"] == "Synced" and rows["b"]["revision"] == bad[:12]
    assert live(tmux_cluster)[("a", "p")].pid == pid_a  # untouched
    assert live(tmux_cluster)[("b", "q")].pid  # q did not change: still the same window

    # drift: a window closed by hand comes back at the next resync, at its last good version
    tmux_cluster.server.run("kill-window", "-t", "=a:p")
    wait_for(lambda: ("a", "p") in live(tmux_cluster), timeout=30, message=sync.output)

    # an experiment applied by hand is not the source's to prune; a deleted file is
    (tmp_path / "c.yaml").write_text(experiment("c", {"x": "sleep 600"}))
    assert cli("apply", "-f", str(tmp_path / "c.yaml")).returncode == 0
    repo.commit({"b.yaml": None}, "b goes")
    wait_for(  # c was applied without --wait: it may still be starting
        lambda: {k[0] for k in live(tmux_cluster)} == {"a", "c"}, timeout=30, message=sync.output
    )

    assert sync.stop(signal.SIGTERM) == 0
    assert "stopped" in sync.output() and "Traceback" not in sync.output()


def test_watch_applies_saved_files_and_stops_on_sigint(
    tmux_cluster: TmuxCluster, daemons: list[Daemon], tmp_path: Path
) -> None:
    folder = tmp_path / "manifests"
    (folder / ".hidden").mkdir(parents=True)
    (folder / "b.yaml").write_text(B)
    (folder / ".hidden" / "x.yaml").write_text(experiment("x", {"p": "sleep 600"}))
    watch = Daemon(tmp_path, "watch", str(folder))
    daemons.append(watch)
    wait_for(lambda: set(live(tmux_cluster)) == {("b", "q")}, timeout=30, message=watch.output)
    (folder / "sub").mkdir()
    (folder / "sub" / "a.yaml").write_text(A)
    wait_for(lambda: ("a", "p") in live(tmux_cluster), timeout=10, message=watch.output)
    (folder / "sub" / "a.yaml").write_text(experiment("a", {"p": "sleep 600", "p2": "sleep 600"}))
    wait_for(lambda: ("a", "p2") in live(tmux_cluster), timeout=10, message=watch.output)
    (folder / "sub" / "a.yaml").unlink()
    wait_for(lambda: set(live(tmux_cluster)) == {("b", "q")}, timeout=10, message=watch.output)
    assert watch.stop(signal.SIGINT) == 0
    assert "stopped" in watch.output()


def get(url: str, **kw: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, **kw)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_runs_sources_reports_status_and_syncs_on_a_hook(
    repo: GitRepo, tmux_cluster: TmuxCluster, daemons: list[Daemon], tmp_path: Path
) -> None:
    repo.commit({"deploy/a.yaml": A}, "a")
    (tmp_path / "watched").mkdir()
    (tmp_path / "watched" / "b.yaml").write_text(B)
    (tmp_path / "secret").write_text("s3cret\n")
    config = tmp_path / "server.yaml"
    config.write_text(
        f"listen: 127.0.0.1:0\n"
        f"hook_secret_file: secret\n"
        f"sources:\n"
        f"  - {{type: git, name: ops, repo: {repo.remote}, path: deploy, interval: 600}}\n"
        f"  - {{type: watch, path: watched, resync: 5}}\n"
    )
    serve = Daemon(tmp_path, "serve", "-c", str(config))
    daemons.append(serve)
    found = wait_for(
        lambda: re.search(r"on http://(127\.0\.0\.1:\d+)", serve.output()),
        timeout=30,
        message=serve.output,
    )
    base = f"http://{found.group(1)}"
    assert get(base + "/healthz") == (200, {"status": "ok"})
    wait_for(
        lambda: set(live(tmux_cluster)) == {("a", "p"), ("b", "q")},
        timeout=30,
        message=serve.output,
    )

    second = repo.commit({"deploy/a.yaml": experiment("a", {"p": "sleep 600", "p2": "sleep 600"})})
    assert get(base + "/hooks/git", method="POST", data=b"{}")[0] == 401
    code, body = get(
        base + "/hooks/git", method="POST", data=b"{}", headers={"Authorization": "Bearer s3cret"}
    )
    assert (code, body) == (202, {"syncing": ["ops"]})
    wait_for(lambda: ("a", "p2") in live(tmux_cluster), timeout=15, message=serve.output)

    def status_of_a() -> dict | None:  # the status is written just after the apply
        code, status = get(base + "/status")
        assert code == 200
        found = {e["name"]: e for e in status["experiments"]}.get("a")
        return found if found and found.get("revision") == second[:12] else None

    wait_for(status_of_a, timeout=15, message=serve.output)
    code, status = get(base + "/status")
    by_name = {e["name"]: e for e in status["experiments"]}
    assert by_name["a"]["source"] == "ops" and by_name["a"]["revision"] == second[:12]
    assert by_name["a"]["sync"] == "Synced" and by_name["a"]["health"] in ("Healthy", "Progressing")
    assert (
        by_name["a"]["history"][0]["result"] == "applied"
        and by_name["a"]["history"][0]["reason"] == "hook"
    )
    assert by_name["b"]["source"].startswith("watch-watched-")
    assert {s["type"] for s in status["sources"]} == {"git", "watch"}
    assert get(base + "/nope")[0] == 404
    assert serve.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: []\n", "server.yaml:1: sources: a non-empty list of sources is required"),
        (
            "sources:\n  - {type: svn, repo: x}\n",
            "server.yaml:2: sources[0].type: must be one of git, watch, files",
        ),
        (
            "sources:\n  - type: git\n    repo: file:///x.git\n    intervall: 3\n",
            "server.yaml:4: sources[0].intervall: unknown field",
        ),
        (
            "listen: nowhere\nsources:\n  - {type: watch, path: .}\n",
            "server.yaml:1: listen: 'nowhere' is not HOST:PORT",
        ),
        ("sources: [\n", "server.yaml:1: invalid YAML"),
        (
            "sources:\n  - {type: git, repo: no-such-repo}\n",
            "server.yaml:2: sources[0].repo: ",  # then the resolved path: no such folder
        ),
    ],
)
def test_a_bad_server_config_is_one_line_and_exit_2(
    tmp_path: Path, symphony_home: Path, text: str, message: str
) -> None:
    (tmp_path / "server.yaml").write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "symphony.cli", "serve", "-c", "server.yaml"],
        capture_output=True, text=True, cwd=tmp_path, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr


def test_sync_once_reports_a_bad_document_with_exit_2(
    repo: GitRepo, tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    repo.commit({"a.yaml": A.replace("command:", "bogus: 1, command:"), "b.yaml": B})
    done = cli("sync", "--repo", str(repo.remote), "--once")
    assert done.returncode == 2 and done.stderr.startswith("a.yaml:6: spec.processes[0].bogus"), (
        done.stderr
    )
    # --once applies without waiting for the processes: b's may still be starting
    wait_for(lambda: set(live(tmux_cluster)) == {("b", "q")}, timeout=30)


@pytest.mark.parametrize("once", [True, False])
def test_sync_of_a_local_path_that_is_no_repository_is_exit_2_at_once(
    symphony_home: Path, tmp_path: Path, once: bool
) -> None:
    """A typo in a path never heals, so it is bad input, not a source to retry forever."""
    flags = ["--once"] if once else []
    missing = cli("sync", "--repo", str(tmp_path / "nowhere"), *flags)
    assert (missing.returncode, missing.stderr) == (
        2,
        f"--repo {tmp_path / 'nowhere'}: no such folder\n",
    )
    (tmp_path / "plain").mkdir()
    plain = cli("sync", "--repo", str(tmp_path / "plain"), *flags)
    assert (plain.returncode, plain.stderr) == (
        2,
        f"--repo {tmp_path / 'plain'}: not a git repository\n",
    )


def test_watch_a_missing_path_is_exit_2(symphony_home: Path, tmp_path: Path) -> None:
    done = cli("watch", str(tmp_path / "nowhere"))
    assert (
        done.returncode == 2 and done.stderr == f"{tmp_path / 'nowhere'}: no such file or folder\n"
    )
