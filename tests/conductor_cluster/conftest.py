"""A real conductor with two real nodes on loopback, driven through the real ``symphony`` CLI.

Node ``na`` (group ``a``) advertises 127.0.0.1 and node ``nb`` (group ``b``) 127.0.0.2
(any 127.0.0.0/8 address is loopback on Linux), so a process placed on ``nb`` is
reached at another address than one on ``na``. The conductor/node process helpers are
the conductor area's own (tests/conductor/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conductor import conftest as helpers

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
wait_for = helpers.wait_for


class Edge:
    """The running conductor (``cluster``), the Cluster manifest naming it and a CLI runner."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "conductor").mkdir()
        self.cluster = helpers.Cluster(root / "conductor")
        self.home = root / "home"
        self.home.mkdir()
        self.manifests = root / "manifests"
        self.manifests.mkdir()
        self.env = {
            **os.environ,
            "SYMPHONY_HOME": str(self.home),
            "SYMPHONY_TMUX_SOCKET": f"symphony-test-{uuid.uuid4().hex[:8]}",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }

    def start(self, nodes: tuple[tuple[str, str, str], ...] = (("na", "a", "127.0.0.1"), ("nb", "b", "127.0.0.2"))) -> None:
        self.cluster.start_conductor()
        for node_id, group, addr in nodes:
            self.start_node(node_id, group, addr)
        self.cluster_yaml = self.write("cluster.yaml", self.cluster_manifest("edge"))

    def start_node(self, node_id: str, group: str, addr: str) -> None:
        """A node of one group with A=4 that advertises ``addr``."""
        path = self.cluster.node_config(node_id, groups=(group,), caps={"A": 4})
        config = json.loads(path.read_text())
        config["node"]["advertise_address"] = addr
        path.write_text(json.dumps(config))
        self.cluster.start_node(node_id)

    def cluster_manifest(self, name: str, *, url: str | None = None, token_file: str | Path | None = None) -> str:
        return (
            "apiVersion: symphony/v1\nkind: Cluster\n"
            f"metadata: {{name: {name}}}\n"
            "spec:\n  type: conductor\n  conductor:\n"
            f"    url: {url or self.cluster.url}\n"
            f"    token_file: {token_file or self.cluster.storage / 'api-token'}\n"
        )

    def write(self, name: str, text: str) -> Path:
        path = self.manifests / name
        path.write_text(text)
        return path

    def run(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``symphony ARGS…`` in a subprocess; never raises on a non-zero exit."""
        return subprocess.run(
            [sys.executable, "-m", "symphony.cli", *map(str, args)],
            capture_output=True, text=True, env=self.env, timeout=timeout, stdin=subprocess.DEVNULL,
            cwd=self.root,
        )

    def ok(self, *args: str | Path) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"symphony {' '.join(map(str, args))}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout

    def status(self, experiment: str | None = None) -> dict[str, dict[str, Any]]:
        """``status -o json`` keyed by process key (``group/name`` or ``name``)."""
        rows = json.loads(self.ok("status", *([experiment] if experiment else []), "--cluster", "edge", "-o", "json"))
        return {(f"{r['group']}/{r['name']}" if r["group"] else r["name"]): r for r in rows}

    def processes(self, experiment: str) -> dict[str, dict[str, Any]]:
        resp = self.cluster.http.get("/processes", params={"experiment": experiment})
        resp.raise_for_status()
        return {r["key"]: r for r in resp.json()}

    def wait_running(self, experiment: str, keys: set[str], *, timeout: float = 30) -> dict[str, dict[str, Any]]:
        def ready() -> dict[str, dict[str, Any]] | None:
            rows = self.processes(experiment)
            done = set(rows) == keys and all(r["state"] == "running" and r["pid"] for r in rows.values())
            return rows if done else None

        return wait_for(ready, timeout=timeout, what=f"{experiment}: {sorted(keys)} running")

    def close(self) -> None:
        self.cluster.close()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    e = Edge(tmp_path_factory.mktemp("edge"))
    try:
        e.start()
        e.ok("apply", "-f", e.cluster_yaml)
        yield e
    finally:
        e.close()


def environ(pid: int) -> dict[str, str]:
    """A live process's environment; {} once it is gone (it may be replaced while we look)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def block(code: str) -> str:
    """Python source indented to sit under ``- |`` in a manifest's command list."""
    return "\n".join("          " + line for line in code.strip().splitlines())
