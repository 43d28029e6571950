"""A job's whole output through the conductor, with real conductor and node processes:
more lines than memory ever held, kill -9 of the conductor, a network cut, a lost node,
followed streams resumed with Last-Event-ID, deletion and the disk cap.

Jobs print consecutive numbers, so "in order, without duplicates or gaps" is
``[0, 1, 2, …]`` exactly.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Cluster, sse, wait_for
from .test_failover import Proxy

pytestmark = pytest.mark.timeout(120)


def counter(*, every: float = 0.01, start_burst: int = 0) -> dict[str, Any]:
    """Prints 0, 1, 2, … (``start_burst`` of them at once, then one every ``every`` s)."""
    code = (
        "import itertools, time\n"
        "for i in itertools.count():\n"
        "    print(i, flush=True)\n"
        f"    if i >= {start_burst}:\n"
        f"        time.sleep({every})\n"
    )
    return {"command": [sys.executable, "-c", code]}


def lines(c: Cluster, dep: str, **params: Any) -> list[dict[str, Any]]:
    resp = c.http.get(f"/deployments/{dep}/logs", params={"tail": 0, **params})
    resp.raise_for_status()
    got: list[dict[str, Any]] = resp.json()["lines"]
    return got


def numbers(entries: list[dict[str, Any]]) -> list[int]:
    return [int(e["line"]) for e in entries]


def assert_whole(entries: list[dict[str, Any]]) -> None:
    """0, 1, 2, … with no gap or repeat, in sequence-number order."""
    got = numbers(entries)
    assert got == list(range(len(got))), _first_bad(got)
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(set(seqs))


def _first_bad(got: list[int]) -> str:
    for i, n in enumerate(got):
        if n != i:
            return f"at index {i}: {got[max(0, i - 3):i + 3]} (of {len(got)})"
    return "ok"


def follow(c: Cluster, dep: str, count: int, *, last_id: int | None = None, **params: Any) -> list[dict[str, Any]]:
    """The first ``count`` followed lines (resuming after ``last_id`` when given)."""
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    out: list[dict[str, Any]] = []
    with c.http.stream("GET", f"/deployments/{dep}/logs", params={"follow": 1, **params}, headers=headers,
                       timeout=httpx.Timeout(30)) as resp:
        assert resp.status_code == 200
        for kind, ident, data in sse(resp):
            assert kind == "log"
            entry = json.loads(data)
            assert int(ident) == entry["seq"]
            out.append(entry)
            if len(out) >= count:
                break
    return out


def written(c: Cluster, node: str, job: str) -> int:
    """How many lines the job has written on its node (all rotated files)."""
    folder = c.work_dir(node) / "jobs" / job
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("output.log*") if not p.name.endswith((".idx", ".json")))


def test_more_lines_than_memory_ever_held_are_all_there(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "many", "node_group": "g", "config": counter(every=5.0, start_burst=5000)})
    wait_for(lambda: len(lines(c, "many")) > 5000, what="5,000 lines")
    whole = lines(c, "many")
    assert_whole(whole)
    assert numbers(lines(c, "many", tail=3)) == numbers(whole)[-3:]
    assert numbers(c.http.get("/deployments/many/logs").json()["lines"]) == numbers(whole)[-200:]  # default tail
    # a follow from the start sends everything, then resuming after any line sends the rest
    followed = follow(c, "many", 5000, tail=0)
    assert numbers(followed) == list(range(5000))
    rest = follow(c, "many", 10, last_id=followed[2499]["seq"])
    assert numbers(rest) == list(range(2500, 2510))
    # files on disk, not memory; deleting the deployment deletes them
    assert (c.storage / "logs" / "many-0.log").stat().st_size > 5000 * 20
    assert c.http.delete("/deployments/many").status_code == 200
    assert not list((c.storage / "logs").glob("many-0*"))


def test_kill9_of_the_conductor_keeps_history_once_and_follow_resumes(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "count", "node_group": "g", "config": counter()})
    wait_for(lambda: len(lines(c, "count")) >= 100, what="100 lines")
    followed = follow(c, "count", 50, tail=0)
    assert numbers(followed) == list(range(50))
    before = lines(c, "count")
    assert c.conductor is not None
    # frozen first: what the node sends now waits in socket buffers, and dies with the process
    os.kill(c.conductor.pid, signal.SIGSTOP)
    frozen = written(c, "n1", "count-0")
    wait_for(lambda: written(c, "n1", "count-0") >= frozen + 50, what="output sent to a frozen conductor")
    c.conductor.kill9()
    on_node = written(c, "n1", "count-0")
    wait_for(lambda: written(c, "n1", "count-0") >= on_node + 100, what="output while the conductor is down")
    c.start_conductor()
    # what was held before is still there, once, and what was written meanwhile arrives
    after = wait_for(lambda: (got := lines(c, "count")) and len(got) > on_node + 100 and got,
                     timeout=30, what="the output written while the conductor was down")
    assert_whole(after)
    assert after[:len(before)] == before
    assert after[len(before)]["seq"] > before[-1]["seq"]  # numbers keep growing across the restart
    # a follow that resumes after the last event it saw misses nothing
    resumed = follow(c, "count", 200, last_id=followed[-1]["seq"])
    assert numbers(resumed) == list(range(50, 250))


def test_a_network_cut_loses_and_repeats_nothing(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    proxy = Proxy(c.grpc_port)
    c.start_node("n1", addr=f"127.0.0.1:{proxy.port}")
    c.deploy({"name": "cut", "node_group": "g", "config": counter(every=0.002)})
    wait_for(lambda: len(lines(c, "cut")) >= 200, what="some output")
    assert c.conductor is not None
    for accept in (False, True, True):  # a short cut, then abrupt cuts that reconnect at once
        connected = c.api_nodes()["n1"]["connected_at"]
        # what the node sends to a frozen conductor waits in socket buffers: the cut loses it
        os.kill(c.conductor.pid, signal.SIGSTOP)
        try:
            frozen = written(c, "n1", "cut-0")
            wait_for(lambda f=frozen: written(c, "n1", "cut-0") >= f + 100, what="output sent while frozen")
            proxy.cut(accept=accept)
        finally:
            os.kill(c.conductor.pid, signal.SIGCONT)
        if not accept:
            c.wait_node("n1", "disconnected")
            on_node = written(c, "n1", "cut-0")
            wait_for(lambda n=on_node: written(c, "n1", "cut-0") >= n + 200, what="output while cut")
            proxy.restore()
        wait_for(lambda old=connected: (n := c.api_nodes()["n1"])["state"] == "ready" and n["connected_at"] != old,
                 what="reconnected")
        target = written(c, "n1", "cut-0")
        wait_for(lambda t=target: len(lines(c, "cut")) >= t, timeout=30, what="the output written during the cut")
    assert_whole(lines(c, "cut"))


def test_a_lost_nodes_history_stays_and_the_next_copy_follows_it(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    n1 = c.start_node("n1")
    c.deploy({"name": "moved", "node_group": "g", "config": counter(every=0.02)})
    wait_for(lambda: len(lines(c, "moved")) >= 50, what="output on n1")
    n1.kill9()  # the agent: its node goes silent
    c.wait_node("n1", "lost", timeout=30)
    held = lines(c, "moved")
    assert len(held) >= 50 and {e["node"] for e in held} == {"n1"}
    assert_whole(held)
    c.start_node("n2")
    c.wait_job("moved", lambda j: j["node"] == "n2" and j["state"] == "running", what="moved to n2")
    both = wait_for(lambda: (got := lines(c, "moved")) and sum(e["node"] == "n2" for e in got) >= 20 and got,
                    what="output from n2")
    assert both[:len(held)] == held  # the lost node's history, then the new copy's, each whole
    assert_whole([e for e in both if e["node"] == "n2"])
    assert {e["node"] for e in both[len(held):]} == {"n2"}
    # n1 comes back with its stale copy still printing: it is fenced, and none of its output is taken
    c.start_node("n1")
    wait_for(lambda: not (c.work_dir("n1") / "jobs" / "moved-0").exists(), what="the stale copy removed")
    assert [e for e in lines(c, "moved") if e["node"] == "n1"] == held


def test_an_agent_restart_resumes_where_the_conductor_is(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    n1 = c.start_node("n1")
    c.deploy({"name": "agent", "node_group": "g", "config": counter(every=0.005)})
    wait_for(lambda: len(lines(c, "agent")) >= 100, what="some output")
    n1.kill9()  # the job keeps running under its supervisor
    on_node = written(c, "n1", "agent-0")
    wait_for(lambda: written(c, "n1", "agent-0") >= on_node + 200, what="output while the agent is down")
    c.start_node("n1")
    target = written(c, "n1", "agent-0")
    wait_for(lambda: len(lines(c, "agent")) >= target, timeout=30, what="the output written meanwhile")
    assert_whole(lines(c, "agent"))


def test_the_disk_cap_is_kept(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.config.write_text(c.config.read_text() + "  logs: {max_bytes: 20000, backups: 1}\n")
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "flood", "node_group": "g", "config": counter(every=5.0, start_burst=3000)})
    last = wait_for(lambda: (got := lines(c, "flood")) and int(got[-1]["line"]) >= 3000 and got,
                    what="the last line")
    files = sorted((c.storage / "logs").glob("flood-0.log*"))
    assert [p.name for p in files] == ["flood-0.log", "flood-0.log.1"]
    assert all(p.stat().st_size <= 20000 for p in files)
    got = numbers(last)
    assert got == list(range(got[0], 3001)) and got[0] > 0  # the newest, whole; the oldest dropped
    assert sum(p.stat().st_size for p in Path(c.storage / "logs").iterdir()) <= 40000
