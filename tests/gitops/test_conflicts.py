"""Two sources declaring one experiment: one owner, the other reports a conflict and touches
nothing. Real tmux on this test's own socket, real git repositories and folders; the
loop's clock is stepped by hand where a test runs in process, and the real CLI runs where
the point is separate processes (``watch --once`` twice, ``serve``)."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest

from symphony import workspace
from symphony.clusters.tmux import TmuxCluster
from symphony.gitops.config import SourceConfig
from symphony.gitops.loop import Loop
from symphony.gitops.ownership import RunBy
from symphony.gitops.report import status_document
from symphony.gitops.runner import SourceRunner
from symphony.gitops.service import make_runners
from symphony.reconciler import Reconciler
from symphony.testing import wait_for

from .conftest import GitRepo
from .helpers import FakeClock, experiment
from .test_end_to_end import Daemon, cli, get, live, ls

pytestmark = pytest.mark.timeout(90)

X_P = experiment("x", {"p": "sleep 600"})  # the first source's version of x
X_Q = experiment("x", {"q": "sleep 600"})  # the second one's
OWNED = re.compile(
    r"experiment 'x' is owned by source '(?P<owner>[a-z0-9-]+)' \((?P<how>[^)]*)\); "
    r"declared here too in (?P<where>\S+) — not applied"
)


def folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def files_config(path: Path, **kw: Any) -> SourceConfig:
    return SourceConfig(type="files", paths=(str(path),), **kw)


def pids(cluster: TmuxCluster, name: str) -> dict[str, tuple[int | None, int]]:
    return {o.key: (o.pid, o.restarts) for o in cluster.observe() if o.experiment == name}


def keys(cluster: TmuxCluster) -> set[tuple[str, str]]:
    """Every process of every experiment, whatever its state."""
    return {(o.experiment, o.key) for o in cluster.observe()}


def running_pids(cluster: TmuxCluster, name: str) -> dict[str, tuple[int | None, int]]:
    """Once every process of ``name`` runs: key -> (pid, restarts)."""
    return wait_for(
        lambda: (
            (found := pids(cluster, name))
            and set(found) == {k for e, k in live(cluster) if e == name}
            and found
        ),
        timeout=20,
        message=lambda: f"{name} not running: {cluster.observe()}",
    )


def error_of(runner: SourceRunner, name: str) -> str | None:
    return runner.status()["experiments"].get(name, {}).get("error")  # type: ignore[no-any-return]


def test_two_sources_of_one_serve_one_owns_the_other_reports_and_nothing_restarts(
    repo: GitRepo, tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    repo.commit({"x.yaml": X_P, "a.yaml": experiment("a", {"p": "sleep 600"})})
    other = folder(tmp_path / "b", {"x.yaml": X_Q, "b.yaml": experiment("b", {"q": "sleep 600"})})
    lines: list[str] = []
    run_by = RunBy("serve", str(tmp_path / "server.yaml"))
    configs = [
        SourceConfig(type="git", name="ops", repo=str(repo.remote), interval=1),
        files_config(other, name="team-b", interval=1),
    ]
    first, second = make_runners(configs, log=lines.append, run_by=run_by)
    clock = FakeClock()
    loop = Loop([first, second], resync=30, clock=clock)
    loop.step()
    # the first in config order owns x; everything else of both sources converges
    assert keys(tmux_cluster) == {("a", "p"), ("x", "p"), ("b", "q")}
    found = OWNED.fullmatch(error_of(second, "x") or "")
    assert found, error_of(second, "x")
    assert found["owner"] == "ops" and found["how"] == f"serve: {run_by.config}"
    assert found["where"] == f"{other / 'x.yaml'}:3"  # metadata.name
    assert workspace.applied()["x"].source == "ops"
    before = running_pids(tmux_cluster, "x")
    for _ in range(3):  # resyncs: neither source re-applies its version, nothing restarts
        clock.advance(30)
        loop.step()
    assert pids(tmux_cluster, "x") == before and keys(tmux_cluster) == {
        ("a", "p"), ("x", "p"), ("b", "q"),
    }  # fmt: skip
    conflict_lines = [line for line in lines if " x: conflict " in line]
    assert len(conflict_lines) == 1, lines  # said once, not at every resync
    assert conflict_lines[0].startswith("team-b: x: conflict at ")
    assert conflict_lines[0].endswith(f" ({error_of(second, 'x')})")

    status = status_document([first, second], Reconciler())
    rows = {(e["name"], e["source"]): e for e in status["experiments"]}
    assert rows[("x", "ops")]["sync"] == "Synced" and rows[("x", "ops")]["error"] is None
    assert rows[("x", "team-b")]["sync"] == "OutOfSync"
    assert rows[("x", "team-b")]["owner"] == "ops" and rows[("x", "team-b")]["revision"] is None
    assert rows[("b", "team-b")]["sync"] == "Synced"
    shown = ls()  # the real CLI, from the status files
    assert shown["x"]["source"] == "ops" and shown["x"]["error"] == error_of(second, "x")
    assert shown["x"]["sync"] == "Synced"  # the owner's row: live matches what its owner applied

    # the owner stops declaring x: it hands it to the other, which takes it at once
    repo.commit({"x.yaml": None}, "x leaves ops")
    clock.advance(1)
    loop.step()
    assert keys(tmux_cluster) == {("a", "p"), ("x", "q"), ("b", "q")}
    assert any(line.startswith("ops: x: released") for line in lines), lines
    assert workspace.applied()["x"].source == "team-b" and error_of(second, "x") is None
    assert second.status()["experiments"]["x"]["history"][0]["reason"] == "released"
    # and now the first is the one that reports it
    repo.commit({"x.yaml": X_P}, "x back in ops")
    clock.advance(1)
    loop.step()
    found = OWNED.fullmatch(error_of(first, "x") or "")
    assert found and found["owner"] == "team-b" and found["where"] == "x.yaml:3"
    assert keys(tmux_cluster) == {("a", "p"), ("x", "q"), ("b", "q")}


def test_a_hand_applied_experiment_is_not_taken_over_unless_the_source_may_adopt(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    (tmp_path / "x.yaml").write_text(X_P)
    assert cli("apply", "-f", str(tmp_path / "x.yaml")).returncode == 0
    before = running_pids(tmux_cluster, "x")
    source = folder(
        tmp_path / "src", {"x.yaml": X_Q, "b.yaml": experiment("b", {"q": "sleep 600"})}
    )
    (runner,) = make_runners([files_config(source)], log=lambda _line: None)
    result = runner.reconcile("start")
    assert result.conflicts == ("x",) and result.ok
    assert (error_of(runner, "x") or "").startswith(
        f"experiment 'x' was applied by hand (symphony apply); declared here too in "
        f"{source / 'x.yaml'}:3 — not applied (adopt: true or --adopt takes it over)"
    )
    runner.reconcile("resync")
    assert pids(tmux_cluster, "x") == before and ("b", "q") in keys(tmux_cluster)
    assert workspace.applied()["x"].source == "cli"
    row = ls()["x"]
    assert row["source"] == "cli" and row["error"] == error_of(runner, "x")

    (adopting,) = make_runners([files_config(source, adopt=True)], log=lambda _line: None)
    assert adopting.reconcile("start").conflicts == ()
    assert set(pids(tmux_cluster, "x")) == {"q"}
    assert workspace.applied()["x"].source == adopting.id
    assert ls()["x"].get("error") is None


def test_a_source_removed_from_the_server_config_lets_another_take_over(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    a = files_config(folder(tmp_path / "a", {"x.yaml": X_P}), name="a")
    b = files_config(folder(tmp_path / "b", {"x.yaml": X_Q}), name="b")
    config = str(tmp_path / "server.yaml")
    runners = make_runners([a, b], log=lambda _line: None, run_by=RunBy("serve", config))
    for runner in runners:  # as `serve --once` does
        runner.reconcile("once")
        runner.running = False
        runner.save()
    assert set(pids(tmux_cluster, "x")) == {"p"}

    # another serve config holds b too: a is not running, but still owns x
    (elsewhere,) = make_runners(
        [b], log=lambda _line: None, run_by=RunBy("serve", str(tmp_path / "other.yaml"))
    )
    elsewhere.reconcile("start")
    found = OWNED.match(error_of(elsewhere, "x") or "")
    assert found and found["how"] == f"serve: {config}, not running"
    assert set(pids(tmux_cluster, "x")) == {"p"}

    # a leaves the config it was run from: it is retired, and b takes x
    lines: list[str] = []
    (again,) = make_runners([b], log=lines.append, run_by=RunBy("serve", config))
    assert lines == [f"a: no longer in {config}: what it owns may be taken over"]
    assert again.reconcile("start").conflicts == ()
    assert set(pids(tmux_cluster, "x")) == {"q"} and workspace.applied()["x"].source == "b"


def test_two_separate_watch_once_processes(tmux_cluster: TmuxCluster, tmp_path: Path) -> None:
    one = folder(tmp_path / "one", {"x.yaml": X_P, "a.yaml": experiment("a", {"p": "sleep 600"})})
    two = folder(tmp_path / "two", {"x.yaml": X_Q, "b.yaml": experiment("b", {"q": "sleep 600"})})
    assert cli("watch", str(one), "--once").returncode == 0
    owner = workspace.applied()["x"].source
    before = running_pids(tmux_cluster, "x")

    done = cli("watch", str(two), "--once")
    assert done.returncode == 2, done.stderr
    found = OWNED.match(done.stderr)
    assert found and found["owner"] == owner, done.stderr
    assert found["how"] == f"watch: {one}, not running"
    assert keys(tmux_cluster) == {("a", "p"), ("x", "p"), ("b", "q")}
    assert pids(tmux_cluster, "x") == before
    assert ls()["x"]["error"] == done.stderr.strip()

    # --adopt takes over from an owner that is not running; the first then reports it
    assert cli("watch", str(two), "--once", "--adopt").returncode == 0
    assert set(pids(tmux_cluster, "x")) == {"q"}
    done = cli("watch", str(one), "--once")
    assert done.returncode == 2 and OWNED.match(done.stderr), done.stderr
    assert set(pids(tmux_cluster, "x")) == {"q"}

    # the owner stops declaring it: it prunes it, and the other takes it on its next pass
    (two / "x.yaml").unlink()
    assert cli("watch", str(two), "--once").returncode == 0
    assert ("x", "q") not in keys(tmux_cluster)
    assert cli("watch", str(one), "--once").returncode == 0
    assert keys(tmux_cluster) == {("a", "p"), ("x", "p"), ("b", "q")}
    assert workspace.applied()["x"].source == owner


def test_serve_with_two_sources_of_one_experiment_never_flaps(
    repo: GitRepo, tmux_cluster: TmuxCluster, daemons: list[Daemon], tmp_path: Path
) -> None:
    repo.commit({"x.yaml": X_P}, "x")
    folder(tmp_path / "watched", {"x.yaml": X_Q, "b.yaml": experiment("b", {"q": "sleep 600"})})
    config = tmp_path / "server.yaml"
    config.write_text(
        "listen: 127.0.0.1:0\n"
        "resync: 0.5\n"
        "sources:\n"
        f"  - {{type: git, name: ops, repo: {repo.remote}, interval: 0.2}}\n"
        "  - {type: watch, name: team-b, path: watched}\n"
    )
    serve = Daemon(tmp_path, "serve", "-c", str(config))
    daemons.append(serve)
    address = wait_for(
        lambda: re.search(r"on http://(127\.0\.0\.1:\d+)", serve.output()),
        timeout=30,
        message=serve.output,
    ).group(1)

    def conflict() -> dict[str, Any] | None:
        _code, status = get(f"http://{address}/status")
        rows = {(e["name"], e["source"]): e for e in status["experiments"]}
        row = rows.get(("x", "team-b"))
        return row if row and row.get("error") else None

    row = wait_for(conflict, timeout=30, message=serve.output)
    assert OWNED.fullmatch(row["error"]) and row["owner"] == "ops", row
    wait_for(lambda: ("b", "q") in keys(tmux_cluster), timeout=30, message=serve.output)
    before = running_pids(tmux_cluster, "x")
    assert set(before) == {"p"}
    resyncs: set[float] = set()

    def several_resyncs() -> bool:
        _code, status = get(f"http://{address}/status")
        source = next(s for s in status["sources"] if s["id"] == "team-b")
        last = source.get("last_pass") or {}
        if last.get("reason") == "resync":
            resyncs.add(last["time"])
        return len(resyncs) >= 4

    wait_for(several_resyncs, timeout=30, interval=0.1, message=serve.output)
    assert pids(tmux_cluster, "x") == before
    assert serve.output().count("team-b: x: conflict") == 1, serve.output()
    assert serve.stop(signal.SIGTERM) == 0


def test_after_a_restart_of_serve_the_owner_keeps_it_even_against_an_adopting_source(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    """The sources of one serve are peers: one that may adopt never takes over from another
    that has simply not run its first pass yet."""
    a_folder = folder(tmp_path / "a", {"a.yaml": experiment("a", {"p": "sleep 600"})})
    a = files_config(a_folder, name="a", adopt=True)
    b = files_config(folder(tmp_path / "b", {"x.yaml": X_Q}), name="b")
    run_by = RunBy("serve", str(tmp_path / "server.yaml"))
    for runner in make_runners([a, b], log=lambda _line: None, run_by=run_by):
        runner.reconcile("once")
        runner.running = False
        runner.save()
    before = running_pids(tmux_cluster, "x")
    (a_folder / "x.yaml").write_text(X_P)  # while serve was down
    first, second = make_runners([a, b], log=lambda _line: None, run_by=run_by)
    assert first.reconcile("start").conflicts == ("x",)
    found = OWNED.fullmatch(error_of(first, "x") or "")
    assert found and found["owner"] == "b" and found["how"] == f"serve: {run_by.config}"
    assert second.reconcile("start").conflicts == ()
    assert pids(tmux_cluster, "x") == before and workspace.applied()["x"].source == "b"


def _status(*, running: bool = True, retired: bool = False) -> dict[str, Any]:
    import os

    return {
        "source": {"id": "o", "type": "watch", "paths": ["/m"], "run_by": {"command": "watch"}},
        "running": running,
        "retired": retired,
        "pid": os.getpid(),
    }


@pytest.mark.parametrize(
    ("owner", "status", "adopt", "declared", "ours", "says"),
    [
        (None, None, False, {}, True, None),
        ("me", None, False, {}, True, None),
        ("cli", None, False, {}, False, "was applied by hand (symphony apply)"),
        ("cli", None, True, {}, True, None),
        ("o", _status(), False, {}, False, "owned by source 'o' (watch: /m); declared"),
        ("o", _status(), True, {}, False, "(watch: /m); declared here too in f:3 — not applied"),
        ("o", _status(running=False), False, {}, False, "(watch: /m, not running)"),
        ("o", _status(running=False), True, {}, True, None),
        ("o", _status(retired=True), False, {}, True, None),
        ("o", None, False, {}, False, "(no status: not run from this state folder)"),
        ("o", None, True, {}, True, None),
        # peers in one serve: "first" precedes "me" in the config
        (None, None, False, {"first": {"x"}}, False, "owned by source 'first' (this process)"),
        (None, None, False, {"first": {"y"}}, True, None),
        (None, None, False, {"later": {"x"}}, True, None),
        ("later", None, True, {"later": None}, False, "source 'later' (this process)"),
        ("later", None, False, {"later": {"x"}}, False, "source 'later'"),
        ("later", None, False, {"later": {"y"}}, True, None),  # it stopped declaring x
    ],
)
def test_who_may_apply_an_experiment(
    owner: str | None,
    status: dict[str, Any] | None,
    adopt: bool,
    declared: dict[str, set[str] | None],
    ours: bool,
    says: str | None,
) -> None:
    from symphony.gitops.ownership import Claims, decide

    claims = Claims(("first", "me", "later"))
    for peer, names in declared.items():
        if names is not None:
            claims.update(peer, frozenset(names), ())
    verdict = decide(
        "x",
        me="me",
        owner=owner,
        where="f:3",
        adopt=adopt,
        claims=claims,
        status_of=lambda ident: status if ident == "o" else None,
    )
    assert verdict.ours is ours
    assert (verdict.message is None) if says is None else (says in (verdict.message or ""))
