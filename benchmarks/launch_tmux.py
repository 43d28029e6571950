"""Benchmark of the tmux cluster: launching 100 processes, against tmuxp; a no-op re-apply of 1,000.

    python benchmarks/launch_tmux.py            # medians of 3 runs (about 2 minutes: tmuxp is slow)
    python benchmarks/launch_tmux.py --runs 5
    python benchmarks/launch_tmux.py --quick    # one run of each

(a) Symphony: a 100-process experiment (each ``sleep 1000``) from nothing until every
    process is observed running — through the real ``symphony apply -f FILE --wait``
    CLI when it is available, else through ``TmuxCluster.apply`` (the output says which).
(b) tmuxp: ``tmuxp load -d -y -L SOCKET`` of an equivalent 100-window workspace until
    all 100 panes run ``sleep`` (polling ``list-panes -F '#{pane_current_command}'``).
(c) A converged 1,000-process experiment re-applied: observe + diff in-process (the
    number of actions must be 0), and the whole ``symphony apply -f FILE`` CLI.

Every run uses its own tmux socket and SYMPHONY_HOME, and every server is killed
afterwards with everything it started. Targets (issue "The local loop"): (a) at
least 10x faster than (b); (c) at most 1 s in total. ``--check`` exits 1 when missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symphony.clusters.tmux import TmuxCluster, shutdown_server  # noqa: E402
from symphony.model import LOCAL, Experiment, ProcessSpec, ProcessState  # noqa: E402
from symphony.plan import diff  # noqa: E402

LAUNCH = 100
CONVERGED = 1000
COMMAND = ("sleep", "1000")


@contextmanager
def isolated(tag: str) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A fresh socket and SYMPHONY_HOME (also set in os.environ), cleaned up afterwards."""
    socket = f"symphony-bench-{tag}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="symphony-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {
            **{k: v for k, v in os.environ.items() if k != "TMUX"},
            "SYMPHONY_HOME": str(home),
            "SYMPHONY_TMUX_SOCKET": socket,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        saved = {k: os.environ.get(k) for k in ("SYMPHONY_HOME", "SYMPHONY_TMUX_SOCKET")}
        os.environ.update(SYMPHONY_HOME=str(home), SYMPHONY_TMUX_SOCKET=socket)
        try:
            yield socket, Path(tmp), env
        finally:
            shutdown_server(socket, state_root=home)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def manifest(name: str, count: int) -> str:
    processes = "\n".join(f"    - {{name: p{i}, command: [sleep, '1000']}}" for i in range(count))
    return (
        f"apiVersion: symphony/v1\nkind: Experiment\nmetadata: {{name: {name}}}\n"
        f"spec:\n  processes:\n{processes}\n"
    )


def experiment(name: str, count: int) -> Experiment:
    return Experiment(
        name=name,
        processes=tuple(
            ProcessSpec(experiment=name, name=f"p{i}", base_name=f"p{i}", command=COMMAND)
            for i in range(count)
        ),
    )


def from_manifest(path: Path) -> Experiment:
    """The experiment as the CLI builds it (workdir = the manifest's folder): same hashes."""
    from symphony.manifests import load_paths

    return load_paths([str(path)]).experiments[0]


def cli_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import symphony.commands.apply"],
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return probe.returncode == 0


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symphony.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def wait_until(predicate: Callable[[], bool], *, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def all_running(cluster: TmuxCluster, name: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        observed = cluster.observe(experiments=[name])
        bad = [o for o in observed if o.state in (ProcessState.UNKNOWN, ProcessState.EXITED)]
        if bad:
            raise SystemExit(f"{len(bad)} process(es) failed to start, e.g. {bad[0]}")
        return sum(o.state is ProcessState.RUNNING for o in observed) == count

    return check


# --------------------------------------------------------------------------- (a) symphony


def launch_symphony(*, use_cli: bool) -> float:
    with isolated("launch") as (_socket, tmp, env):
        path = tmp / "launch.yaml"
        path.write_text(manifest("launch", LAUNCH))
        cluster = TmuxCluster(LOCAL)
        start = time.perf_counter()
        if use_cli:
            result = cli(["apply", "-f", str(path), "--wait", "--timeout", "120"], env)
            if result.returncode != 0:
                raise SystemExit(f"symphony apply failed: {result.stdout}{result.stderr}")
        else:
            exp = experiment("launch", LAUNCH)
            cluster.apply(diff([exp], cluster.observe()), [exp])
        wait_until(
            all_running(cluster, "launch", LAUNCH), what="100 running processes", timeout=120
        )
        return time.perf_counter() - start


# --------------------------------------------------------------------------- (b) tmuxp


def launch_tmuxp() -> float:
    import yaml

    with isolated("tmuxp") as (socket, tmp, env):
        workspace = {
            "session_name": "launch",
            "windows": [
                {"window_name": f"p{i}", "panes": [" ".join(COMMAND)]} for i in range(LAUNCH)
            ],
        }
        path = tmp / "workspace.yaml"
        path.write_text(yaml.safe_dump(workspace))

        def panes_running() -> bool:
            listed = subprocess.run(
                ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_current_command}"],
                capture_output=True,
                text=True,
            )
            return listed.stdout.split().count(COMMAND[0]) == LAUNCH

        start = time.perf_counter()
        loaded = subprocess.run(
            ["tmuxp", "load", "-d", "-y", "-L", socket, str(path)],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if loaded.returncode != 0:
            raise SystemExit(f"tmuxp load failed: {loaded.stdout}{loaded.stderr}")
        wait_until(panes_running, what="100 panes running sleep", timeout=300)
        return time.perf_counter() - start


# --------------------------------------------------------------------------- (c) no-op


def noop_reapply(runs: int, *, use_cli: bool) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"observe": [], "diff": [], "observe+diff": [], "cli": []}
    with isolated("noop") as (_socket, tmp, env):
        path = tmp / "converged.yaml"
        path.write_text(manifest("converged", CONVERGED))
        exp = from_manifest(path) if use_cli else experiment("converged", CONVERGED)
        cluster = TmuxCluster(LOCAL)
        started = time.perf_counter()
        cluster.apply(diff([exp], cluster.observe()), [exp])
        wait_until(
            all_running(cluster, "converged", CONVERGED),
            what="1,000 running processes",
            timeout=600,
        )
        print(
            f"  (launching the {CONVERGED:,} processes took {time.perf_counter() - started:.1f} s)"
        )
        for _ in range(runs):
            fresh = TmuxCluster(LOCAL)  # no cache: a restarted reconciler
            t0 = time.perf_counter()
            observed = fresh.observe()
            t1 = time.perf_counter()
            plan = diff([exp], observed)
            t2 = time.perf_counter()
            if plan.actions:
                raise SystemExit(f"a no-op re-apply planned {plan.actions} actions")
            results["observe"].append(t1 - t0)
            results["diff"].append(t2 - t1)
            results["observe+diff"].append(t2 - t0)
            if use_cli:
                t0 = time.perf_counter()
                applied = cli(["apply", "-f", str(path)], env)
                results["cli"].append(time.perf_counter() - t0)
                if applied.returncode != 0:
                    raise SystemExit(f"symphony apply failed: {applied.stdout}{applied.stderr}")
                changed = cli(["diff", "-f", str(path)], env)
                if changed.returncode != 0:
                    raise SystemExit(f"symphony diff sees changes after apply:\n{changed.stdout}")
    return results


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (median)")
    parser.add_argument("--quick", action="store_true", help="one run of each")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else max(1, args.runs)
    use_cli = cli_available()
    how = "symphony apply -f FILE --wait (CLI)" if use_cli else "TmuxCluster.apply (no CLI yet)"
    print(f"tmux {_tmux_version()}, {os.cpu_count()} CPUs, {runs} run(s) each; Symphony via {how}")

    symphony = [launch_symphony(use_cli=use_cli) for _ in range(runs)]
    print(f"  (a) symphony, 100 processes: {', '.join(f'{t:.2f}' for t in symphony)} s")
    tmuxp = [launch_tmuxp() for _ in range(runs)]
    print(f"  (b) tmuxp, 100 windows:      {', '.join(f'{t:.2f}' for t in tmuxp)} s")
    noop = noop_reapply(max(runs, 3), use_cli=use_cli)

    a, b = statistics.median(symphony), statistics.median(tmuxp)
    ratio = b / a
    rows = [
        ("(a) launch 100, until all running", f"{a:.2f} s", f"via {'CLI' if use_cli else 'API'}"),
        ("(b) tmuxp load 100 windows, until all run", f"{b:.2f} s", ""),
        ("    speed-up (b)/(a)", f"{ratio:.1f}x", "target >= 10x"),
        ("(c) 1,000 converged: observe", _ms(noop["observe"]), "one list-windows + state files"),
        ("    diff", _ms(noop["diff"]), "0 actions"),
        ("    observe + diff", _ms(noop["observe+diff"]), "target <= 1 s"),
    ]
    if noop["cli"]:
        rows.append(("    symphony apply -f (whole CLI)", _ms(noop["cli"]), "target <= 1 s"))
    print()
    print(f"{'medians':44} {'time':>10}  note")
    for label, value, note in rows:
        print(f"{label:44} {value:>10}  {note}")
    total = statistics.median(noop["cli"] or noop["observe+diff"])
    missed = ratio < 10 or total > 1.0
    if args.check and missed:
        print("a target was missed", file=sys.stderr)
        return 1
    return 0


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def _tmux_version() -> str:
    return subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
