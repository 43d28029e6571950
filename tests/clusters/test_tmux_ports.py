"""A fixed port appears once per host: conflicts with what is live on the socket are bad input."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.clusters.tmux import TmuxCluster
from symphony.errors import UserError
from symphony.model import Endpoint, ProcessState, SourceRef
from symphony.ports import PortClash, port_clashes
from symphony.testing import wait_for
from tests.clusters.test_tmux import converge, experiment, proc, states, tmux, wait_state

SLEEP = ["sleep", "300"]
PORT = 18765

pytestmark = pytest.mark.timeout(120)


def sessions(cluster: TmuxCluster) -> set[str]:
    return set(cluster.sessions())


def ports_json(home: Path, cluster: TmuxCluster, name: str) -> Path:
    return home / "tmux" / cluster.socket_name / name / "ports.json"


def pane_pids(cluster: TmuxCluster) -> dict[tuple[str, str], int | None]:
    return {(w.session, w.key): w.pane_pid for w in cluster.windows()}


# ------------------------------------------------------------------ the pure check


@pytest.mark.parametrize(
    ("fixed", "held", "expected"),
    [
        ({"b": {"y": 1}}, {"a": {"x": 1}}, [PortClash("b", "y", 1, "a", "x")]),
        ({"b": {"y": 1}}, {"a": {"x": 2}}, []),
        ({"b": {"y": 1}}, {"b": {"y": 1, "z": 2}}, []),  # its own ports are not a clash
        # two experiments of one apply fixing one port: reported once
        (
            {"a": {"x": 1}, "b": {"y": 1}},
            {"a": {"x": 1}, "b": {"y": 1}},
            [PortClash("a", "x", 1, "b", "y")],
        ),
        # the holder named is the first in ``held`` (what is live comes first)
        ({"b": {"y": 1}}, {"live": {"w": 1}, "a": {"x": 1}}, [PortClash("b", "y", 1, "live", "w")]),
    ],
)
def test_port_clashes_table(
    fixed: dict[str, dict[str, int]],
    held: dict[str, dict[str, int]],
    expected: list[PortClash],
) -> None:
    assert port_clashes(fixed, held) == expected


experiments = st.sampled_from(["a", "b", "c"])
names = st.sampled_from(["x", "y", "z"])
ports = st.dictionaries(
    experiments, st.dictionaries(names, st.integers(1, 4), max_size=3), max_size=3
)


@given(fixed=ports, held=ports)
def test_port_clashes_finds_every_fixed_port_held_elsewhere(
    fixed: dict[str, dict[str, int]], held: dict[str, dict[str, int]]
) -> None:
    clashes = port_clashes(fixed, held)
    for clash in clashes:
        assert clash.experiment != clash.holder
        assert (
            fixed[clash.experiment][clash.name]
            == clash.port
            == held[clash.holder][clash.holder_name]
        )
    involved = {(c.experiment, c.name) for c in clashes} | {
        (c.holder, c.holder_name) for c in clashes
    }
    for exp, mine in fixed.items():
        for name, port in mine.items():
            elsewhere = any(
                p == port for other, theirs in held.items() if other != exp for p in theirs.values()
            )
            if elsewhere:
                assert (exp, name) in involved
    text = [str(c) for c in clashes]
    assert all("\n" not in line and "on this host" in line for line in text)


# ------------------------------------------------------------------ on a real tmux server


def test_a_fixed_port_another_experiment_fixed_is_refused_before_anything_changes(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x", PORT)]), name="a")
    converge(tmux_cluster, a)
    wait_state(tmux_cluster, "server", ProcessState.RUNNING, name="a")
    before = pane_pids(tmux_cluster)

    b = experiment(proc("web", SLEEP, exposes=[Endpoint("y", PORT, exposed=True)]), name="b")
    with pytest.raises(UserError) as caught:
        converge(tmux_cluster, b)
    assert caught.value.exit_code == 2
    assert caught.value.lines() == [
        f"experiment 'b': port {PORT} of 'y' is already used by 'x' of experiment 'a' on this host"
    ]
    assert sessions(tmux_cluster) == {"a"}
    assert not ports_json(symphony_home, tmux_cluster, "b").exists()
    assert pane_pids(tmux_cluster) == before


def test_a_fixed_port_equal_to_a_port_assigned_to_another_experiment_is_refused(
    tmux_cluster: TmuxCluster,
) -> None:
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x")]), name="a")
    converge(tmux_cluster, a)
    assigned = int(tmux_cluster.url("a", "x").rsplit(":", 1)[1])

    b = experiment(proc("web", SLEEP, binds=[Endpoint("y", assigned)]), name="b")
    with pytest.raises(
        UserError, match=f"port {assigned} of 'y' is already used by 'x' of experiment 'a'"
    ):
        converge(tmux_cluster, b)
    assert sessions(tmux_cluster) == {"a"}


def test_an_update_onto_a_taken_port_changes_nothing_and_names_the_file_line(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x", PORT)]), name="a")
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y", PORT + 1)]), name="b")
    converge(tmux_cluster, a, b)
    wait_state(tmux_cluster, "web", ProcessState.RUNNING, name="b")
    before = pane_pids(tmux_cluster)
    stored = ports_json(symphony_home, tmux_cluster, "b").read_text()

    web = proc("web", SLEEP, binds=[Endpoint("y", PORT)], env={"V": "2"})
    located = experiment(replace(web, source=SourceRef("b.yaml", 7)), name="b")
    with pytest.raises(UserError) as caught:
        converge(tmux_cluster, located)
    assert caught.value.lines() == [
        f"b.yaml:7: experiment 'b': port {PORT} of 'y' is already used by 'x' of experiment 'a' on this host"
    ]
    assert pane_pids(tmux_cluster) == before  # nothing stopped or respawned
    assert states(tmux_cluster, "b")["web"].state is ProcessState.RUNNING
    assert ports_json(symphony_home, tmux_cluster, "b").read_text() == stored
    assert json.loads(tmux(tmux_cluster, "show-options", "-v", "-t", "=b:", "@symphony-ports")) == {
        "y": PORT + 1
    }


def test_two_new_experiments_fixing_one_port_start_neither(tmux_cluster: TmuxCluster) -> None:
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x", PORT)]), name="a")
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y", PORT)]), name="b")
    with pytest.raises(
        UserError, match=f"experiment 'a': port {PORT} of 'x' is already used by 'y' of experiment 'b'"
    ):
        converge(tmux_cluster, a, b)
    assert sessions(tmux_cluster) == set()


def test_a_port_released_in_the_same_apply_can_be_taken(tmux_cluster: TmuxCluster) -> None:
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x", PORT)]), name="a")
    converge(tmux_cluster, a)
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y", PORT)]), name="b")
    plan = converge(tmux_cluster, b, prune=True)  # deletes a, whose session goes
    assert [o.experiment for o in plan.delete] == ["a"]
    assert sessions(tmux_cluster) == {"b"}
    assert tmux_cluster.url("b", "y") == f"http://127.0.0.1:{PORT}"


def test_sessions_of_other_clusters_and_unmanaged_ones_count_too(tmux_cluster: TmuxCluster) -> None:
    """Every session on the socket shares the host, whoever manages it."""
    tmux(tmux_cluster, "new-session", "-d", "-s", "other", "sleep", "300")
    tmux(tmux_cluster, "set-option", "-t", "=other:", "@symphony-ports", json.dumps({"api": PORT}))
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y", PORT)]), name="b")
    with pytest.raises(UserError, match="already used by 'api' of experiment 'other'"):
        converge(tmux_cluster, b)
    assert sessions(tmux_cluster) == {"other"}


def test_free_assignment_avoids_a_port_another_experiment_fixed(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    """b's remembered port was fixed by a while b's server was gone: b gets another one."""
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y")]), name="b")
    converge(tmux_cluster, b)
    remembered = int(tmux_cluster.url("b", "y").rsplit(":", 1)[1])
    tmux(tmux_cluster, "kill-session", "-t", "=b")  # b.json stays: b is not live
    assert json.loads(ports_json(symphony_home, tmux_cluster, "b").read_text()) == {"y": remembered}

    a = experiment(proc("server", SLEEP, binds=[Endpoint("x", remembered)]), name="a")
    converge(tmux_cluster, a)  # b is not live: no clash
    converge(tmux_cluster, b)
    again = int(tmux_cluster.url("b", "y").rsplit(":", 1)[1])
    assert again != remembered
    assert tmux_cluster.url("a", "x") == f"http://127.0.0.1:{remembered}"


class OfferedPorts:
    """Stands in for the ``socket`` module in :mod:`symphony.ports`: the OS offers these ports in turn."""

    AF_INET = socket.AF_INET
    SOCK_STREAM = socket.SOCK_STREAM

    def __init__(self, offers: list[int]) -> None:
        self.offers = offers
        self.offered: list[int] = []

    def socket(self, *_: object) -> OfferedPorts:
        return self

    def __enter__(self) -> OfferedPorts:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def bind(self, _: object) -> None:
        return None

    def getsockname(self) -> tuple[str, int]:
        self.offered.append(self.offers.pop(0))
        return ("127.0.0.1", self.offered[-1])


def test_free_assignment_never_hands_out_a_port_held_or_remembered_elsewhere(
    tmux_cluster: TmuxCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS offers a's fixed port, then c's remembered one (c's session is gone): b gets neither."""
    c = experiment(proc("server", SLEEP, binds=[Endpoint("z")]), name="c")
    converge(tmux_cluster, c)
    remembered = int(tmux_cluster.url("c", "z").rsplit(":", 1)[1])
    tmux(tmux_cluster, "kill-session", "-t", "=c")
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x", PORT)]), name="a")
    converge(tmux_cluster, a)

    offers = OfferedPorts([PORT, remembered, PORT + 7])
    monkeypatch.setattr("symphony.ports.socket", offers)
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y")]), name="b")
    converge(tmux_cluster, b)
    assert offers.offered == [PORT, remembered, PORT + 7]
    assert tmux_cluster.url("b", "y") == f"http://127.0.0.1:{PORT + 7}"
    monkeypatch.undo()

    converge(tmux_cluster, c)  # c comes back on its remembered port
    assert tmux_cluster.url("c", "z") == f"http://127.0.0.1:{remembered}"


def test_one_apply_assigns_no_free_port_that_another_of_its_experiments_fixes(
    tmux_cluster: TmuxCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a is assigned first (sorted), b fixes a port the OS would offer a."""
    offers = OfferedPorts([PORT, PORT + 3])
    monkeypatch.setattr("symphony.ports.socket", offers)
    a = experiment(proc("server", SLEEP, binds=[Endpoint("x")]), name="a")
    b = experiment(proc("web", SLEEP, binds=[Endpoint("y", PORT)]), name="b")
    converge(tmux_cluster, a, b)
    assert tmux_cluster.url("a", "x") == f"http://127.0.0.1:{PORT + 3}"
    assert tmux_cluster.url("b", "y") == f"http://127.0.0.1:{PORT}"


# ------------------------------------------------------------------ outside the socket


def test_a_fixed_port_another_program_listens_on_is_refused_and_its_own_listener_is_not(
    tmux_cluster: TmuxCluster, symphony_home: Path
) -> None:
    """A process whose fixed port some other program holds would only crash-loop with
    EADDRINUSE: refused before anything starts, naming the holder. Once the experiment's own
    process listens there, re-applying and updating it are not refused."""
    outsider = socket.socket()
    outsider.bind(("127.0.0.1", 0))
    outsider.listen()
    port = outsider.getsockname()[1]
    server = proc(
        "server",
        ["python3", "-c", f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); "
         "s.listen(); time.sleep(300)"],
        binds=[Endpoint("api", port)],
    )  # fmt: skip
    exp = experiment(server, name="own")
    try:
        with pytest.raises(UserError) as caught:
            converge(tmux_cluster, exp)
        assert caught.value.exit_code == 2
        (line,) = caught.value.lines()
        assert line.startswith(f"experiment 'own': port {port} of 'api' is already in use on this machine by ")
        assert f"pid {os.getpid()} (" in line and line.endswith("(not an experiment on this tmux socket)")
        assert sessions(tmux_cluster) == set()
    finally:
        outsider.close()

    converge(tmux_cluster, exp)
    wait_state(tmux_cluster, "server", ProcessState.RUNNING, name="own")

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=30, message="the experiment's own server to listen")
    converge(tmux_cluster, exp)  # its own listener: no refusal, nothing to do
    changed = experiment(replace(server, env={"V": "2"}), name="own")
    converge(tmux_cluster, changed)  # an update restarts it on the same port
    wait_for(listening, timeout=30, message="the updated server to listen again")
