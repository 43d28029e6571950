"""The README's conductor walkthrough, with the example files as they are: certificates,
a conductor from examples/conductor/conductor.yaml, two nodes from node.yaml and node-2.yaml,
then manifests/examples/conductor/cluster.yaml and echo.yaml applied with the CLI.

Only the two listen ports are swapped for free ones (the examples use 50051 and 8000,
which a developer's own conductor may hold); every other setting is the file's own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, wait_for

pytestmark = pytest.mark.timeout(180)

CONFIGS = REPO / "examples" / "conductor"
MANIFESTS = REPO / "manifests" / "examples" / "conductor"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], list[subprocess.Popen[bytes]]]]:
    grpc, http = free_port(), free_port()
    for name in ("conductor.yaml", "node.yaml", "node-2.yaml"):
        text = (CONFIGS / name).read_text()
        text = text.replace(":50051", f":{grpc}").replace("127.0.0.1:8000", f"127.0.0.1:{http}")
        (tmp_path / name).write_text(text)
    shutil.copy(MANIFESTS / "echo.yaml", tmp_path / "echo.yaml")
    cluster = (MANIFESTS / "cluster.yaml").read_text().replace("127.0.0.1:8000", f"127.0.0.1:{http}")
    (tmp_path / "cluster.yaml").write_text(cluster)
    env = {**os.environ, "SYMPHONY_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    started: list[subprocess.Popen[bytes]] = []
    yield tmp_path, env, started
    for proc in started:
        proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def symphony(where: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "symphony.cli", *args], cwd=where, env=env,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"symphony {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def test_the_readme_walkthrough_runs_the_echo_example_on_two_nodes(
    walk: tuple[Path, dict[str, str], list[subprocess.Popen[bytes]]],
) -> None:
    where, env, started = walk
    symphony(where, env, "certs", "init", "--cert-path", "storage/certs")
    for node in ("node-1", "node-2"):
        symphony(where, env, "certs", "issue-node", node, "--cert-path", "storage/certs", "--out", "storage/certs")

    def start(*args: str) -> None:
        log = open(where / f"{args[-1]}.log", "wb")  # noqa: SIM115 - the process keeps it
        started.append(subprocess.Popen([sys.executable, "-m", "symphony.cli", *args], cwd=where, env=env,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    start("conductor", "-c", "conductor.yaml")
    wait_for(lambda: (where / "storage" / "api-token").exists(), what="the conductor's token")
    start("node", "-c", "node.yaml")
    start("node", "-c", "node-2.yaml")

    assert "cluster edge (conductor): remembered" in symphony(where, env, "apply", "-f", "cluster.yaml")
    wait_for(lambda: symphony(where, env, "nodes", "--cluster", "edge").count(" ready ") == 2,
             timeout=30, what="both nodes ready")
    out = symphony(where, env, "apply", "-f", "echo.yaml", "--wait", "--timeout", "60")
    assert "experiment echo (edge): 2 created" in out
    rows = {r["name"]: r for r in json.loads(symphony(where, env, "status", "echo", "-o", "json"))}
    assert {rows["server"]["node"], rows["client"]["node"]} == {"node-1", "node-2"}
    wait_for(lambda: "reply: pong ping from server" in symphony(where, env, "logs", "client", "echo"),
             timeout=30, what="the client's reply across the two nodes")
    symphony(where, env, "delete", "echo", "-f", "--cluster", "edge")
