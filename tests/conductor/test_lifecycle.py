"""Deployments on a live conductor with two nodes: run, logs, stop, delete, failures."""

from __future__ import annotations

import http.server
import io
import os
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from .conftest import Cluster, pid_alive, sleeper, wait_for

pytestmark = pytest.mark.timeout(120)


def test_healthz_is_open_everything_else_needs_the_token(shared_cluster: Cluster) -> None:
    import httpx

    anon = httpx.Client(base_url=shared_cluster.url)
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/deployments").status_code == 401
    assert anon.get("/nodes", headers={"Authorization": "Bearer wrong"}).status_code == 401
    token_file = shared_cluster.storage / "api-token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    for key in ("ca.key", "server.key", "node-client.key"):
        assert oct((shared_cluster.certs / key).stat().st_mode & 0o777) == "0o600"
    assert "/ui?token=" in shared_cluster.conductor.output()  # type: ignore[union-attr]


def test_nodes_report_hardware_and_heartbeats(shared_cluster: Cluster) -> None:
    nodes = shared_cluster.api_nodes()
    assert set(nodes) >= {"n1", "n2"}
    n1 = nodes["n1"]
    assert n1["groups"] == ["g"] and n1["capacities_total"] == {"A": 10.0}
    assert int(n1["cpu"]["logical_cores"]) >= 1 and int(n1["memory"]["total_bytes"]) > 0
    hb = wait_for(lambda: shared_cluster.api_nodes()["n1"]["heartbeat"], what="a heartbeat")
    assert "total_percent" in hb["cpu"] and int(hb["memory"]["used_bytes"]) > 0
    assert n1["gpus"] == []  # no GPU here: nothing breaks


def test_submit_runs_streams_logs_and_delete_frees_everything(shared_cluster: Cluster) -> None:
    c = shared_cluster
    dep = c.deploy({"name": "web", "node_group": "g", "capacity_requests": {"A": 4}, "kind": "exec",
                    "config": {**sleeper("hello-from-web"), "env": {"GREETING": "hi"}}})
    assert dep["id"] == "web" and dep["jobs"][0]["node"] in ("n1", "n2")
    job = c.wait_running("web")
    pid, node = job["pid"], job["node"]
    assert pid_alive(pid)
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"GREETING=hi" in env and b"SYMPH_DEPLOYMENT=web" in env
    lines = wait_for(lambda: c.http.get("/deployments/web/logs").json()["lines"], what="log lines")
    assert lines[0]["line"] == "hello-from-web"
    assert c.api_nodes()[node]["capacities_used"] == {"A": 4.0}
    assert c.http.post("/deployments", json={"name": "web", "config": {"command": ["true"]}}).status_code == 409

    assert c.http.delete("/deployments/web").status_code == 200
    wait_for(lambda: not pid_alive(pid), what="the process to stop")
    assert c.api_nodes()[node]["capacities_used"] == {"A": 0.0}
    assert c.http.get("/deployments/web").status_code == 404
    wait_for(lambda: not (c.work_dir(node) / "jobs" / "web-0").exists(), what="the job folder to go")


def test_seed_body_gets_a_generated_name_and_bad_bodies_one_message_each(shared_cluster: Cluster) -> None:
    c = shared_cluster
    seed = {"node_group": "g", "capacity_requests": {"A": 1}, "kind": "exec",
            "config": {"command": [sys.executable, "-c", "print('seed')"], "env": {"LOG_LEVEL": "info"}},
            "restart_policy": {"type": "never", "backoff_seconds": 10}}
    dep = c.deploy(seed)
    assert dep["name"].startswith("dep-")
    c.wait_job(dep["id"], lambda j: j["state"] == "completed" and j["exit_code"] == 0)
    c.http.delete(f"/deployments/{dep['id']}")
    bad = c.http.post("/deployments", json={"name": "bad", "kind": "exec", "config": {"command": "x"},
                                            "replicas": "two", "bogus": 1})
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert any("replicas" in e for e in errors) and any("bogus" in e for e in errors)


def test_a_request_no_node_could_ever_hold_is_refused_with_the_reason(shared_cluster: Cluster) -> None:
    c = shared_cluster
    huge = c.http.post("/deployments", json={"name": "huge", "node_group": "g", "capacity_requests": {"A": 50},
                                             "config": sleeper("x")})
    assert huge.status_code == 422 and "A=50" in huge.json()["detail"], huge.text
    nogroup = c.http.post("/deployments", json={"name": "nogroup", "node_group": "nowhere", "config": sleeper("x")})
    assert nogroup.status_code == 422 and "no node in group 'nowhere'" in nogroup.json()["detail"], nogroup.text
    assert {d["id"] for d in c.http.get("/deployments").json()}.isdisjoint({"huge", "nogroup"})


def test_desired_state_stopped_stops_and_running_starts_again(shared_cluster: Cluster) -> None:
    c = shared_cluster
    c.deploy({"name": "pausable", "node_group": "g", "capacity_requests": {"A": 2}, "config": sleeper("p")})
    first = c.wait_running("pausable")
    resp = c.http.patch("/deployments/pausable", json={"desired_state": "stopped"})
    assert resp.status_code == 200, resp.text
    wait_for(lambda: not pid_alive(first["pid"]), what="the stopped process to exit")
    assert c.get("pausable")["state"] == "stopped"
    assert c.api_nodes()[first["node"]]["capacities_used"] == {"A": 0.0}
    c.http.patch("/deployments/pausable", json={"desired_state": "running"})
    second = c.wait_running("pausable")
    assert second["pid"] != first["pid"] and second["epoch"] > first["epoch"]
    c.http.delete("/deployments/pausable")
    wait_for(lambda: not pid_alive(second["pid"]), what="the process to stop")


def test_crash_looping_job_is_reported(shared_cluster: Cluster) -> None:
    c = shared_cluster
    c.deploy({"name": "crashy", "node_group": "g", "config": {"command": ["sh", "-c", "echo boom; exit 3"]},
              "restart_policy": {"type": "on-failure", "backoff_seconds": 0.1}})
    job = c.wait_job("crashy", lambda j: j["state"] == "crash-loop", what="crash-loop")
    assert job["exit_code"] == 3 and job["restarts"] >= 2
    assert c.get("crashy")["state"] == "crash-loop"
    c.http.delete("/deployments/crashy")


def test_max_restarts_ends_in_exited(shared_cluster: Cluster) -> None:
    c = shared_cluster
    c.deploy({"name": "limited", "node_group": "g", "config": {"command": ["sh", "-c", "exit 4"]},
              "restart_policy": {"type": "on-failure", "backoff_seconds": 0.05, "max_restarts": 2}})
    job = c.wait_job("limited", lambda j: j["state"] == "exited", what="exited")
    assert job["exit_code"] == 4 and job["restarts"] == 2
    c.http.delete("/deployments/limited")


def _serve_dir(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_image_archives_from_a_path_and_an_http_url(shared_cluster: Cluster, tmp_path: Path) -> None:
    c = shared_cluster
    script = b"import os\nprint('from-archive', os.path.basename(os.getcwd()), open('data.txt').read())\n"
    zpath = tmp_path / "app.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("main.py", script)
        zf.writestr("data.txt", "zip")
    tpath = tmp_path / "app.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        for name, data in (("main.py", script), ("data.txt", b"tgz")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    server, base = _serve_dir(tmp_path)
    try:
        for name, image in (("from-path", str(tpath)), ("from-url", f"{base}/app.zip"),
                            ("from-file-url", f"file://{zpath}")):
            c.deploy({"name": name, "node_group": "g", "restart_policy": {"type": "never"},
                      "config": {"command": [sys.executable, "main.py"], "image": image}})
        for name, content in (("from-path", "tgz"), ("from-url", "zip"), ("from-file-url", "zip")):
            job = c.wait_job(name, lambda j: j["state"] == "completed", what=f"{name} completed")
            lines = wait_for(lambda n=name: c.http.get(f"/deployments/{n}/logs").json()["lines"], what="output")
            assert lines[0]["line"] == f"from-archive app {content}", lines
            assert job["exit_code"] == 0
        digests = {p.name for n in ("n1", "n2") for p in (c.work_dir(n) / "cache" / "unpacked").glob("*")}
        assert len([d for d in digests if not d.startswith(".")]) <= 4  # one per archive per node, at most
        missing = c.deploy({"name": "no-image", "node_group": "g",
                            "config": {"command": ["true"], "image": str(tmp_path / "missing.zip")}})
        job = c.wait_job(missing["id"], lambda j: j["state"] == "failed", what="failed")
        assert "cannot fetch" in job["reason"]
    finally:
        server.shutdown()
        for name in ("from-path", "from-url", "from-file-url", "no-image"):
            c.http.delete(f"/deployments/{name}")


def test_conda_and_docker_missing_are_one_clear_reason(shared_cluster: Cluster) -> None:
    c = shared_cluster
    if os.environ.get("CONDA_EXE"):
        pytest.skip("conda is installed here")  # pragma: no cover
    c.deploy({"name": "condajob", "node_group": "g", "config": {"command": ["python"], "env_name": "ml"}})
    job = c.wait_job("condajob", lambda j: j["state"] == "failed", what="failed")
    assert "needs conda" in job["reason"]
    c.deploy({"name": "dockerjob", "node_group": "g", "kind": "docker",
              "config": {"image": "python:3.11-slim", "command": ["python", "-V"]}})
    job = c.wait_job("dockerjob", lambda j: j["state"] in ("failed", "running", "completed"), timeout=30)
    if job["state"] == "failed":
        assert "docker" in job["reason"]
    for name in ("condajob", "dockerjob"):
        c.http.delete(f"/deployments/{name}")


def test_replicas_spread_over_capacity(shared_cluster: Cluster) -> None:
    c = shared_cluster
    c.deploy({"name": "multi", "node_group": "g", "replicas": 3, "capacity_requests": {"A": 6},
              "config": sleeper("m")})
    dep = wait_for(lambda: (d := c.get("multi")) and sum(j["state"] == "running" for j in d["jobs"]) == 2 and d,
                   what="two replicas running")
    nodes = sorted(j["node"] for j in dep["jobs"] if j["node"])
    assert nodes == ["n1", "n2"]  # 6 + 6 does not fit on one node of 10
    pending = [j for j in dep["jobs"] if j["state"] == "pending"]
    assert len(pending) == 1 and "A=6" in pending[0]["reason"]
    pids = [j["pid"] for j in dep["jobs"] if j["pid"]]
    c.http.delete("/deployments/multi")
    wait_for(lambda: not any(pid_alive(p) for p in pids), what="replicas stopped")


def test_nodes_command_lists_the_conductors_nodes(shared_cluster: Cluster) -> None:
    import json
    import subprocess

    from .conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "symphony.cli", "nodes", "--url", shared_cluster.url,
            "--token-file", str(shared_cluster.storage / "api-token")]
    table = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NODE", "STATE", "GROUPS"]
    assert [r.split()[:3] for r in rows[:2]] == [["n1", "ready", "g"], ["n2", "ready", "g"]]
    as_json = subprocess.run([*base, "-o", "json"], capture_output=True, text=True, env=env, timeout=60)
    assert {n["node_id"] for n in json.loads(as_json.stdout)} >= {"n1", "n2"}
    refused = subprocess.run([*base[:-2], "--token", "wrong"], capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 1 and "refused the API token" in refused.stderr
