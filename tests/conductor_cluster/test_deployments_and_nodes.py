"""Deployments applied to a conductor cluster go to the conductor as Deployments (not as
lowered processes): create, no-op re-apply, scale, stop, logs, delete; and ``nodes --cluster``."""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import Edge, wait_for

pytestmark = pytest.mark.timeout(180)


def web(*, replicas: int, state: str = "running") -> str:
    code = "import os, time\\nwhile True:\\n  print(os.environ['GREETING'], os.environ['SYMPH_REPLICA'], flush=True); time.sleep(0.3)"
    return f"""apiVersion: symphony/v1
kind: Deployment
metadata: {{name: web}}
spec:
  cluster: edge
  node_group: a
  replicas: {replicas}
  capacity_requests: {{A: 1}}
  config:
    command: [{sys.executable}, -c, "{code}"]
    env: {{GREETING: hi}}
  restart_policy: {{type: on-failure, backoff_seconds: 1}}
  desired_state: {state}
"""


def test_a_deployment_is_a_conductor_deployment_with_its_lifecycle(edge: Edge) -> None:
    path = edge.write("web.yaml", web(replicas=2))
    assert "experiment web (edge): 2 created" in edge.ok("apply", "-f", path)
    native = edge.cluster.get("web")  # GET /deployments/web: the conductor's own record
    assert native["replicas"] == 2 and native["node_group"] == "a" and native["config"]["env"] == {"GREETING": "hi"}
    rows = edge.wait_running("web", {"web-0", "web-1"})
    assert {r["node"] for r in rows.values()} == {"na"}
    assert edge.cluster.api_nodes()["na"]["capacities_used"] == {"A": 2.0}

    assert "2 unchanged" in edge.ok("apply", "-f", path)
    assert edge.run("diff", "-f", path).returncode == 0
    wait_for(lambda: "hi 1" in edge.ok("logs", "web-1", "web"), what="replica 1's output")

    # scale to one: the lowered names change (web-0, web-1 -> web), the deployment is updated
    one = edge.write("web.yaml", web(replicas=1))
    edge.ok("apply", "-f", one)
    wait_for(lambda: set(edge.wait_running("web", {"web"})) == {"web"}, what="one replica")
    assert edge.cluster.get("web")["replicas"] == 1
    assert "1 unchanged" in edge.ok("apply", "-f", one)

    # stopped: no processes, and stays a no-op
    stopped = edge.write("web.yaml", web(replicas=1, state="stopped"))
    edge.ok("apply", "-f", stopped)
    wait_for(lambda: edge.cluster.get("web")["state"] == "stopped", what="the deployment stopped")
    assert edge.processes("web") == {}
    assert edge.run("diff", "-f", stopped).returncode == 0
    row = edge.status("web")["web"]  # shown, so that it can be deleted
    assert row["phase"] == "exited" and "stopped" in row["reason"], row

    assert "experiment web (edge): deleted" in edge.ok("delete", "web", "-f", "--cluster", "edge")
    assert edge.cluster.http.get("/deployments/web").status_code == 404


def test_nodes_with_a_cluster_name(edge: Edge) -> None:
    rows = json.loads(edge.ok("nodes", "--cluster", "edge", "-o", "json"))
    by_id = {n["node_id"]: n for n in rows}
    assert by_id["na"]["advertise_address"] == "127.0.0.1" and by_id["nb"]["advertise_address"] == "127.0.0.2"
    assert by_id["na"]["groups"] == ["a"] and by_id["na"]["state"] == "ready"
    table = edge.ok("nodes", "--cluster", "edge")
    assert table.splitlines()[0].split()[:3] == ["NODE", "STATE", "GROUPS"] and "nb" in table

    bad = edge.run("nodes", "--cluster", "local")
    assert bad.returncode == 2 and "lists a conductor's nodes" in bad.stderr
