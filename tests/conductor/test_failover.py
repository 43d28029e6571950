"""Crashes and cuts: kill -9 of the conductor, a node killed, a lost node coming back, a network cut."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from symphony import supervisor

from .conftest import Cluster, pid_alive, sleeper, wait_for

pytestmark = pytest.mark.timeout(120)
# processes are counted machine-wide by tag: unique tags keep two test runs apart
RUN = uuid.uuid4().hex[:8]


def _count_processes(tag: str) -> int:
    n = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if tag.encode() in cmd and b"supervisor" not in cmd and stat.split(") ")[-1][:1] != "Z":
            n += 1
    return n


def test_kill9_conductor_loses_nothing_and_starts_nothing_twice(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "keep", "node_group": "g", "capacity_requests": {"A": 3}, "config": sleeper(f"tag-keep-1-{RUN}")})
    # 8 of A fits n1 (A=10) only when idle: it waits while "keep" holds 3
    c.deploy({"name": "waiting", "node_group": "g", "capacity_requests": {"A": 8}, "config": sleeper("x")})
    before = c.wait_running("keep")
    assert c.conductor is not None
    c.conductor.kill9()
    assert pid_alive(before["pid"])  # the job does not depend on the conductor
    c.start_conductor()
    deployments = {d["id"]: d for d in c.http.get("/deployments").json()}
    assert set(deployments) == {"keep", "waiting"}
    assert deployments["waiting"]["jobs"][0]["state"] == "pending"
    c.wait_node("n1", "ready")
    after = c.wait_running("keep")
    assert after["pid"] == before["pid"] and after["epoch"] == before["epoch"] and after["node"] == "n1"
    assert after["restarts"] == 0
    assert _count_processes(f"tag-keep-1-{RUN}") == 1
    assert c.api_nodes()["n1"]["capacities_used"] == {"A": 3.0}
    # the node sends the recent output again, so the logs survive the restart too
    lines = wait_for(lambda: c.http.get("/deployments/keep/logs").json()["lines"], what="logs after restart")
    assert all(line["line"] == f"tag-keep-1-{RUN}" for line in lines)
    db = sqlite3.connect(c.storage / "conductor.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    kinds = [k for (k,) in db.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("conductor-started") == 2 and "fenced" not in kinds
    # and it keeps working: a new deployment after the restart
    c.deploy({"name": "later", "node_group": "g", "config": sleeper(f"tag-later-{RUN}")})
    c.wait_running("later")


def test_deleted_while_the_node_was_away_is_stopped_when_it_returns(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "orphan", "node_group": "g", "capacity_requests": {"A": 2}, "config": sleeper(f"tag-orphan-{RUN}")})
    job = c.wait_running("orphan")
    c.nodes["n1"].stop()  # SIGTERM: the agent leaves, its jobs stay
    c.wait_node("n1", "disconnected")
    assert c.http.delete("/deployments/orphan").status_code == 200
    assert pid_alive(job["pid"])
    c.start_node("n1")
    wait_for(lambda: not pid_alive(job["pid"]), what="the deleted job to be stopped")
    assert c.api_nodes()["n1"]["capacities_used"] == {"A": 0.0}


def _kill_node_and_jobs(c: Cluster, node_id: str) -> list[int]:
    c.nodes[node_id].kill9()
    pids = []
    for state_file in c.work_dir(node_id).glob("jobs/*/state.json"):
        state = supervisor.read_state(str(state_file)) or {}
        for key in ("supervisor_pid", "pid"):
            pid = state.get(key)
            if isinstance(pid, int) and pid > 0:
                pids.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return pids


def test_node_killed_with_its_jobs_is_replaced_on_another_node(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1", caps={"A": 10})
    c.deploy({"name": "moving", "node_group": "g", "capacity_requests": {"A": 5}, "config": sleeper(f"tag-moving-{RUN}")})
    first = c.wait_running("moving")
    assert first["node"] == "n1"
    c.start_node("n2", caps={"A": 10})
    _kill_node_and_jobs(c, "n1")
    c.wait_node("n1", "lost", timeout=15)
    moved = c.wait_job("moving", lambda j: j["node"] == "n2" and j["state"] == "running", what="moved to n2")
    assert moved["epoch"] > first["epoch"]
    assert c.api_nodes()["n2"]["capacities_used"] == {"A": 5.0}


def test_node_restarted_without_its_jobs_runs_them_again(cluster_factory) -> None:
    """A machine restart: agent and supervisors gone; the agent comes back and the
    conductor has it start the job again (no other node could take it)."""
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "revive", "node_group": "g", "capacity_requests": {"A": 2}, "config": sleeper(f"tag-revive-{RUN}")})
    first = c.wait_running("revive")
    _kill_node_and_jobs(c, "n1")
    wait_for(lambda: not pid_alive(first["pid"]), what="the job to be gone")
    c.start_node("n1")
    again = c.wait_job("revive", lambda j: j["state"] == "running" and j["pid"] != first["pid"], what="revived")
    assert again["node"] == "n1" and pid_alive(again["pid"])
    assert _count_processes(f"tag-revive-{RUN}") == 1


def test_lost_node_coming_back_stops_its_stale_copy(cluster_factory) -> None:
    """Fencing: only the agent dies; its job keeps running; the conductor moves the job;
    when the agent returns, the stale copy (old epoch) is stopped, the new one is kept."""
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    c.deploy({"name": "fenced", "node_group": "g", "capacity_requests": {"A": 5}, "config": sleeper(f"tag-fenced-{RUN}")})
    first = c.wait_running("fenced")
    c.start_node("n2")
    c.nodes["n1"].kill9()
    assert pid_alive(first["pid"])
    c.wait_node("n1", "lost", timeout=15)
    moved = c.wait_job("fenced", lambda j: j["node"] == "n2" and j["state"] == "running", what="moved")
    assert _count_processes(f"tag-fenced-{RUN}") == 2  # the stale copy still runs on the silent node
    c.start_node("n1")
    wait_for(lambda: not pid_alive(first["pid"]), what="the stale copy to be stopped")
    assert pid_alive(moved["pid"]) and c.get("fenced")["jobs"][0]["pid"] == moved["pid"]
    assert _count_processes(f"tag-fenced-{RUN}") == 1
    assert not (c.work_dir("n1") / "jobs" / "fenced-0").exists()
    assert c.api_nodes()["n1"]["capacities_used"] == {"A": 0.0}


class Proxy:
    """A TCP proxy on loopback whose connections can be cut."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        self.accepting = True
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_w}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    def cut(self, *, accept: bool) -> None:
        def do() -> None:
            self.accepting = accept
            for w in list(self.writers):
                with contextlib.suppress(Exception):
                    w.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(do)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(lambda: setattr(self, "accepting", True))


def test_reconnect_after_a_network_cut_keeps_the_job(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    proxy = Proxy(c.grpc_port)
    c.start_node("n1", addr=f"127.0.0.1:{proxy.port}", caps={"A": 10})
    c.deploy({"name": "steady", "node_group": "g", "config": sleeper(f"tag-steady-{RUN}")})
    first = c.wait_running("steady")
    connected = c.api_nodes()["n1"]["connected_at"]

    def logged() -> int:
        return len(c.http.get("/deployments/steady/logs", params={"tail": 0}).json()["lines"])

    wait_for(lambda: logged() >= 3, what="some output")
    proxy.cut(accept=False)  # a short cut: back before the node counts as lost
    wait_for(lambda: c.api_nodes()["n1"]["state"] == "disconnected", what="disconnected")
    seen = logged()
    output = c.work_dir("n1") / "jobs" / "steady-0" / "output.log"
    written = output.read_text().count("\n")
    wait_for(lambda: output.read_text().count("\n") >= written + 4, what="output written while cut")
    proxy.restore()
    back = c.wait_node("n1", "ready")
    assert back["connected_at"] != connected
    job = c.wait_running("steady")
    assert job["pid"] == first["pid"] and job["epoch"] == first["epoch"] and job["restarts"] == 0
    # lines written while the node was cut off arrive after the reconnect
    wait_for(lambda: logged() >= seen + 4, what="the lines written while cut")

    proxy.cut(accept=True)  # an abrupt cut, reconnecting at once
    wait_for(lambda: c.api_nodes()["n1"]["connected_at"] != back["connected_at"], what="a new stream")
    c.wait_node("n1", "ready")
    assert c.wait_running("steady")["pid"] == first["pid"]
    assert _count_processes(f"tag-steady-{RUN}") == 1
