"""The HTTP API on a real conductor with two real nodes: auth, deployments, filters,
errors, nodes, logs (plain and followed), events and metrics."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Cluster, pid_alive, sleeper, sse, wait_for
from .promtext import parse_metrics

pytestmark = pytest.mark.timeout(120)


def _create(c: Cluster, body: dict[str, Any]) -> dict[str, Any]:
    resp = c.http.post("/deployments", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def cleanup(two_nodes: Cluster) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        two_nodes.http.delete(f"/deployments/{name}")


def test_every_route_but_healthz_needs_the_token(two_nodes: Cluster) -> None:
    c = two_nodes
    spec = c.http.get("/openapi.json").json()
    anon = httpx.Client(base_url=c.url, timeout=10)
    assert anon.get("/healthz").status_code == 200
    calls = [("GET", "/openapi.json")]
    for path, ops in spec["paths"].items():
        for method in ops:
            calls.append((method.upper(), path.replace("{dep_id}", "x").replace("{node_id}", "n1")
                          .replace("{name}", "x")))
    assert ("GET", "/metrics") in calls and ("GET", "/events") in calls and ("GET", "/nodes/n1") in calls
    for method, path in calls:
        if path == "/healthz":
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            resp = anon.request(method, path, headers=headers)
            assert resp.status_code == 401, (method, path, resp.text)
            assert resp.headers["content-type"].startswith("application/json")
            assert "token" in resp.json()["detail"] and resp.headers["www-authenticate"] == "Bearer"
    assert anon.get("/ui/static/app.js").status_code == 401
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_create_list_filter_get_and_patch(two_nodes: Cluster, cleanup: list[str]) -> None:
    c = two_nodes
    cleanup += ["api-a", "api-b"]
    a = _create(c, {"name": "api-a", "node_group": "cpu", "capacity_requests": {"A": 2}, "config": sleeper("a")})
    assert a["jobs"][0]["node"] == "n1" and a["reason"] == ""
    _create(c, {"name": "api-b", "capacity_requests": {"B": 1}, "kind": "exec", "config": sleeper("b"),
                "desired_state": "stopped"})
    c.wait_running("api-a")

    def names(**params: str) -> list[str]:
        resp = c.http.get("/deployments", params=params)
        assert resp.status_code == 200, resp.text
        return sorted(d["id"] for d in resp.json() if d["id"].startswith("api-"))

    assert names() == ["api-a", "api-b"]
    assert names(node="n1") == ["api-a"] and names(node="n2") == []
    assert names(node_group="cpu") == ["api-a"]
    assert names(desired_state="stopped") == ["api-b"] and names(state="running") == ["api-a"]
    assert names(kind="exec") == ["api-a", "api-b"] and names(kind="docker") == []
    assert names(q="i-b") == ["api-b"]
    bad = c.http.get("/deployments", params={"desired_state": "paused"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "desired_state"

    node = c.http.get("/nodes/n1").json()
    assert [(j["deployment_id"], j["state"]) for j in node["jobs"]] == [("api-a", "running")]
    assert node["capacities_used"] == {"A": 2.0}
    assert [n["node_id"] for n in c.http.get("/nodes", params={"group": "cpu"}).json()] == ["n1"]
    assert [n["node_id"] for n in c.http.get("/nodes", params={"state": "lost"}).json()] == []

    # start the stopped one: it goes to n2, the only node with B
    resp = c.http.patch("/deployments/api-b", json={"desired_state": "running"})
    assert resp.status_code == 200, resp.text
    assert c.wait_running("api-b")["node"] == "n2"


def test_bad_requests_are_json_with_the_field_and_change_nothing(two_nodes: Cluster, cleanup: list[str]) -> None:
    c = two_nodes
    cleanup.append("api-bad")
    before = c.http.get("/deployments").json()
    resp = c.http.post("/deployments", json={"name": "Api_Bad", "replicas": -1, "config": {"command": []},
                                             "restart_policy": {"type": "sometimes"}})
    assert resp.status_code == 422
    fields = {f["field"] for f in resp.json()["fields"]}
    assert fields == {"name", "replicas", "config.command", "restart_policy.type"}, resp.json()
    assert all(f["message"] for f in resp.json()["fields"])
    for raw in (b"", b"{not json", b"[1, 2"):
        resp = c.http.post("/deployments", content=raw, headers={"content-type": "application/json"})
        assert resp.status_code == 400 and "JSON" in resp.json()["detail"]
    assert c.http.post("/deployments", json=[1, 2]).status_code == 422
    assert c.http.get("/deployments").json() == before  # nothing half-applied

    dep = _create(c, {"name": "api-bad", "config": {"command": ["sleep", "60"]}, "capacity_requests": {"A": 1}})
    clash = c.http.post("/deployments", json={"name": "api-bad", "config": {"command": "true"}})
    assert clash.status_code == 409 and "already exists" in clash.json()["detail"]
    for body in ({"replicas": "two"}, {"config": {"command": ""}}, {"name": "other"}, {"bogus": True}, [1]):
        resp = c.http.patch("/deployments/api-bad", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["detail"]
    assert c.http.get("/deployments/api-bad").json()["spec_hash"] == dep["spec_hash"]

    for path in ("/deployments/nope", "/deployments/nope/logs", "/nodes/nope"):
        resp = c.http.get(path)
        assert resp.status_code == 404 and "nope" in resp.json()["detail"], path
    assert c.http.delete("/deployments/nope").status_code == 404
    assert c.http.patch("/deployments/nope", json={}).status_code == 404
    resp = c.http.get("/deployments/api-bad/logs", params={"tail": "lots"})
    assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "tail"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"capacity_requests": {"A": 50}}, "capacity_requests", ["A=50", "largest: 10"]),
        ({"node_group": "gpu"}, "node_group", ["no node in group 'gpu'"]),
        ({"capacity_requests": {"C": 1}}, "capacity_requests", ["class 'C' is declared by no node"]),
    ],
)
def test_work_no_node_could_ever_hold_is_refused_with_the_schedulers_reason(
    two_nodes: Cluster, cleanup: list[str], body: dict[str, Any], field: str, words: list[str]
) -> None:
    c = two_nodes
    name = f"api-never-{uuid.uuid4().hex[:6]}"
    cleanup.append(name)
    resp = c.http.post("/deployments", json={"name": name, "config": sleeper("x"), **body})
    assert resp.status_code == 422, resp.text
    error = resp.json()
    assert error["fields"][0]["field"] == field
    assert error["detail"].startswith(f"{field}: deployment {name} is unschedulable: ")
    assert all(w in error["detail"] for w in words), error["detail"]
    assert c.http.get(f"/deployments/{name}").status_code == 404  # nothing half-applied
    assert c.http.get("/events", params={"deployment": name}).json() == []
    # stopped, it holds nothing: accepted; asking it to run is refused the same way
    assert _create(c, {"name": name, "desired_state": "stopped", "config": sleeper("x"), **body})
    resp = c.http.patch(f"/deployments/{name}", json={"desired_state": "running"})
    assert resp.status_code == 422 and "unschedulable" in resp.json()["detail"], resp.text
    assert c.http.get(f"/deployments/{name}").json()["desired_state"] == "stopped"


def test_work_that_does_not_fit_now_waits_pending_with_a_clear_reason(
    two_nodes: Cluster, cleanup: list[str]
) -> None:
    c = two_nodes
    cleanup += ["api-fill", "api-wait"]
    _create(c, {"name": "api-fill", "node_group": "cpu", "capacity_requests": {"A": 10},
                "config": sleeper("x")})
    c.wait_running("api-fill")
    wait = _create(c, {"name": "api-wait", "node_group": "cpu", "capacity_requests": {"A": 4},
                       "config": sleeper("x")})
    assert wait["state"] == "pending" and "A=4" in wait["reason"] and "'cpu'" in wait["reason"], wait
    events = c.http.get("/events", params={"deployment": "api-wait", "kind": "unschedulable"}).json()
    assert events and "A=4" in events[-1]["message"]
    assert [d["id"] for d in c.http.get("/deployments", params={"state": "pending"}).json()
            if d["id"].startswith("api-")] == ["api-wait"]
    assert c.http.delete("/deployments/api-fill").status_code == 200
    c.wait_running("api-wait")  # placed as soon as the capacity is free


def test_logs_tail_replica_and_follow(two_nodes: Cluster) -> None:
    c = two_nodes
    _create(c, {"name": "api-logs", "replicas": 2, "capacity_requests": {"A": 1}, "config": sleeper("tick")})

    def enough() -> bool:
        lines = c.http.get("/deployments/api-logs/logs").json()["lines"]
        return len(lines) >= 4 and {e["replica"] for e in lines} == {0, 1}

    wait_for(enough, what="lines from both replicas")
    lines = c.http.get("/deployments/api-logs/logs", params={"tail": 3}).json()["lines"]
    assert len(lines) == 3 and all(e["line"] == "tick" for e in lines)
    one = c.http.get("/deployments/api-logs/logs", params={"replica": 1, "tail": 0}).json()["lines"]
    assert one and {e["replica"] for e in one} == {1} and {e["job_id"] for e in one} == {"api-logs-1"}

    with c.http.stream("GET", "/deployments/api-logs/logs", params={"follow": 1, "tail": 2},
                       timeout=httpx.Timeout(20)) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        events = sse(resp)
        seen: list[int] = []
        started = time.monotonic()
        for kind, ident, data in events:
            assert kind == "log"
            entry = json.loads(data)
            assert entry["line"] == "tick" and int(ident) == entry["seq"]
            seen.append(entry["seq"])
            if len(seen) >= 8:
                break
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
        assert time.monotonic() - started < 15  # new lines arrive while the stream is open
        # resuming after the 5th line sends the 6th onwards and nothing older
        with c.http.stream("GET", "/deployments/api-logs/logs", params={"follow": 1},
                           headers={"Last-Event-ID": str(seen[4])}, timeout=httpx.Timeout(20)) as again:
            kind, ident, _ = next(sse(again))
            assert int(ident) == seen[5]
        # deleting the deployment ends the stream with an "end" event
        assert c.http.delete("/deployments/api-logs").status_code == 200
        for kind, _, data in events:
            if kind == "end":
                assert "deleted" in json.loads(data)["reason"]
                break
        else:
            raise AssertionError("the stream ended without an end event")


def test_events_poll_after_an_id(two_nodes: Cluster, cleanup: list[str]) -> None:
    c = two_nodes
    latest = c.http.get("/events", params={"limit": 1}).json()
    last_id = latest[-1]["id"] if latest else 0
    cleanup.append("api-events")
    _create(c, {"name": "api-events", "node_group": "cpu", "capacity_requests": {"A": 1}, "config": sleeper("e")})
    c.wait_running("api-events")
    new = c.http.get("/events", params={"after": last_id}).json()
    ids = [e["id"] for e in new]
    assert ids == sorted(ids) and all(i > last_id for i in ids)
    kinds = [e["kind"] for e in new if e["deployment_id"] == "api-events"]
    assert kinds[:2] == ["created", "placed"] and "state" in kinds
    assert all(e["node_id"] == "n1" for e in c.http.get("/events", params={"node": "n1", "limit": 20}).json())
    first_two = c.http.get("/events", params={"after": last_id, "limit": 2}).json()
    assert [e["id"] for e in first_two] == ids[:2]
    assert c.http.get("/events", params={"limit": 0}).status_code == 422


def test_metrics_count_nodes_capacity_jobs_and_scheduling(two_nodes: Cluster, cleanup: list[str]) -> None:
    c = two_nodes
    cleanup.append("api-metrics")
    _create(c, {"name": "api-metrics", "node_group": "cpu", "capacity_requests": {"A": 3}, "config": sleeper("m")})
    c.wait_running("api-metrics")
    resp = c.http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse_metrics(resp.text)
    assert m['symphony_nodes{state="ready"}'] == 2
    assert m['symphony_capacity_total{class="A"}'] == 20 and m['symphony_capacity_total{class="B"}'] == 4
    used = sum(float(n["capacities_used"].get("A", 0)) for n in c.api_nodes().values())
    assert m['symphony_capacity_used{class="A"}'] == used >= 3
    assert m['symphony_node_capacity_used{node="n1",class="A"}'] >= 3
    assert m['symphony_jobs{state="running"}'] >= 1
    assert m["symphony_scheduling_latency_seconds_count"] >= 1
    buckets = [v for k, v in m.items() if k.startswith("symphony_scheduling_latency_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == m["symphony_scheduling_latency_seconds_count"]
    assert m['symphony_node_up{node="n1"}'] == 1 and m['symphony_node_cpu_percent{node="n1"}'] >= 0


def test_stop_and_delete_stop_the_process(two_nodes: Cluster) -> None:
    c = two_nodes
    _create(c, {"name": "api-stop", "config": sleeper("s"), "capacity_requests": {"A": 1}})
    pid = c.wait_running("api-stop")["pid"]
    resp = c.http.patch("/deployments/api-stop", json={"desired_state": "stopped"})
    assert resp.status_code == 200 and resp.json()["state"] == "stopped"
    wait_for(lambda: not pid_alive(pid), what="the stopped process to exit")
    assert c.http.delete("/deployments/api-stop").json() == {"deleted": "api-stop"}
    assert c.http.get("/deployments/api-stop").status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [("/events", {"after": 2**70}), ("/events", {"after": -1}), ("/events", {"limit": 10**6}),
     ("/deployments/x/logs", {"tail": 2**70}), ("/deployments/x/logs", {"replica": -3}),
     ("/deployments", {"kind": "vm"}), ("/nodes", {"state": "sleepy"}), ("/events", {"kind": "\x00"})],
)
def test_odd_parameters_are_4xx_json_never_5xx(two_nodes: Cluster, path: str, params: dict[str, Any]) -> None:
    resp = two_nodes.http.get(path, params=params)
    assert resp.status_code < 500, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    if not resp.is_success:
        assert resp.json()["detail"], resp.text


def test_too_many_replicas_are_refused_before_anything_is_written(two_nodes: Cluster) -> None:
    resp = two_nodes.http.post("/deployments", json={"name": "api-many", "replicas": 10**6, "config": {"command": "true"}})
    assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "replicas"
    assert two_nodes.http.get("/deployments/api-many").status_code == 404


def test_conductor_stops_promptly_while_a_log_is_followed(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start_conductor()
        c.start_node("solo")
        _create(c, {"name": "chatty", "config": sleeper("chat")})
        c.wait_running("chatty")
        with c.http.stream("GET", "/deployments/chatty/logs", params={"follow": 1},
                           timeout=httpx.Timeout(20)) as resp:
            assert next(e for e in sse(resp))[0] == "log"
            assert c.conductor is not None
            began = time.monotonic()
            c.conductor.p.send_signal(signal.SIGTERM)
            c.conductor.p.wait(15)
            assert time.monotonic() - began < 6, "an open log stream held up shutdown"
    finally:
        c.close()
