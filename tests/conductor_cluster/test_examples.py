"""Every file in manifests/examples/conductor/ applies: the Cluster is remembered, and the
experiment converges on a real conductor with two nodes, its processes talking across them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, Edge, wait_for

pytestmark = pytest.mark.timeout(120)

EXAMPLES = REPO / "manifests" / "examples" / "conductor"


def test_every_example_is_covered_here() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir()) == ["cluster.yaml", "echo.yaml"]


def test_the_cluster_example_is_remembered(edge: Edge, tmp_path: Path) -> None:
    home = tmp_path / "home"  # its own state folder: the example's "edge" points at port 8000
    env = {**edge.env, "SYMPHONY_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "symphony.cli", "apply", "-f", str(EXAMPLES / "cluster.yaml")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cluster edge (conductor): remembered" in done.stdout
    assert (home / "clusters" / "edge.yaml").exists()


def test_the_echo_example_talks_across_two_nodes(edge: Edge) -> None:
    # the module's conductor is remembered as "edge" too, so the example runs on it as it is
    out = edge.ok("apply", "-f", EXAMPLES / "echo.yaml", "--wait", "--timeout", "60")
    assert "experiment echo (edge): 2 created" in out
    rows = {r["name"]: r for r in json.loads(edge.ok("status", "echo", "-o", "json"))}
    assert rows["server"]["node"] != rows["client"]["node"]
    wait_for(lambda: "reply: pong ping from server" in edge.ok("logs", "client", "echo"),
             what="the example's client to get a reply")
    assert edge.run("diff", "-f", EXAMPLES / "echo.yaml").returncode == 0
    edge.ok("delete", "echo", "-f", "--cluster", "edge")
    assert edge.processes("echo") == {}
