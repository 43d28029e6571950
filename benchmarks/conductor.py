"""Conductor benchmark: many simulated nodes on real mTLS streams, and submit → running latency.

    python benchmarks/conductor.py            # 100 / 500 / 1,000 nodes, 10 s windows, 40 submissions
    python benchmarks/conductor.py --quick    # a smoke run: 20 / 50 nodes, 3 s windows, 8 submissions

A real conductor runs as a subprocess (``symphony conductor -c …``) on loopback. Simulated
nodes are light clients — each its own certificate, channel and bidirectional stream,
sending a hello and then a heartbeat every second — spread over a few processes. The
conductor's CPU and RSS are sampled with psutil over each window. Latency: POST
/deployments until the conductor reports the job ``running`` on a real node agent
(``symphony node``) — the whole path: HTTP, store, scheduler, gRPC, the node's
supervisor launch and its status report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from symphony import certs, supervisor  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- simulated nodes
async def _sim_node(node_id: str, port: int, cert_dir: Path, stop: asyncio.Event, ready: list[int]) -> None:
    import grpc

    from symphony.proto import protocol_pb2 as pb
    from symphony.proto import protocol_pb2_grpc as pb_grpc

    creds = grpc.ssl_channel_credentials(
        root_certificates=(cert_dir / "ca.pem").read_bytes(),
        private_key=(cert_dir / f"{node_id}.key").read_bytes(),
        certificate_chain=(cert_dir / f"{node_id}.pem").read_bytes(),
    )
    hb = pb.Heartbeat(
        node_id=node_id, total_capacities_used={"A": 0},
        cpu=pb.CpuUsage(total_percent=12.5, per_core_percent=[10.0, 15.0], load_1m=0.3),
        memory=pb.MemoryUsage(used_bytes=8 << 30, available_bytes=24 << 30, used_percent=25.0),
        storage_mounts=[pb.StorageMountUsage(mount_point="/", used_bytes=1 << 40, available_bytes=1 << 40, used_percent=50)],
    )
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds,
                                       options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        call = pb_grpc.ConductorServiceStub(channel).Connect()
        await call.write(pb.NodeToConductor(hello=pb.NodeHello(
            node_id=node_id, groups=["sim"], capacities_total={"A": 100}, heartbeat_sec=1.0,
            cpu=pb.CpuStatic(logical_cores=16), memory=pb.MemoryStatic(total_bytes=32 << 30))))
        welcome = await call.read()
        assert welcome is not grpc.aio.EOF and welcome.WhichOneof("msg") == "welcome", welcome
        ready[0] += 1

        async def drain() -> None:
            while (await call.read()) is not grpc.aio.EOF:
                pass

        reader = asyncio.create_task(drain())
        await asyncio.sleep(hash(node_id) % 1000 / 1000)  # spread the heartbeats over the second
        while not stop.is_set():
            hb.timestamp_unix_ms = int(time.time() * 1000)
            await call.write(pb.NodeToConductor(heartbeat=hb))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        reader.cancel()
        call.cancel()


def _sim_process(node_ids: list[str], port: int, cert_dir: str, conn: Any) -> None:
    """Connect ``node_ids`` one after the other, report, heartbeat until told to stop."""

    async def main() -> None:
        stop = asyncio.Event()
        ready = [0]
        tasks = []
        for nid in node_ids:
            before = ready[0]
            tasks.append(asyncio.create_task(_sim_node(nid, port, Path(cert_dir), stop, ready)))
            while ready[0] == before and not tasks[-1].done():
                await asyncio.sleep(0.002)
            if tasks[-1].done():
                tasks[-1].result()  # raises: the node could not connect
        conn.send(("ready", ready[0]))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # any message = stop
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


# ---------------------------------------------------------------- the run
class Bench:
    def __init__(self, root: Path, *, quick: bool) -> None:
        self.root = root
        self.quick = quick
        self.grpc_port, self.http_port = free_port(), free_port()
        self.config = root / "conductor.yaml"
        self.config.write_text(
            "mode: conductor\nlogging: {level: WARNING}\nconductor:\n"
            f"  listen: 127.0.0.1:{self.grpc_port}\n  http: {{listen: 127.0.0.1:{self.http_port}}}\n"
            "  storage: {path: ./storage}\n"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.env = env
        self.conductor = subprocess.Popen(
            [sys.executable, "-m", "symphony.cli", "conductor", "-c", str(self.config)],
            stdout=(root / "conductor.log").open("wb"), stderr=subprocess.STDOUT, env=env, cwd=root)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=30)
        self._wait(lambda: self._health(), 30)
        token = (root / "storage" / "api-token").read_text().strip()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.proc = psutil.Process(self.conductor.pid)
        self.sims: list[Any] = []
        self.node: subprocess.Popen[bytes] | None = None

    def _health(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    @staticmethod
    def _wait(pred: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise TimeoutError(str(pred))

    def issue(self, ids: list[str], out: Path) -> None:
        for nid in ids:
            certs.issue_node(self.root / "storage" / "certs", nid, out)

    def add_sim_nodes(self, ids: list[str], *, per_process: int = 250) -> None:
        out = self.root / "simcerts"
        self.issue(ids, out)
        new = []
        for i in range(0, len(ids), per_process):
            parent, child = mp.Pipe()
            p = mp.Process(target=_sim_process, args=(ids[i:i + per_process], self.grpc_port, str(out), child))
            p.start()
            new.append((p, parent))
        self.sims += new
        for _proc, parent in new:
            if parent.poll(300):
                parent.recv()

    def sample(self, seconds: float) -> tuple[float, float]:
        self.proc.cpu_percent(None)
        time.sleep(seconds)
        return self.proc.cpu_percent(None), self.proc.memory_info().rss / 2**20

    def live_nodes(self) -> int:
        return int(self.http.get("/healthz").json()["nodes"])

    def start_real_node(self) -> None:
        cert_dir = self.root / "realcerts"
        self.issue(["real-1"], cert_dir)
        cfg = self.root / "node.yaml"
        cfg.write_text(json.dumps({"mode": "node", "logging": {"level": "WARNING"}, "node": {
            "node_id": "real-1", "conductor_addr": f"127.0.0.1:{self.grpc_port}", "groups": ["real"],
            "capacities_total": {"A": 1000}, "heartbeat_sec": 1.0, "work_dir": "real-work",
            "tls": {"ca_file": str(cert_dir / "ca.pem"), "cert_file": str(cert_dir / "real-1.pem"),
                    "key_file": str(cert_dir / "real-1.key")}}}))
        self.node = subprocess.Popen([sys.executable, "-m", "symphony.cli", "node", "-c", str(cfg)],
                                     stdout=(self.root / "node.log").open("wb"), stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.root)
        self._wait(lambda: any(n["node_id"] == "real-1" and n["state"] == "ready"
                               for n in self.http.get("/nodes").json()), 30)

    def latency(self, n: int) -> list[float]:
        out = []
        for i in range(n):
            name = f"lat-{i}"
            t0 = time.perf_counter()
            r = self.http.post("/deployments", json={"name": name, "node_group": "real", "capacity_requests": {"A": 1},
                                                     "config": {"command": ["sleep", "600"]}})
            assert r.status_code == 201, r.text
            while True:
                job = self.http.get(f"/deployments/{name}").json()["jobs"][0]
                if job["state"] == "running":
                    break
                if time.perf_counter() - t0 > 30:
                    raise TimeoutError(job)
                time.sleep(0.002)
            out.append(time.perf_counter() - t0)
            self.http.delete(f"/deployments/{name}")
            time.sleep(0.1)
        return out

    def close(self) -> None:
        for p, parent in self.sims:
            with contextlib.suppress(OSError):
                parent.send("stop")
            p.join(10)
            if p.is_alive():
                p.kill()
        if self.node is not None:
            self.node.terminate()
            self.node.wait(10)
        self.conductor.terminate()
        self.conductor.wait(10)
        for state in self.root.glob("real-work/jobs/*/state.json"):
            supervisor.stop(str(state), timeout=5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run with few nodes")
    ap.add_argument("--levels", default=None, help="comma-separated node counts (default 100,500,1000)")
    ap.add_argument("--window", type=float, default=None, help="seconds of CPU/RSS sampling per level")
    ap.add_argument("--submissions", type=int, default=None)
    args = ap.parse_args()
    levels = [int(x) for x in (args.levels or ("20,50" if args.quick else "100,500,1000")).split(",")]
    window = args.window or (3.0 if args.quick else 10.0)
    submissions = args.submissions or (8 if args.quick else 40)

    with tempfile.TemporaryDirectory(prefix="symphony-bench-") as tmp:
        bench = Bench(Path(tmp), quick=args.quick)
        rows = []
        try:
            idle_cpu, idle_rss = bench.sample(min(window, 3.0))
            rows.append((0, idle_cpu, idle_rss))
            have = 0
            for level in levels:
                ids = [f"sim-{i:05d}" for i in range(have, level)]
                t0 = time.perf_counter()
                bench.add_sim_nodes(ids)
                have = level
                bench._wait(lambda lv=level: bench.live_nodes() >= lv, 120)
                connect = time.perf_counter() - t0
                time.sleep(2.0)  # let the handshakes settle
                cpu, rss = bench.sample(window)
                rows.append((level, cpu, rss))
                print(f"  {level:>5} nodes connected ({len(ids)} new in {connect:.1f}s): "
                      f"conductor CPU {cpu:.1f}%  RSS {rss:.0f} MiB", flush=True)
            bench.start_real_node()
            lat = bench.latency(submissions)
        finally:
            bench.close()

    print()
    print("| simulated nodes (1 s heartbeats) | conductor CPU (% of one core) | conductor RSS (MiB) |")
    print("| ---: | ---: | ---: |")
    for level, cpu, rss in rows:
        print(f"| {level} | {cpu:.1f} | {rss:.0f} |")
    lat_ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(lat_ms)
    p99 = lat_ms[min(len(lat_ms) - 1, round(0.99 * (len(lat_ms) - 1)))]
    print()
    print(f"submit → running (POST /deployments until the node reports running), n={len(lat_ms)} "
          f"with {levels[-1]} simulated nodes connected:")
    print(f"  p50 {p50:.0f} ms   p99 {p99:.0f} ms   min {lat_ms[0]:.0f} ms   max {lat_ms[-1]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
