"""The tmux cluster against a real tmux server on its own socket, running real processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from symphony.clusters.base import Cluster, FileCopier, LogSource, ProcessAccess, ServiceLocator
from symphony.clusters.tmux import TmuxCluster
from symphony.clusters.tmux_stop import alive
from symphony.errors import OperationFailed, UserError
from symphony.model import (
    Endpoint,
    Experiment,
    ObservedProcess,
    ProcessSpec,
    ProcessState,
    RestartPolicy,
    RestartType,
)
from symphony.plan import Plan, diff
from symphony.testing import wait_for

pytestmark = pytest.mark.timeout(60)
PY = sys.executable
NEVER = RestartPolicy()

DUMP_ENV = "import json, os, sys, time; json.dump({**os.environ, 'PWD': os.getcwd()}, open(sys.argv[1], 'w')); time.sleep(300)"

ECHO_SERVER = """
import os, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((os.environ["SYMPH_ECHO_HOST"], int(os.environ["SYMPH_ECHO_PORT"]))); s.listen()
while True:
    c, _ = s.accept(); c.sendall(b"echo:" + c.recv(100)); c.close()
"""

ECHO_CLIENT = """
import os, socket, sys, time
host, port = os.environ["SYMPH_ECHO_ADDR"].rsplit(":", 1)
for _ in range(200):
    try:
        c = socket.create_connection((host, int(port)), timeout=2); break
    except OSError:
        time.sleep(0.05)
c.sendall(os.environ["SYMPH_PROCESS"].encode()); reply = c.recv(100)
open(sys.argv[1], "wb").write(reply)
"""


def proc(
    name: str,
    command: Sequence[str],
    *,
    experiment: str = "exp",
    group: str | None = None,
    env: dict[str, str] | None = None,
    binds: Sequence[Endpoint] = (),
    exposes: Sequence[Endpoint] = (),
    connects: Sequence[str] = (),
    restart: RestartPolicy = NEVER,
    workdir: str = ".",
) -> ProcessSpec:
    return ProcessSpec(
        experiment=experiment,
        name=name,
        base_name=name,
        group=group,
        command=tuple(command),
        env=env or {},
        binds=tuple(binds),
        exposes=tuple(exposes),
        connects=tuple(connects),
        restart_policy=restart,
        workdir=workdir,
    )


def experiment(
    *processes: ProcessSpec, name: str = "exp", labels: dict[str, str] | None = None
) -> Experiment:
    """An experiment named ``name``; its processes are re-stamped with that name."""
    stamped = tuple(replace(p, experiment=name) for p in processes)
    return Experiment(name=name, processes=stamped, labels=labels or {})


def converge(cluster: TmuxCluster, *experiments: Experiment, prune: bool = False) -> Plan:
    plan = diff(experiments, cluster.observe(), prune=prune)
    cluster.apply(plan, experiments)
    return plan


def states(cluster: TmuxCluster, name: str = "exp") -> dict[str, ObservedProcess]:
    return {o.key: o for o in cluster.observe(experiments=[name])}


def wait_state(
    cluster: TmuxCluster, key: str, state: ProcessState, *, name: str = "exp", timeout: float = 20
) -> ObservedProcess:
    def ready() -> ObservedProcess | None:
        found = states(cluster, name).get(key)
        return found if found is not None and found.state is state else None

    return wait_for(
        ready,
        timeout=timeout,
        message=lambda: f"{key} is not {state}: {states(cluster, name).get(key)}",
    )


def read_json_file(path: Path) -> dict[str, str]:
    wait_for(lambda: path.exists() and path.stat().st_size > 0, message=f"{path} never written")
    data: dict[str, str] = wait_for(lambda: _try_json(path), message=f"{path} is not JSON")
    return data


def _try_json(path: Path) -> dict[str, str] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except ValueError:
        return None


def tmux(cluster: TmuxCluster, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", cluster.socket_name, *args], capture_output=True, text=True, check=True
    ).stdout


# --------------------------------------------------------------------------- create


def test_implements_every_protocol(tmux_cluster: TmuxCluster) -> None:
    for protocol in (Cluster, LogSource, ServiceLocator, ProcessAccess, FileCopier):
        assert isinstance(tmux_cluster, protocol)


def test_create_runs_each_process_in_its_window_with_the_symph_environment(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    exp = experiment(
        proc("learner", [PY, "-c", DUMP_ENV, str(tmp_path / "learner.json")], env={"SEED": "7"},
             binds=[Endpoint("replay-server")], exposes=[Endpoint("board", exposed=True)],
             workdir=str(tmp_path)),
        proc("evaluator", [PY, "-c", DUMP_ENV, str(tmp_path / "eval.json")], group="eval",
             connects=["replay-server"]),
        labels={"team": "rl"},
    )  # fmt: skip
    plan = converge(tmux_cluster, exp)
    assert [p.key for p in plan.create] == ["eval/evaluator", "learner"]

    learner = wait_state(tmux_cluster, "learner", ProcessState.RUNNING)
    assert learner.ready and learner.pid and learner.started_at and learner.node == "localhost"
    assert learner.cluster == "local" and learner.spec_hash == exp.process("learner").spec_hash()
    evaluator = wait_state(tmux_cluster, "eval/evaluator", ProcessState.RUNNING)
    assert evaluator.group == "eval" and evaluator.name == "evaluator"

    env = read_json_file(tmp_path / "learner.json")
    port = int(env["SYMPH_REPLAY_SERVER_PORT"])
    assert env["SYMPH_REPLAY_SERVER_HOST"] == "127.0.0.1"
    assert env["SYMPH_REPLAY_SERVER_ADDR"] == f"127.0.0.1:{port}"
    assert int(env["SYMPH_BOARD_PORT"]) not in (port, 0)
    assert (env["SYMPH_EXPERIMENT"], env["SYMPH_PROCESS"], env["SYMPH_PROCESS_GROUP"]) == (
        "exp",
        "learner",
        "",
    )
    assert (env["SYMPH_REPLICA"], env["SYMPH_CLUSTER"], env["SEED"]) == ("0", "local", "7")
    assert env["PWD"] == str(tmp_path)
    assert alive(learner.pid or 0)
    other = read_json_file(tmp_path / "eval.json")
    assert (
        other["SYMPH_PROCESS_GROUP"] == "eval"
        and other["SYMPH_REPLAY_SERVER_ADDR"] == env["SYMPH_REPLAY_SERVER_ADDR"]
    )

    # one session named after the experiment, one window per process named by its key
    rows = tmux(
        tmux_cluster, "list-windows", "-a", "-F", "#{session_name} #{window_name} #{@symphony-key}"
    )
    assert sorted(rows.split("\n")[:-1]) == [
        "exp eval/evaluator eval/evaluator",
        "exp learner learner",
    ]
    options = tmux(tmux_cluster, "show-options", "-t", "=exp:")
    assert "@symphony-managed 1" in options and '\\"team\\":\\"rl\\"' in options
    assert [(s.name, s.processes, s.running, s.labels) for s in tmux_cluster.experiments()] == [
        ("exp", 2, 2, {"team": "rl"})
    ]


def test_two_processes_talk_over_their_symph_addresses(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    exp = experiment(
        proc("server", [PY, "-c", ECHO_SERVER], binds=[Endpoint("echo")]),
        proc("client", [PY, "-c", ECHO_CLIENT, str(tmp_path / "reply")], connects=["echo"]),
    )
    converge(tmux_cluster, exp)
    wait_state(tmux_cluster, "client", ProcessState.COMPLETED)
    assert (tmp_path / "reply").read_bytes() == b"echo:client"
    assert states(tmux_cluster)["server"].state is ProcessState.RUNNING


# --------------------------------------------------------------------------- update / delete


def test_update_restarts_only_the_changed_process_and_keeps_ports(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    def build(version: str) -> Experiment:
        return experiment(
            proc("a", [PY, "-c", DUMP_ENV, str(tmp_path / "a.json")], env={"V": version},
                 binds=[Endpoint("api")]),
            proc("b", [PY, "-c", DUMP_ENV, str(tmp_path / "b.json")], connects=["api"]),
        )  # fmt: skip

    converge(tmux_cluster, build("1"))
    before = {k: wait_state(tmux_cluster, k, ProcessState.RUNNING) for k in ("a", "b")}
    url = tmux_cluster.url("exp", "api")
    port = read_json_file(tmp_path / "a.json")["SYMPH_API_PORT"]
    (tmp_path / "a.json").unlink()

    plan = converge(tmux_cluster, build("2"))
    assert [p.key for p in plan.update] == ["a"] and not plan.create and not plan.delete
    assert not alive(before["a"].pid or 0), "the old process must be stopped"
    after = wait_state(tmux_cluster, "a", ProcessState.RUNNING)
    assert after.pid != before["a"].pid and after.restarts == 0
    assert states(tmux_cluster)["b"].pid == before["b"].pid
    env = read_json_file(tmp_path / "a.json")
    assert env["V"] == "2" and env["SYMPH_API_PORT"] == port
    assert tmux_cluster.url("exp", "api") == url
    log = "".join(tmux_cluster.logs("exp", "a"))
    assert "[symphony] spec changed" in log
    assert diff([build("2")], TmuxCluster(tmux_cluster.spec).observe()).empty


def test_delete_a_process_stops_it_and_deleting_the_last_kills_the_session(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    sleeper = [PY, "-c", "import time; print('up', flush=True); time.sleep(300)"]
    both = experiment(proc("keep", sleeper), proc("drop", sleeper, group="g"))
    converge(tmux_cluster, both)
    drop = wait_state(tmux_cluster, "g/drop", ProcessState.RUNNING)
    wait_state(tmux_cluster, "keep", ProcessState.RUNNING)

    plan = converge(tmux_cluster, experiment(proc("keep", sleeper)))
    assert [o.key for o in plan.delete] == ["g/drop"]
    assert set(states(tmux_cluster)) == {"keep"}
    assert not alive(drop.pid or 0)
    folder = symphony_home / "tmux" / tmux_cluster.socket_name / "exp"
    assert not (folder / "g__drop.spec.json").exists() and (folder / "g__drop.log").exists()

    # prune: the experiment is no longer declared at all
    keep = states(tmux_cluster)["keep"]
    plan = converge(tmux_cluster, prune=True)
    assert [o.key for o in plan.delete] == ["keep"]
    assert tmux_cluster.observe() == [] and tmux_cluster.experiments() == []
    assert not alive(keep.pid or 0)
    assert subprocess.run(["tmux", "-L", tmux_cluster.socket_name, "has-session", "-t", "=exp"],
                          capture_output=True).returncode != 0  # fmt: skip


def test_delete_experiment_removes_session_and_state_but_keeps_logs(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    exp = experiment(
        proc("p", [PY, "-c", "import time; print('hello', flush=True); time.sleep(300)"],
             binds=[Endpoint("svc")]),
        proc("q", ["sh", "-c", "sleep 300"]),
    )  # fmt: skip
    converge(tmux_cluster, exp)
    p = wait_state(tmux_cluster, "p", ProcessState.RUNNING)
    wait_for(lambda: "hello" in "".join(tmux_cluster.logs("exp", "p")))
    tmux_cluster.delete_experiment("exp")
    assert tmux_cluster.observe() == [] and not alive(p.pid or 0)
    folder = symphony_home / "tmux" / tmux_cluster.socket_name / "exp"
    assert sorted(f.name for f in folder.iterdir()) == ["p.log", "q.log"]
    assert "hello" in "".join(tmux_cluster.logs("exp", "p"))  # post-mortem
    tmux_cluster.delete_experiment("exp")  # idempotent
    # creating it again starts from clean logs
    converge(tmux_cluster, exp)
    wait_state(tmux_cluster, "p", ProcessState.RUNNING)
    wait_for(lambda: "".join(tmux_cluster.logs("exp", "p")) == "hello\n")


def test_many_deletes_stop_in_parallel(tmux_cluster: TmuxCluster) -> None:
    # each child takes 1 s to honour SIGTERM: stopping 8 one by one would take 8 s
    slow = ["sh", "-c", "trap 'sleep 1; exit 0' TERM; while :; do sleep 0.1; done"]
    exp = experiment(*(proc(f"p{i}", slow) for i in range(8)))
    converge(tmux_cluster, exp)
    for i in range(8):
        wait_state(tmux_cluster, f"p{i}", ProcessState.RUNNING)
    time.sleep(0.3)  # let every shell install its trap
    started = time.monotonic()
    tmux_cluster.delete_experiment("exp")
    assert time.monotonic() - started < 5.0
    assert tmux_cluster.observe() == []


# --------------------------------------------------------------------------- status


def test_status_reports_what_really_happened(tmux_cluster: TmuxCluster) -> None:
    fast_fail = RestartPolicy(RestartType.ON_FAILURE, backoff_seconds=0.01)
    exp = experiment(
        proc("runs", ["sleep", "300"]),
        proc("done", ["true"]),
        proc("fails", ["sh", "-c", "exit 1"]),
        proc("loops", ["sh", "-c", "exit 2"], restart=fast_fail),
        proc("missing", ["/no/such/program"]),
    )
    converge(tmux_cluster, exp)
    running = wait_state(tmux_cluster, "runs", ProcessState.RUNNING)
    assert running.ready and running.exit_code is None
    done = wait_state(tmux_cluster, "done", ProcessState.COMPLETED)
    assert done.exit_code == 0 and not done.ready
    fails = wait_state(tmux_cluster, "fails", ProcessState.EXITED)
    assert fails.exit_code == 1 and not fails.ready
    loops = wait_state(tmux_cluster, "loops", ProcessState.CRASH_LOOP)
    assert loops.restarts >= 2 and loops.exit_code == 2 and "crash loop" in loops.reason
    missing = wait_state(tmux_cluster, "missing", ProcessState.EXITED)
    assert missing.exit_code == 127 and "not found" in missing.reason
    # finished windows stay, so a fresh object (no cache) sees the same
    fresh = {o.key: o.state for o in TmuxCluster(tmux_cluster.spec).observe()}
    assert fresh["done"] is ProcessState.COMPLETED and fresh["fails"] is ProcessState.EXITED
    assert diff([exp], TmuxCluster(tmux_cluster.spec).observe()).empty


def test_supervisor_killed_without_a_final_state_is_unknown(tmux_cluster: TmuxCluster) -> None:
    converge(tmux_cluster, experiment(proc("p", ["sleep", "300"])))
    child = wait_state(tmux_cluster, "p", ProcessState.RUNNING)
    pane_pid = int(tmux(tmux_cluster, "list-panes", "-a", "-F", "#{pane_pid}").strip())
    os.kill(pane_pid, signal.SIGKILL)
    gone = wait_state(tmux_cluster, "p", ProcessState.UNKNOWN)
    assert "vanished" in gone.reason and not gone.ready
    wait_for(lambda: not alive(child.pid or 0), message="the child outlived its supervisor")
    # nothing enforces its restart policy any more: re-applying restarts it in its window
    plan = converge(tmux_cluster, experiment(proc("p", ["sleep", "300"])))
    assert [p.key for p in plan.update] == ["p"]
    assert wait_state(tmux_cluster, "p", ProcessState.RUNNING).pid != child.pid


def test_window_closed_by_hand_is_missing_until_reapplied(tmux_cluster: TmuxCluster) -> None:
    exp = experiment(proc("a", ["sleep", "300"]), proc("b", ["sleep", "300"]))
    converge(tmux_cluster, exp)
    b = wait_state(tmux_cluster, "b", ProcessState.RUNNING)
    tmux(tmux_cluster, "kill-window", "-t", "=exp:=b")
    assert set(states(tmux_cluster)) == {"a"}
    wait_for(lambda: not alive(b.pid or 0), message="closing the window must stop the process")
    plan = converge(tmux_cluster, exp)
    assert [p.key for p in plan.create] == ["b"]
    assert wait_state(tmux_cluster, "b", ProcessState.RUNNING).pid != b.pid


# --------------------------------------------------------------------------- ports


def test_ports_are_stable_fixed_where_asked_and_distinct_across_experiments(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    sleeper = ["sleep", "300"]
    one = experiment(
        proc("p", sleeper, binds=[Endpoint("a"), Endpoint("fixed", 18765)]),
        proc("q", sleeper, exposes=[Endpoint("web", exposed=True)]),
        name="one",
    )
    two = experiment(proc("p", sleeper, binds=[Endpoint("a")]), name="two")
    converge(tmux_cluster, one, two)
    urls = {n: tmux_cluster.url("one", n) for n in ("a", "fixed", "web")}
    assert urls["fixed"] == "http://127.0.0.1:18765"
    assert tmux_cluster.url("two", "a") not in urls.values()
    stored = json.loads(
        (symphony_home / "tmux" / tmux_cluster.socket_name / "one" / "ports.json").read_text()
    )
    assert {n: f"http://127.0.0.1:{p}" for n, p in stored.items()} == urls

    # re-apply, a new cluster object (a restarted reconciler), an update, a window closed by hand
    assert converge(tmux_cluster, one, two).empty
    fresh = TmuxCluster(tmux_cluster.spec)
    assert {n: fresh.url("one", n) for n in urls} == urls
    changed = experiment(
        proc("p", sleeper, binds=[Endpoint("a"), Endpoint("fixed", 18765)], env={"V": "2"}),
        one.process("q"),
        name="one",
    )
    tmux(tmux_cluster, "kill-window", "-t", "=one:=q")
    plan = converge(fresh, changed, two)
    assert [p.key for p in plan.update] == ["p"] and [p.key for p in plan.create] == ["q"]
    assert {n: fresh.url("one", n) for n in urls} == urls


def test_url_errors_name_what_exists(tmux_cluster: TmuxCluster) -> None:
    converge(
        tmux_cluster,
        experiment(proc("p", ["sleep", "300"], binds=[Endpoint("api"), Endpoint("db")])),
    )
    with pytest.raises(UserError, match=r"no bound or exposed name 'web' \(available: api, db\)"):
        tmux_cluster.url("exp", "web")
    assert tmux_cluster.url("exp", "a") == tmux_cluster.url("exp", "api")  # a unique prefix
    with pytest.raises(UserError, match="'' is ambiguous in experiment 'exp': api, db"):
        tmux_cluster.url("exp", "")
    with pytest.raises(UserError, match="no experiment 'nope'"):
        tmux_cluster.url("nope", "api")


# --------------------------------------------------------------------------- logs


LOGGER = """
import os, sys, time
for i in range(5000):
    print(f"line {i}")
sys.stdout.flush()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
print("after the trigger"); print("the end")
"""


def test_logs_hold_the_whole_history_tail_and_follow(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    trigger = tmp_path / "go"
    converge(tmux_cluster, experiment(proc("talker", [PY, "-c", LOGGER, str(trigger)], group="g")))
    wait_for(lambda: "line 4999\n" in "".join(tmux_cluster.logs("exp", "g/talker", tail=1)))
    whole = list(tmux_cluster.logs("exp", "g/talker"))
    assert whole == [f"line {i}\n" for i in range(5000)]  # far more than a screen
    assert list(tmux_cluster.logs("exp", "g/talker", tail=3)) == [
        "line 4997\n",
        "line 4998\n",
        "line 4999\n",
    ]
    assert list(tmux_cluster.logs("exp", "g/talker", since=3600))[-1] == "line 4999\n"

    stream = tmux_cluster.logs("exp", "g/talker", follow=True, tail=2)
    assert [next(stream), next(stream)] == ["line 4998\n", "line 4999\n"]
    trigger.touch()
    rest = list(stream)  # ends by itself once the process finished for good
    assert rest == ["after the trigger\n", "the end\n", "[symphony] exited with code 0\n"]
    assert wait_state(tmux_cluster, "g/talker", ProcessState.COMPLETED)
    with pytest.raises(UserError, match="has no process 'nope'"):
        tmux_cluster.logs("exp", "nope")


# --------------------------------------------------------------------------- access


def test_exec_runs_with_the_process_environment_and_folder(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    exp = experiment(
        proc(
            "p", ["sleep", "300"], env={"TOKEN": "abc"}, binds=[Endpoint("api")], workdir=str(work)
        )
    )
    converge(tmux_cluster, exp)
    out = tmp_path / "out"
    code = tmux_cluster.exec(
        "exp", "p", ["sh", "-c", f'echo "$TOKEN $SYMPH_API_ADDR $(pwd)" > {out}; exit 7']
    )
    assert code == 7
    port = tmux_cluster.url("exp", "api").rsplit(":", 1)[1]
    assert out.read_text() == f"abc 127.0.0.1:{port} {work}\n"
    with pytest.raises(OperationFailed, match="no-such-command: command not found"):
        tmux_cluster.exec("exp", "p", ["no-such-command"])
    with pytest.raises(UserError, match="has no process 'q'"):
        tmux_cluster.exec("exp", "q", ["true"])


def test_ssh_needs_a_terminal_and_scp_says_files_are_local(
    tmux_cluster: TmuxCluster, tmp_path: Path
) -> None:
    converge(tmux_cluster, experiment(proc("p", ["sleep", "300"], workdir=str(tmp_path))))
    wait_state(tmux_cluster, "p", ProcessState.RUNNING)
    code = subprocess.run(
        [PY, "-c", "from symphony.clusters.tmux import TmuxCluster\n"
         "from symphony.errors import UserError\n"
         "try:\n TmuxCluster().ssh('exp', 'p')\n"
         "except UserError as e:\n print(e); raise SystemExit(e.exit_code)"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert code.returncode == 1 and "needs a terminal" in code.stdout
    with pytest.raises(
        OperationFailed, match=f"scp is not supported on tmux clusters.*already local.*{tmp_path}"
    ):
        tmux_cluster.scp("p:/etc/hosts", "here", experiment="exp")


SSH = (
    "import sys\n"
    "from symphony.clusters.tmux import TmuxCluster\n"
    "sys.exit(TmuxCluster().ssh('exp', sys.argv[1]))\n"
)


def test_ssh_attaches_a_terminal_to_the_process_window(tmux_cluster: TmuxCluster) -> None:
    import pty

    exp = experiment(proc("a", ["sleep", "300"]), proc("b", ["sleep", "300"], group="g"))
    converge(tmux_cluster, exp)
    wait_state(tmux_cluster, "g/b", ProcessState.RUNNING)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("TMUX", None)
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes the attached terminal
        os.execve(PY, [PY, "-c", SSH, "g/b"], env)
    try:
        os.set_blocking(fd, False)

        def attached() -> str:
            with contextlib.suppress(OSError):  # drain the screen tmux draws, so it never blocks
                while os.read(fd, 65536):
                    pass
            listed = subprocess.run(
                ["tmux", "-L", tmux_cluster.socket_name, "list-clients", "-F",
                 "#{client_session} #{window_name}"],
                capture_output=True, text=True,
            )  # fmt: skip
            return listed.stdout.strip()

        assert wait_for(attached, message="no client attached") == "exp g/b"
        tmux(tmux_cluster, "detach-client", "-s", "=exp")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_missing_tmux_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, symphony_home: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as info:
        TmuxCluster()
    assert info.value.exit_code == 2
    assert info.value.lines() == [
        "tmux is not installed: the tmux cluster runs every process in a tmux window; "
        "install it (apt-get install tmux, brew install tmux)"
    ]


def test_missing_tmux_through_the_command_line_is_one_line_exit_2(
    tmp_path: Path, symphony_home: Path
) -> None:
    env = {
        **os.environ,
        "PATH": str(tmp_path),  # no tmux here
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [PY, "-m", "symphony.cli", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tmux is not installed: the tmux cluster runs every process in a tmux window; "
        "install it (apt-get install tmux, brew install tmux)"
    ]


def test_an_unmanaged_session_of_the_same_name_is_not_touched(tmux_cluster: TmuxCluster) -> None:
    # not the default shell: a login shell would run ~/.bashrc (e.g. pyenv's rehash, which
    # holds a lock file) and be killed mid-way when the test ends
    tmux(tmux_cluster, "new-session", "-d", "-s", "exp", "--", "sleep", "300")
    with pytest.raises(OperationFailed, match="not managed by Symphony"):
        converge(tmux_cluster, experiment(proc("p", ["sleep", "300"])))
    with pytest.raises(OperationFailed, match="not managed by Symphony"):
        tmux_cluster.delete_experiment("exp")
    assert tmux_cluster.observe() == []


def test_labels_are_refreshed_without_restarting_anything(tmux_cluster: TmuxCluster) -> None:
    sleeper = proc("a", ["sleep", "60"])
    converge(tmux_cluster, experiment(sleeper, labels={"owner": "me"}))
    before = wait_state(tmux_cluster, "a", ProcessState.RUNNING)
    plan = converge(tmux_cluster, experiment(sleeper, labels={"owner": "git", "x": "1"}))
    assert plan.empty
    assert tmux_cluster.sessions()["exp"].labels == {"owner": "git", "x": "1"}
    assert states(tmux_cluster)["a"].pid == before.pid
