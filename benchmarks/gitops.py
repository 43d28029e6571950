"""Benchmark of GitOps latency: from a commit (or a saved file) to the new process running.

    python benchmarks/gitops.py              # the figures quoted in the README (~1 minute)
    python benchmarks/gitops.py --quick      # a smoke run (a few changes each)

Runs the real ``symphony sync --interval 1`` and ``symphony watch`` commands in
subprocesses against a real git repository (a bare "remote" in a temp folder)
and a real tmux server on its own socket. Each change adds one process to an
experiment; the clock stops when that process is observed running on tmux
(polled every 10 ms). Targets (issue 7): commit → running ≤ 2 s at a 1 s poll;
saved file → running ≤ 1 s. ``--check`` exits 1 when a median misses its target.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symphony.clusters.tmux import TmuxCluster, shutdown_server  # noqa: E402
from symphony.model import LOCAL  # noqa: E402


def manifest(count: int) -> str:
    processes = "\n".join(f"    - {{name: p{i}, command: 'sleep 600'}}" for i in range(count))
    return (
        "apiVersion: symphony/v1\nkind: Experiment\nmetadata: {name: bench}\n"
        f"spec:\n  processes:\n{processes}\n"
    )


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def running(cluster: TmuxCluster, key: str) -> bool:
    return any(o.key == key and o.state.value == "running" for o in cluster.observe())


def wait_running(cluster: TmuxCluster, key: str, start: float, timeout: float = 30.0) -> float:
    while time.monotonic() - start < timeout:
        if running(cluster, key):
            return time.monotonic() - start
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {key}")


def daemon(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "symphony.cli", *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def bench_git(tmp: Path, changes: int, interval: float) -> list[float]:
    remote, work = tmp / "remote.git", tmp / "work"
    git("init", "-q", "--bare", "--initial-branch=main", str(remote), cwd=tmp)
    git("init", "-q", "--initial-branch=main", str(work), cwd=tmp)
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.invalid")):
        git("config", key, value, cwd=work)
    git("remote", "add", "origin", str(remote), cwd=work)
    (work / "bench.yaml").write_text(manifest(1))
    git("add", "bench.yaml", cwd=work)
    git("commit", "-qm", "start", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    cluster = TmuxCluster(LOCAL)
    proc = daemon(["sync", "--repo", str(remote), "--interval", str(interval)], tmp / "sync.log")
    try:
        wait_running(cluster, "p0", time.monotonic())
        times = []
        for n in range(2, changes + 2):
            time.sleep(0.3 + (n % 7) * interval / 7)  # spread commits over the poll phase
            start = time.monotonic()
            (work / "bench.yaml").write_text(manifest(n))
            git("commit", "-qam", f"{n} processes", cwd=work)
            git("push", "-q", "origin", "main", cwd=work)
            times.append(wait_running(cluster, f"p{n - 1}", start))
        return times
    finally:
        stop(proc)


def bench_watch(tmp: Path, changes: int) -> list[float]:
    folder = tmp / "watched"
    folder.mkdir()
    (folder / "bench.yaml").write_text(manifest(1))
    cluster = TmuxCluster(LOCAL)
    proc = daemon(["watch", str(folder)], tmp / "watch.log")
    try:
        wait_running(cluster, "p0", time.monotonic())
        time.sleep(0.5)
        times = []
        for n in range(2, changes + 2):
            time.sleep(0.3)
            start = time.monotonic()
            tmp_file = folder / ".bench.yaml.tmp"  # saved like an editor: write, then rename
            tmp_file.write_text(manifest(n))
            os.replace(tmp_file, folder / "bench.yaml")
            times.append(wait_running(cluster, f"p{n - 1}", start))
        return times
    finally:
        stop(proc)


def report(name: str, times: list[float], target: float) -> bool:
    median = statistics.median(times)
    ok = median <= target
    print(
        f"{name:<32} median {median:5.2f}s  p90 {sorted(times)[int(0.9 * (len(times) - 1))]:5.2f}s"
        f"  max {max(times):5.2f}s  (n={len(times)}, target ≤ {target:g}s: {'ok' if ok else 'MISSED'})"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few changes only")
    parser.add_argument("--changes", type=int, default=15, help="changes measured per source")
    parser.add_argument("--interval", type=float, default=1.0, help="git poll interval (s)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    changes = 3 if args.quick else args.changes
    ok = True
    with tempfile.TemporaryDirectory(prefix="symphony-bench-gitops-") as raw:
        tmp = Path(raw)
        socket = f"symphony-bench-{uuid.uuid4().hex[:8]}"
        os.environ["SYMPHONY_TMUX_SOCKET"] = socket
        runs = (
            (
                f"git commit → running ({args.interval:g}s poll)",
                lambda: bench_git(tmp / "git", changes, args.interval),
            ),
            ("saved file → running (watch)", lambda: bench_watch(tmp, changes)),
        )
        for index, (name, run) in enumerate(runs):
            # a state folder each: the first source still owns "bench" when the second
            # starts, and one owner per experiment would (rightly) refuse the second
            home = tmp / f"home-{index}"
            os.environ["SYMPHONY_HOME"] = str(home)
            (tmp / "git").mkdir(exist_ok=True)
            target = 2.0 if name.startswith("git") else 1.0
            try:
                ok &= report(name, run(), target)
            finally:
                shutdown_server(socket, state_root=home)
    if args.check and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
