"""Real conductor and node processes on loopback with real certificates.

``cluster_factory`` starts ``python -m symphony.cli conductor -c …`` and
``python -m symphony.cli node -c …`` subprocesses in a temporary folder and cleans up
everything they started, including the job supervisors that outlive them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from symphony import certs, supervisor

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.5  # lost after 1.5 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or predicate} (last: {last!r})")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Proc:
    def __init__(self, argv: list[str], log: Path):
        self.argv, self.log = argv, log
        self.fh = log.open("ab")
        self.p = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=_env(), cwd=str(log.parent))

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Cluster:
    """A conductor (subprocess) and its nodes, driven through the HTTP API."""

    def __init__(self, root: Path, *, allow_shared: bool = False, grace: float = 3.0):
        self.root = root
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.storage = root / "storage"
        self.certs = self.storage / "certs"
        self.config = root / "conductor.yaml"
        self.config.write_text(
            "mode: conductor\n"
            "logging: {level: INFO}\n"
            "conductor:\n"
            f"  listen: 127.0.0.1:{self.grpc_port}\n"
            f"  http: {{listen: 127.0.0.1:{self.http_port}}}\n"
            "  storage: {path: ./storage}\n"
            f"  startup_grace_sec: {grace}\n"
            f"  tls: {{allow_shared_node_cert: {str(allow_shared).lower()}}}\n"
        )
        self.conductor: Proc | None = None
        self.nodes: dict[str, Proc] = {}
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    # ---- processes ----
    def start_conductor(self, *, seed_entry: bool = False) -> Proc:
        """``symphony conductor -c FILE``, or the seed's ``symphony --config FILE``."""
        args = ["--config", str(self.config)] if seed_entry else ["conductor", "-c", str(self.config)]
        self.conductor = Proc([sys.executable, "-m", "symphony.cli", *args], self.root / "conductor.log")
        wait_for(self._healthy, timeout=30, what="conductor /healthz")
        self.http.headers["Authorization"] = f"Bearer {(self.storage / 'api-token').read_text().strip()}"
        return self.conductor

    def _healthy(self) -> bool:
        assert self.conductor is not None
        if not self.conductor.alive():
            raise AssertionError(f"conductor exited:\n{self.conductor.output()}")
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def node_config(self, node_id: str, *, groups: tuple[str, ...] = ("g",), caps: dict[str, float] | None = None,
                    addr: str | None = None, cert_dir: Path | None = None) -> Path:
        cert_dir = cert_dir or self.root / f"certs-{node_id}"
        if not (cert_dir / f"{node_id}.pem").exists():
            certs.issue_node(self.certs, node_id, cert_dir)
        path = self.root / f"{node_id}.yaml"
        caps = caps if caps is not None else {"A": 10}
        path.write_text(json.dumps({
            "mode": "node",
            "node": {
                "node_id": node_id,
                "conductor_addr": addr or f"127.0.0.1:{self.grpc_port}",
                "groups": list(groups),
                "capacities_total": caps,
                "heartbeat_sec": HEARTBEAT,
                "work_dir": f"work-{node_id}",
                "reconnect": {"min_sec": 0.2, "max_sec": 1.0},
                "stop_timeout_sec": 3,
                "tls": {"ca_file": str(cert_dir / "ca.pem"), "cert_file": str(cert_dir / f"{node_id}.pem"),
                        "key_file": str(cert_dir / f"{node_id}.key")},
            },
        }))
        return path

    def start_node(self, node_id: str, *, wait: bool = True, **kw: Any) -> Proc:
        config = self.root / f"{node_id}.yaml"
        if kw or not config.exists():
            config = self.node_config(node_id, **kw)
        proc = Proc([sys.executable, "-m", "symphony.cli", "node", "-c", str(config)], self.root / f"{node_id}.log")
        self.nodes[node_id] = proc
        if wait:
            self.wait_node(node_id, "ready")
        return proc

    def work_dir(self, node_id: str) -> Path:
        return self.root / f"work-{node_id}"

    # ---- API ----
    def api_nodes(self) -> dict[str, dict[str, Any]]:
        resp = self.http.get("/nodes")
        resp.raise_for_status()
        return {n["node_id"]: n for n in resp.json()}

    def wait_node(self, node_id: str, state: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(lambda: (n := self.api_nodes().get(node_id)) and n["state"] == state and n,
                        timeout=timeout, what=f"node {node_id} {state}")

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post("/deployments", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def get(self, dep: str) -> dict[str, Any]:
        resp = self.http.get(f"/deployments/{dep}")
        resp.raise_for_status()
        return resp.json()

    def wait_job(self, dep: str, pred: Callable[[dict[str, Any]], bool], *, timeout: float = 20, what: str = "") -> dict[str, Any]:
        return wait_for(lambda: (j := self.get(dep)["jobs"][0]) and pred(j) and j, timeout=timeout,
                        what=what or f"job of {dep}")

    def wait_running(self, dep: str, timeout: float = 20) -> dict[str, Any]:
        return self.wait_job(dep, lambda j: j["state"] == "running" and bool(j["pid"]), timeout=timeout,
                             what=f"{dep} running")

    # ---- cleanup ----
    def close(self) -> None:
        for proc in self.nodes.values():
            proc.stop()
        if self.conductor is not None:
            self.conductor.stop()
        self.http.close()
        for state_file in self.root.glob("work-*/jobs/*/state.json"):
            with contextlib.suppress(Exception):
                supervisor.stop(str(state_file), timeout=5)


def pid_alive(pid: int) -> bool:
    return supervisor.is_alive(pid)


def sleeper(tag: str) -> dict[str, Any]:
    """A job that prints a line every 0.2 s until stopped."""
    code = f"import time\nwhile True:\n    print('{tag}', flush=True)\n    time.sleep(0.2)\n"
    return {"command": [sys.executable, "-c", code]}


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(name: str = "c", **kw: Any) -> Cluster:
        root = tmp_path / name
        root.mkdir()
        c = Cluster(root, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One conductor with nodes n1, n2 (group g, A=10 each) for tests that do not break it."""
    c = Cluster(tmp_path_factory.mktemp("shared"))
    try:
        c.start_conductor()
        c.start_node("n1")
        c.start_node("n2")
        yield c
    finally:
        c.close()


def sse(resp: Any) -> Iterator[tuple[str, str, str]]:
    """(event, id, data) for each server-sent event of a streamed ``httpx`` response."""
    event, ident, data = "message", "", []
    for line in resp.iter_lines():
        if line == "":
            if data:
                yield event, ident, "\n".join(data)
            event, ident, data = "message", "", []
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
