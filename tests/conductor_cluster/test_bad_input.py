"""Bad input against a conductor cluster: one clear line from the CLI, a JSON error from the
API, and nothing half-applied."""

from __future__ import annotations

import sys

import httpx
import pytest

from .conftest import Edge, helpers

pytestmark = pytest.mark.timeout(120)


def experiment(name: str, cluster: str, processes: str) -> str:
    return f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: {cluster}
  processes:
{processes}"""


SLEEP = f"[{sys.executable}, -c, 'import time; time.sleep(3600)']"


def one_line_error(done: object, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)  # type: ignore[attr-defined]
    lines = [line for line in done.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr  # type: ignore[attr-defined]
    return lines[0]


def test_unknown_cluster(edge: Edge) -> None:
    path = edge.write("nowhere.yaml", experiment("lost", "nowhere", f"    - {{name: p, command: {SLEEP}}}\n"))
    line = one_line_error(edge.run("apply", "-f", path), 2)
    assert line.startswith(f"{path}:") and "unknown cluster 'nowhere'" in line


@pytest.mark.parametrize(
    ("case", "code", "expected"),
    [
        ("unreachable", 1, "cluster down: cannot reach the conductor at http://127.0.0.1:"),
        ("wrong-token", 1, "the conductor at http://127.0.0.1:"),
        ("no-token-file", 2, "cluster down: conductor.token_file"),
    ],
)
def test_unreachable_conductor_and_bad_tokens(edge: Edge, case: str, code: int, expected: str) -> None:
    if case == "unreachable":
        cluster = edge.cluster_manifest("down", url=f"http://127.0.0.1:{helpers.free_port()}")
    elif case == "wrong-token":
        wrong = edge.root / "wrong.token"
        wrong.write_text("not-the-token\n")
        cluster = edge.cluster_manifest("down", token_file=wrong)
    else:
        cluster = edge.cluster_manifest("down", token_file=edge.root / "missing.token")
    path = edge.write(f"{case}.yaml", cluster + "---\n" + experiment("x", "down", f"    - {{name: p, command: {SLEEP}}}\n"))
    line = one_line_error(edge.run("apply", "-f", path), code)
    assert expected in line
    if case == "wrong-token":
        assert "refused the API token" in line
    assert not (edge.home / "clusters" / "down.yaml").exists()  # nothing applied, not even the Cluster


def test_unschedulable_experiment_is_refused_whole_with_the_reason(edge: Edge) -> None:
    used_before = {n: v["capacities_used"] for n, v in edge.cluster.api_nodes().items()}
    never = edge.write("never.yaml", experiment("huge", "edge", f"""    - {{name: small, node_group: a, capacity_requests: {{A: 1}}, command: {SLEEP}}}
    - {{name: big, node_group: b, capacity_requests: {{A: 100}}, command: {SLEEP}}}
"""))
    line = one_line_error(edge.run("apply", "-f", never), 2)
    assert line.startswith(f"{never}:3: cluster edge: experiment huge is unschedulable: ")
    assert "needs A=100; no node of 'b' has that much A even when idle (largest: 4)" in line
    # a gang that could fit somewhere but not together now is refused too
    crowded = edge.write("crowded.yaml", experiment("crowded", "edge", f"""    - {{name: a1, node_group: a, capacity_requests: {{A: 3}}, command: {SLEEP}}}
    - {{name: a2, node_group: a, capacity_requests: {{A: 3}}, command: {SLEEP}}}
"""))
    line = one_line_error(edge.run("apply", "-f", crowded), 2)
    assert "experiment crowded is unschedulable" in line
    assert edge.processes("huge") == {} and edge.processes("crowded") == {}
    assert {n: v["capacities_used"] for n, v in edge.cluster.api_nodes().items()} == used_before
    # one bad experiment beside a good one: neither is applied
    good = edge.write("good.yaml", experiment("fine", "edge", f"    - {{name: p, command: {SLEEP}}}\n"))
    one_line_error(edge.run("apply", "-f", good, "-f", never), 2)
    assert edge.processes("fine") == {}


def test_unschedulable_deployment_names_the_reason(edge: Edge) -> None:
    path = edge.write("bigdep.yaml", """apiVersion: symphony/v1
kind: Deployment
metadata: {name: bigdep}
spec:
  cluster: edge
  node_group: a
  capacity_requests: {A: 50}
  config: {command: [sleep, "3600"]}
""")
    line = one_line_error(edge.run("apply", "-f", path), 2)
    assert line.startswith(f"{path}:3: cluster edge: deployment bigdep is unschedulable: needs A=50")
    assert edge.cluster.http.get("/deployments/bigdep").status_code == 404


def test_api_errors_are_json(edge: Edge) -> None:
    http = edge.cluster.http
    resp = http.post("/apply", json={"experiments": [{"name": "Bad_Name", "processes": [{"name": "p"}]}]})
    assert resp.status_code == 422 and resp.json()["errors"], resp.text
    resp = http.post("/apply", json={"experiments": [{"name": "ok", "processes": [
        {"name": "p", "command": ["true"], "capacity_requests": {"A": 99}}]}]})
    assert resp.status_code == 422 and "unschedulable" in resp.json()["detail"]
    assert http.post("/apply", content=b"{not json").status_code == 400
    assert http.post("/apply", json={"bogus": 1}).status_code == 422
    assert http.get("/experiments/none-such").status_code == 404
    assert http.delete("/experiments/none-such").json()["errors"]
    anon = httpx.get(f"{edge.cluster.url}/processes", headers={"Authorization": "Bearer wrong"})
    assert anon.status_code == 401 and anon.json()["detail"]
    # a name that is taken by a plain deployment
    edge.cluster.deploy({"name": "taken", "config": {"command": ["sleep", "3600"]}, "node_group": "a"})
    resp = http.post("/apply", json={"experiments": [{"name": "taken", "processes": [
        {"name": "p", "command": ["true"]}]}]})
    assert resp.status_code == 422 and "a deployment of that name exists" in resp.json()["detail"]
    http.delete("/deployments/taken")
