"""Experiments across conductor restarts and node loss.

A restarted conductor knows its experiments again (re-apply changes nothing, ports
stay); when the node of a binder is lost, the binder is placed elsewhere and every
process of the experiment gets the new address, so they talk again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Edge, block, environ, helpers, wait_for
from .test_experiments import CLIENT, SERVER

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def g_edge(tmp_path: Path) -> Iterator[Edge]:
    e = Edge(tmp_path)
    try:
        e.start(nodes=(("n1", "g", "127.0.0.1"), ("n2", "g", "127.0.0.2")))
        e.ok("apply", "-f", e.cluster_yaml)
        yield e
    finally:
        e.close()


def manifest() -> str:
    # 2 + 3 units do not fit on one node of 4: the gang spreads over both nodes
    return f"""apiVersion: symphony/v1
kind: Experiment
metadata: {{name: moving}}
spec:
  cluster: edge
  processes:
    - name: server
      node_group: g
      capacity_requests: {{A: 2}}
      binds: [echo]
      command:
        - {sys.executable}
        - -c
        - |
{block(SERVER)}
    - name: client
      node_group: g
      capacity_requests: {{A: 3}}
      connects: [echo]
      env: {{MESSAGE: ping}}
      command:
        - {sys.executable}
        - -c
        - |
{block(CLIENT)}
"""


def test_conductor_restart_keeps_everything_and_a_lost_binder_moves_with_its_address(g_edge: Edge) -> None:
    e, c = g_edge, g_edge.cluster
    path = e.write("moving.yaml", manifest())
    e.ok("apply", "-f", path)
    rows = e.wait_running("moving", {"server", "client"})
    assert rows["server"]["node"] != rows["client"]["node"]
    port = environ(rows["server"]["pid"])["SYMPH_ECHO_PORT"]

    # the conductor restarts: processes keep running, nothing to do on re-apply
    assert c.conductor is not None
    c.conductor.stop()
    c.start_conductor()
    for node in ("n1", "n2"):
        c.wait_node(node, "ready")
    assert "2 unchanged" in e.ok("apply", "-f", path)
    again = e.wait_running("moving", {"server", "client"})
    assert {k: r["pid"] for k, r in again.items()} == {k: r["pid"] for k, r in rows.items()}
    assert environ(again["client"]["pid"])["SYMPH_ECHO_PORT"] == port

    # the server's node is lost; a third node can hold it: it moves, and the client follows
    e.start_node("n3", "g", "127.0.0.3")
    lost = rows["server"]["node"]
    c.nodes[lost].kill9()
    helpers.supervisor.stop(str(c.work_dir(lost) / "jobs" / "moving.server" / "state.json"), timeout=10)
    c.wait_node(lost, "lost", timeout=30)

    def at_new_address(key: str) -> dict[str, object] | None:
        r = e.processes("moving")[key]
        ok = r["state"] == "running" and r["pid"] and environ(r["pid"]).get("SYMPH_ECHO_HOST") == "127.0.0.3"
        return r if ok else None

    server = wait_for(lambda: at_new_address("server"), timeout=30, what="the server running on n3 at 127.0.0.3")
    client = wait_for(lambda: at_new_address("client"), timeout=30, what="the client restarted with the new address")
    assert server["node"] == "n3" and client["node"] == rows["client"]["node"]
    wait_for(lambda: "reply: pong ping from server" in e.ok("logs", "client", "moving", "--tail", "2"),
             what="replies from the moved server")
    assert e.run("diff", "-f", path).returncode == 0  # still what the manifest says
