"""A node keeps no folder of a job the conductor no longer has.

Stopped-then-deleted, stopped-then-started on another node, deleted while the node
agent was down, deleted by a conductor killed before the node heard of it: each time the
node ends up without the job's folder, while a running job the conductor still knows is
adopted untouched. A restarted agent also sweeps folders that never got a ``job.json``. Plus the store's migration for the column that makes the first two
work (``jobs.last_node_id``) on a database made before it existed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from symphony.conductor.store import Store

from .conftest import Cluster, pid_alive, sleeper, wait_for

pytestmark = pytest.mark.timeout(90)


def deploy(c: Cluster, name: str, *, cap: float = 1, group: str = "g") -> dict[str, Any]:
    return c.deploy({"name": name, "node_group": group, "capacity_requests": {"A": cap}, "kind": "exec",
                     "config": sleeper(name)})


def folder(c: Cluster, node: str, job: str) -> Path:
    return c.work_dir(node) / "jobs" / job


def stop(c: Cluster, dep: str) -> None:
    resp = c.http.patch(f"/deployments/{dep}", json={"desired_state": "stopped"})
    assert resp.status_code == 200, resp.text
    c.wait_job(dep, lambda j: j["state"] == "stopped", what=f"{dep} stopped")


def held_state(c: Cluster, node: str, job: str) -> str:
    return str(json.loads((folder(c, node, job) / "job.json").read_text())["desired_state"])


def test_stopped_then_deleted_or_started_elsewhere_leaves_no_folder(cluster_factory: Any) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1", groups=("g", "n1"))
    c.start_node("n2", groups=("g", "n2"))

    deploy(c, "halt")
    node = c.wait_running("halt")["node"]
    stop(c, "halt")
    assert held_state(c, node, "halt-0") == "stopped"  # a stop keeps the folder (and the conductor shows it)
    assert c.http.delete("/deployments/halt").status_code == 200
    wait_for(lambda: not folder(c, node, "halt-0").exists(), what="the stopped job's folder to go")

    deploy(c, "moved", cap=6)
    first = c.wait_running("moved")["node"]
    stop(c, "moved")
    deploy(c, "filler", cap=6, group=first)  # the first node has no room for it any more
    c.wait_running("filler")
    assert c.http.patch("/deployments/moved", json={"desired_state": "running"}).status_code == 200
    job = c.wait_running("moved")
    assert job["node"] != first
    wait_for(lambda: not folder(c, first, "moved-0").exists(), what="the stopped copy's folder on the first node")
    assert folder(c, job["node"], "moved-0").exists() and pid_alive(job["pid"])


def test_deleted_while_the_agent_was_down_goes_when_it_reconnects(cluster_factory: Any) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    for name in ("gone-stopped", "gone-running", "kept"):
        deploy(c, name)
    jobs = {name: c.wait_running(name) for name in ("gone-stopped", "gone-running", "kept")}
    stop(c, "gone-stopped")

    c.nodes["n1"].kill9()  # the agent; its jobs keep running under their supervisors
    for name in ("gone-stopped", "gone-running"):
        assert c.http.delete(f"/deployments/{name}").status_code == 200
    assert folder(c, "n1", "gone-stopped-0").exists() and pid_alive(jobs["gone-running"]["pid"])
    half = folder(c, "n1", "half-0")  # a start cut short before its job.json: never reported, so swept
    half.mkdir()
    (half / "output.log").write_text("x\n")
    busy = folder(c, "n1", "busy-0")  # no job.json, but its supervisor lives: left alone
    busy.mkdir()
    holder = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (busy / "state.json").write_text(json.dumps({"state": "running", "supervisor_pid": holder.pid}))
        c.start_node("n1")
        wait_for(lambda: "swept leftovers: 1 job folders" in c.nodes["n1"].output(), what="the agent's sweep")
        assert not half.exists() and busy.exists()
    finally:
        holder.kill()
        holder.wait()
    for name in ("gone-stopped", "gone-running"):
        wait_for(lambda name=name: not folder(c, "n1", f"{name}-0").exists(), what=f"{name}'s folder to go")
    wait_for(lambda: not pid_alive(jobs["gone-running"]["pid"]), what="the deleted job's process to stop")
    kept = c.wait_running("kept")  # adopted again (the node was silent long enough to be lost)
    assert kept["pid"] == jobs["kept"]["pid"] and pid_alive(kept["pid"])
    assert held_state(c, "n1", "kept-0") == "running"


def test_deleted_by_a_conductor_killed_before_the_node_heard_goes_after_restart(cluster_factory: Any) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    deploy(c, "late")
    deploy(c, "kept")
    kept = c.wait_running("kept")
    c.wait_running("late")
    stop(c, "late")

    agent = c.nodes["n1"]
    os.kill(agent.pid, signal.SIGSTOP)  # it cannot read what the conductor sends now
    try:
        assert c.http.delete("/deployments/late").status_code == 200
        assert c.conductor is not None
        c.conductor.kill9()
    finally:
        agent.kill9()  # still stopped: it never read the conductor's "removed"
    assert folder(c, "n1", "late-0").exists()

    c.start_conductor()
    c.start_node("n1")
    wait_for(lambda: not folder(c, "n1", "late-0").exists(), what="the deleted job's folder to go")
    again = c.wait_running("kept")
    assert again["pid"] == kept["pid"] and pid_alive(kept["pid"]) and folder(c, "n1", "kept-0").exists()


def test_an_older_database_gets_the_column_and_each_job_its_last_node(tmp_path: Path) -> None:
    path = tmp_path / "conductor.db"
    db = sqlite3.connect(str(path))
    db.executescript("""
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL, replica INTEGER NOT NULL,
          node_id TEXT, epoch INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',
          status TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL,
          deployment_id TEXT, job_id TEXT, node_id TEXT, message TEXT NOT NULL);
        INSERT INTO jobs VALUES ('stopped-0', 'stopped', 0, NULL, 2, 'desired_state is stopped', '{}');
        INSERT INTO jobs VALUES ('running-0', 'running', 0, 'n2', 3, '', '{}');
        INSERT INTO jobs VALUES ('never-0', 'never', 0, NULL, 0, 'waiting', '{}');
        INSERT INTO events(ts, kind, job_id, node_id, message) VALUES (1, 'placed', 'stopped-0', 'n1', 'x');
        INSERT INTO events(ts, kind, job_id, node_id, message) VALUES (2, 'adopted', 'stopped-0', 'n3', 'x');
        INSERT INTO events(ts, kind, job_id, node_id, message) VALUES (3, 'state', 'stopped-0', 'n9', 'x');
    """)
    db.commit()
    db.close()
    for _ in range(2):  # and opening it again changes nothing
        store = Store(path)
        last = {j.job_id: j.last_node_id for j in store.list_jobs()}
        assert last == {"stopped-0": "n3", "running-0": "n2", "never-0": None}
        job = store.get_job("running-0")
        assert job is not None and job.with_(node_id=None).last_node_id == "n2"
        assert job.with_(node_id="n4").last_node_id == "n4"
        store.close()
