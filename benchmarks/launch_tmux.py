"""Benchmark of the tmux cluster: launching 100 processes, against tmuxp; a no-op re-apply of 1,000.

    python benchmarks/launch_tmux.py            # medians of 3 runs (about 2 minutes)
    python benchmarks/launch_tmux.py --runs 5
    python benchmarks/launch_tmux.py --quick    # one run of each

(a) Symphony: a 100-process experiment (each ``sleep 1000``) from nothing until every
    process is observed running — through the real ``symphony apply -f FILE --wait``
    CLI when it is available, else through ``TmuxCluster.apply`` (the output says which).
(b) tmuxp: ``tmuxp load -d -y -L SOCKET`` of an equivalent 100-window workspace, from the
    start of ``tmuxp load`` until all 100 panes run ``sleep`` (the pane's foreground command,
    or a process under the pane where ``sh -c`` does not exec).
    Three workspaces, because what tmuxp costs depends on the shell it types into:
      sh      panes: [sleep 1000] typed into /bin/sh, a POSIX shell without ~/.bashrc
              (the fair comparison: tmuxp pays for tmux and the shell, not rc files);
      direct  window_shell: sleep 1000, started by tmux (``sh -c``) with no interactive
              shell, as Symphony starts processes;
      login   panes typed into your login shell with its rc files (~/.bashrc …): what a
              tmuxp user sees on this machine, but it measures the rc files as much as
              tmuxp (here: pyenv init, whose ``pyenv rehash`` holds a global lock file; a
              shell killed mid-rehash leaves it behind and every later shell waits 60 s).
(c) A converged 1,000-process experiment re-applied: observe + diff in-process (the
    number of actions must be 0), and the whole ``symphony apply -f FILE`` CLI.

Every run uses its own tmux socket and SYMPHONY_HOME. Every server is killed afterwards with
everything it started — also on a failure, Ctrl-C, SIGTERM or SIGHUP — shells first by the
server's hangup (so their exit traps run), survivors then by SIGKILL. A run that does not
finish within ``--timeout`` fails with what its stuck panes are running, and the benchmark
goes on with the next measurement (exit 1 at the end). Targets (issue "The local loop"):
(a) at least 10x faster than (b, sh); (c) at most 1 s in total. ``--check`` exits 1 when missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from symphony.clusters.tmux import TmuxCluster, shutdown_server  # noqa: E402
from symphony.model import LOCAL, Experiment, ProcessSpec, ProcessState  # noqa: E402
from symphony.plan import diff  # noqa: E402

LAUNCH = 100
CONVERGED = 1000
COMMAND = ("sleep", "1000")
SOCKET_PREFIX = "symphony-bench-"
POLL = 0.05  # seconds between observations, the same for Symphony and tmuxp
HANGUP_GRACE = 5.0  # seconds shells get after the server's hangup before SIGKILL


class Failed(Exception):
    """One measurement failed; the message says why (the benchmark goes on)."""


@contextmanager
def isolated(tag: str, *, shells: bool = False) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A fresh socket and SYMPHONY_HOME (also set in os.environ), cleaned up afterwards.

    ``shells``: the panes run shells (tmuxp), which get the hangup and time to exit first.
    """
    socket = f"{SOCKET_PREFIX}{tag}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix=SOCKET_PREFIX) as tmp:
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
            with signals_held():  # a second SIGTERM must not cut the cleanup short
                if shells:
                    hang_up(socket)
                shutdown_server(socket, state_root=home)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def hang_up(socket: str) -> None:
    """Kill the server and give what ran in its panes time to exit on the hangup.

    Shells exit on SIGHUP and run their exit traps (pyenv's rehash releases its lock
    there); SIGKILL at once would leave such locks behind for every later shell.
    """
    listed = tmux(socket, "list-panes", "-a", "-F", "#{pane_pid}")
    pids = [int(p) for p in listed.stdout.split() if p.isdigit()] if listed.returncode == 0 else []
    procs: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            pane = psutil.Process(pid)
            procs += [pane, *pane.children(recursive=True)]
    tmux(socket, "kill-server")
    _, alive = psutil.wait_procs(procs, timeout=HANGUP_GRACE)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def leftover_servers() -> list[str]:
    """Sockets of earlier benchmark runs: dead ones are removed, live ones returned.

    A live one is another benchmark running now, or one killed with SIGKILL; either way
    its processes load the machine, so the caller says so.
    """
    folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    live = []
    for path in sorted(folder.glob(f"{SOCKET_PREFIX}*")):
        if tmux(path.name, "list-sessions").returncode == 0:
            live.append(path.name)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return live


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGTERM/SIGHUP back until the block is done (they arrive afterwards)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def exit_on_signals() -> None:
    """SIGTERM / SIGHUP end the run like Ctrl-C: every ``finally`` (server cleanup) runs."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}: servers cleaned up")

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)


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


def wait_until(
    predicate: Callable[[], bool], *, what: str | Callable[[], str], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise Failed(f"timed out after {timeout:g}s waiting for {detail}")
        time.sleep(POLL)


def all_running(cluster: TmuxCluster, name: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        observed = cluster.observe(experiments=[name])
        bad = [o for o in observed if o.state in (ProcessState.UNKNOWN, ProcessState.EXITED)]
        if bad:
            raise Failed(f"{len(bad)} process(es) failed to start, e.g. {bad[0]}")
        return sum(o.state is ProcessState.RUNNING for o in observed) == count

    return check


# --------------------------------------------------------------------------- (a) symphony


def launch_symphony(*, use_cli: bool, timeout: float) -> float:
    with isolated("launch") as (_socket, tmp, env):
        path = tmp / "launch.yaml"
        path.write_text(manifest("launch", LAUNCH))
        cluster = TmuxCluster(LOCAL)
        start = time.perf_counter()
        if use_cli:
            result = cli(["apply", "-f", str(path), "--wait", "--timeout", f"{timeout:g}"], env)
            if result.returncode != 0:
                raise Failed(f"symphony apply failed: {result.stdout}{result.stderr}")
        else:
            exp = experiment("launch", LAUNCH)
            cluster.apply(diff([exp], cluster.observe()), [exp])
        wait_until(
            all_running(cluster, "launch", LAUNCH), what="100 running processes", timeout=timeout
        )
        return time.perf_counter() - start


# --------------------------------------------------------------------------- (b) tmuxp


@dataclass(frozen=True)
class Workspace:
    """One way of writing the 100-window tmuxp workspace, and the shell its panes get."""

    name: str
    about: str
    shell: str | None  # SHELL for the tmux server tmuxp starts; None: the login shell
    direct: bool = False  # window_shell: the command replaces the shell

    def config(self) -> dict[str, object]:
        command = " ".join(COMMAND)
        window = (
            (lambda i: {"window_name": f"p{i}", "window_shell": command, "panes": [None]})
            if self.direct
            else (lambda i: {"window_name": f"p{i}", "panes": [command]})
        )
        return {"session_name": "launch", "windows": [window(i) for i in range(LAUNCH)]}

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        shell = self.shell or pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
        clean = {k: v for k, v in env.items() if not k.startswith("SYMPHONY_")}
        if self.shell is not None:  # a POSIX sh reads $ENV when interactive: nothing at all
            for key in ("ENV", "BASH_ENV", "PROMPT_COMMAND"):
                clean.pop(key, None)
        return {**clean, "SHELL": shell}


WORKSPACES = {
    w.name: w
    for w in (
        Workspace("sh", "panes: [sleep 1000] typed into /bin/sh", "/bin/sh"),
        Workspace(
            "direct", "window_shell: sleep 1000 (no interactive shell)", "/bin/sh", direct=True
        ),
        Workspace("login", "panes: [sleep 1000] typed into your login shell", None),
    )
}


@dataclass
class Panes:
    """The panes of the tmuxp server as last observed."""

    socket: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # pid, dead, command

    def observe(self) -> Panes:
        fields = "#{pane_pid} #{pane_dead} #{pane_current_command}"
        listed = tmux(self.socket, "list-panes", "-a", "-F", fields)
        self.rows = [
            (parts[0], parts[1], parts[2] if len(parts) > 2 else "")
            for parts in (line.split(" ", 2) for line in listed.stdout.splitlines())
            if len(parts) >= 2
        ]
        return self

    def running(self) -> int:
        """Panes whose command runs: tmux's ``pane_current_command`` names the foreground
        process group's leader, which is the shell when ``sh -c CMD`` does not exec (dash):
        then the pane's processes are looked at."""
        return sum(
            dead != "1" and (command == COMMAND[0] or runs_command(int(pid)))
            for pid, dead, command in self.rows
        )

    def describe(self) -> str:
        """What the panes run, and for one that does not run the command, its processes."""
        counts = Counter(command if dead != "1" else "(dead)" for _, dead, command in self.rows)
        text = f"{len(self.rows)} panes: " + ", ".join(f"{n} {c}" for c, n in counts.most_common())
        stuck = [pid for pid, dead, command in self.rows if dead != "1" and command != COMMAND[0]]
        if stuck:
            text += f"; a stuck pane runs: {process_tree(int(stuck[0]))}"
        return text


def runs_command(pid: int) -> bool:
    """Whether ``pid`` or a descendant runs :data:`COMMAND` (Linux /proc, cheap per pane)."""
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            argv = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")[:-1]
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        if [a.decode(errors="replace") for a in argv] == list(COMMAND):
            return True
        stack.extend(int(child) for child in children)
    return False


def process_tree(pid: int) -> str:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        return " | ".join(" ".join(p.cmdline())[:80] or p.name() for p in procs)
    except psutil.Error as exc:
        return f"(gone: {exc})"


def launch_tmuxp(workspace: Workspace, *, timeout: float) -> float:
    import yaml

    with isolated("tmuxp", shells=True) as (socket, tmp, env):
        path = tmp / "workspace.yaml"
        path.write_text(yaml.safe_dump(workspace.config()))
        panes = Panes(socket)
        start = time.perf_counter()
        try:
            loaded = subprocess.run(
                ["tmuxp", "load", "-d", "-y", "-L", socket, str(path)],
                env=workspace.environment(env),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise Failed(
                f"tmuxp load did not return within {timeout:g}s; {panes.observe().describe()}"
            ) from None
        if loaded.returncode != 0:
            raise Failed(
                f"tmuxp load failed ({loaded.returncode}): {(loaded.stdout + loaded.stderr).strip()[-500:]}"
            )
        if len(panes.observe().rows) < LAUNCH:  # windows do not appear after tmuxp returns
            raise Failed(f"tmuxp built too few windows; {panes.describe()}")
        remaining = max(0.0, timeout - (time.perf_counter() - start))
        wait_until(
            lambda: panes.observe().running() == LAUNCH,
            what=lambda: f"{LAUNCH} panes running {COMMAND[0]}; {panes.describe()}",
            timeout=remaining,
        )
        return time.perf_counter() - start


# --------------------------------------------------------------------------- (c) no-op


def noop_reapply(runs: int, *, use_cli: bool, timeout: float) -> dict[str, list[float]]:
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
            timeout=max(timeout, 600),
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
                raise Failed(f"a no-op re-apply planned {plan.actions} actions")
            results["observe"].append(t1 - t0)
            results["diff"].append(t2 - t1)
            results["observe+diff"].append(t2 - t0)
            if use_cli:
                t0 = time.perf_counter()
                applied = cli(["apply", "-f", str(path)], env)
                results["cli"].append(time.perf_counter() - t0)
                if applied.returncode != 0:
                    raise Failed(f"symphony apply failed: {applied.stdout}{applied.stderr}")
                changed = cli(["diff", "-f", str(path)], env)
                if changed.returncode != 0:
                    raise Failed(f"symphony diff sees changes after apply:\n{changed.stdout}")
    return results


# --------------------------------------------------------------------------- main


@dataclass
class Series:
    """The times of one measurement over the runs, or why it stopped."""

    label: str
    times: list[float] = field(default_factory=list)
    failure: str | None = None

    def run(self, measure: Callable[[], float]) -> str:
        if self.failure is not None:
            return f"{self.label} skipped"
        try:
            self.times.append(measure())
        except Failed as exc:
            self.failure = str(exc)
            return f"{self.label} FAILED: {exc}"
        return f"{self.label} {self.times[-1]:.2f} s"

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.failure is None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (median)")
    parser.add_argument("--quick", action="store_true", help="one run of each")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--tmuxp",
        default=",".join(WORKSPACES),
        help=f"tmuxp workspaces to measure, comma-separated (default: {','.join(WORKSPACES)})",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds one launch may take before it fails"
    )
    args = parser.parse_args(argv)
    runs = 1 if args.quick else max(1, args.runs)
    chosen = [name.strip() for name in args.tmuxp.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(WORKSPACES))
    if unknown:
        parser.error(f"unknown tmuxp workspace(s) {unknown}; choose from {sorted(WORKSPACES)}")
    exit_on_signals()
    use_cli = cli_available()
    how = "symphony apply -f FILE --wait (CLI)" if use_cli else "TmuxCluster.apply (no CLI yet)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"tmux {_tmux_version()}, tmuxp {_tmuxp_version()}, {os.cpu_count()} CPUs, load {load}")
    print(f"{runs} run(s) each, interleaved; Symphony via {how}")
    for name in chosen:
        print(f"  tmuxp {name:7} {WORKSPACES[name].about}")
    live = leftover_servers()
    if live:
        print(f"  warning: {len(live)} other benchmark tmux server(s) running: {', '.join(live)}")

    symphony = Series("symphony")
    tmuxp = {name: Series(f"tmuxp {name}") for name in chosen}
    for i in range(runs):
        done = [symphony.run(partial(launch_symphony, use_cli=use_cli, timeout=args.timeout))]
        for name, series in tmuxp.items():
            done.append(series.run(partial(launch_tmuxp, WORKSPACES[name], timeout=args.timeout)))
        print(f"  run {i + 1}: " + "; ".join(done), flush=True)
    noop = Series("(c) no-op re-apply")
    noop_times: dict[str, list[float]] = {}
    try:
        noop_times = noop_reapply(max(runs, 3), use_cli=use_cli, timeout=args.timeout)
    except Failed as exc:
        noop.failure = str(exc)

    a = symphony.median
    rows = [
        ("(a) launch 100, until all running", _s(a), f"via {'CLI' if use_cli else 'API'}"),
    ]
    for name, series in tmuxp.items():
        b = series.median
        rows.append(
            (f"(b) tmuxp {name}: 100 windows, until all run", _s(b), WORKSPACES[name].about)
        )
        target = "target >= 10x" if name == "sh" else ""
        ratio = f"{b / a:.1f}x" if a and b else "—"
        rows.append(("    speed-up (b)/(a)", ratio, target))
    if noop_times:
        rows += [
            (
                "(c) 1,000 converged: observe",
                _ms(noop_times["observe"]),
                "one list-windows + state files",
            ),
            ("    diff", _ms(noop_times["diff"]), "0 actions"),
            ("    observe + diff", _ms(noop_times["observe+diff"]), "target <= 1 s"),
        ]
        if noop_times["cli"]:
            rows.append(
                ("    symphony apply -f (whole CLI)", _ms(noop_times["cli"]), "target <= 1 s")
            )
    print()
    print(f"{'medians':48} {'time':>10}  note")
    for label, value, note in rows:
        print(f"{label:48} {value:>10}  {note}")
    failures = [s for s in (symphony, *tmuxp.values(), noop) if s.failure]
    for series in failures:
        print(f"FAILED {series.label}: {series.failure}", file=sys.stderr)
    if failures:
        return 1
    if args.check:
        fair = tmuxp.get("sh")
        ratio_ok = fair is None or (
            a is not None and fair.median is not None and fair.median / a >= 10
        )
        total = statistics.median(noop_times["cli"] or noop_times["observe+diff"])
        if not ratio_ok or total > 1.0:
            print("a target was missed", file=sys.stderr)
            return 1
    return 0


def _s(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f} s"


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def _tmux_version() -> str:
    return subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()


def _tmuxp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tmuxp")
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(main())
