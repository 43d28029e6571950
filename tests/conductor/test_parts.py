"""The conductor's and node's parts on their own: protocol code, certificates, config,
store, placement, backoff, archives."""

from __future__ import annotations

import io
import os
import random
import re
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony import certs
from symphony.conductor.config import load_conductor_settings
from symphony.conductor.placement import Placer
from symphony.conductor.store import JobRow, Store
from symphony.errors import UserError
from symphony.node.artifacts import ArtifactError, prepare_image
from symphony.node.config import load_node_settings
from symphony.node.connection import Backoff
from symphony.proto import generate

REPO = Path(__file__).resolve().parents[2]


def _without_tool_versions(text: str) -> str:
    """Generated code names the protoc/grpcio-tools version; the rest must match exactly."""
    text = re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)", "<runtime check>", text)
    text = re.sub(r"# Protobuf Python Version: .*", "", text)
    return re.sub(r"GRPC_GENERATED_VERSION = '[^']*'", "", text)


def test_generated_code_matches_the_proto() -> None:
    """Regenerating with grpcio-tools gives the committed files (tool versions aside)."""
    rendered = generate.render()
    assert set(rendered) == {"protocol_pb2.py", "protocol_pb2.pyi", "protocol_pb2_grpc.py"}
    for name, text in rendered.items():
        committed = (REPO / "symphony" / "proto" / name).read_text()
        assert _without_tool_versions(committed) == _without_tool_versions(text), (
            f"symphony/proto/{name} is stale: run python -m symphony.proto.generate"
        )
    assert "from . import protocol_pb2" in rendered["protocol_pb2_grpc.py"]


# ---------------------------------------------------------------- certificates
def test_ca_server_and_node_certificates(tmp_path: Path) -> None:
    root = tmp_path / "certs"
    written = certs.ensure_conductor_certs(root, sans=("conductor.example", "10.1.2.3"))
    assert {p.name for p in written} == {"ca.pem", "ca.key", "server.pem", "server.key",
                                         "node-client.pem", "node-client.key"}
    assert certs.ensure_conductor_certs(root) == []  # idempotent: nothing is replaced
    server = x509.load_pem_x509_certificate((root / "server.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "conductor.example"} <= set(sans.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1", "10.1.2.3"}
    cert, key, ca = certs.issue_node(root, "gpu-7", tmp_path / "out")
    assert certs.common_name(cert.read_bytes()) == "gpu-7"
    assert ca.read_bytes() == (root / "ca.pem").read_bytes()
    for path in (key, root / "ca.key", root / "server.key", root / "node-client.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    node = x509.load_pem_x509_certificate(cert.read_bytes())
    node.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.read_bytes()))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "symphony.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def test_certs_commands(tmp_path: Path) -> None:
    done = _cli("certs", "init", "--cert-path", "ca", "--san", "10.0.0.9", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ca" / "server.pem").exists()
    done = _cli("certs", "issue-node", "edge-1", "--cert-path", "ca", "--out", "n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == ["ca.pem", "edge-1.key", "edge-1.pem"]
    done = _cli("certs", "issue-node", "edge-2", "--cert-path", "nowhere", "--out", "n", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "CA" in done.stderr


# ---------------------------------------------------------------- config
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_conductor_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    s = load_conductor_settings(_write(tmp_path, "mode: conductor\nconductor:\n  tls: {cert_path: storage/certs}\n"))
    assert s.listen == "0.0.0.0:50051" and s.http_listen == "127.0.0.1:8000"
    assert s.storage_path == tmp_path / "storage" and s.cert_path == tmp_path / "storage" / "certs"
    assert s.allow_shared_node_cert is False and s.strategy == "binpack"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mode: conductor\nconductor:\n  listen: nope\n", "c.yaml:3: conductor.listen: expected HOST:PORT"),
        ("mode: conductor\nconductor:\n  lisen: 1\n", "c.yaml:3: conductor.lisen: unknown field"),
        ("mode: conductor\nconductor:\n  tls: {allow_shared_node_cert: 3}\n", "conductor.tls.allow_shared_node_cert: expected bool"),
        ("mode: conductor\nconductor:\n  scheduler: {strategy: random}\n", "conductor.scheduler.strategy: expected one of"),
        ("mode: conductor\nconductor: [1]\n", "conductor: expected a mapping"),
        ("mode: conductor\nconductor: {\n", "invalid YAML"),
    ],
)
def test_conductor_config_errors_are_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        load_conductor_settings(_write(tmp_path, text))
    assert len(err.value.lines()) == 1 and expected in err.value.lines()[0], err.value.lines()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mode: node\nnode: {conductor_addr: 'x:1'}\n", "node: missing required field 'node_id'"),
        ("mode: node\nnode:\n  node_id: a\n  heartbeat_sec: 0\n", "c.yaml:4: node.heartbeat_sec: must be >= 0.05"),
        ("mode: node\nnode:\n  node_id: a\n  capacities_total: {A: many}\n", "node.capacities_total.A: expected a number"),
        ("mode: node\nnode:\n  node_id: a\n  groups: gpu\n", "node.groups: expected a list"),
        ("mode: node\nnode:\n  node_id: a\n  conductor_addr: host\n", "node.conductor_addr: expected HOST:PORT"),
        ("mode: node\nnode:\n  node_id: a\n  tls: {ca: x}\n", "node.tls.ca: unknown field"),
    ],
)
def test_node_config_errors_are_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        load_node_settings(_write(tmp_path, text))
    assert len(err.value.lines()) == 1 and expected in err.value.lines()[0], err.value.lines()


def test_seed_node_config_loads(tmp_path: Path) -> None:
    s = load_node_settings(_write(tmp_path, (REPO / "examples/conductor/node.yaml").read_text()))
    assert s.node_id == "node-1" and s.groups == ("gpu-1",) and s.capacities_total == {"Analytic1": 10.0, "A": 4.0}
    assert s.ca_file == tmp_path / "storage/certs/ca.pem" and s.advertise_address == "127.0.0.1"


@pytest.mark.parametrize(
    ("args", "text", "expected"),
    [
        (["--config", "c.yaml"], "mode: orchestra\n", "mode: expected 'conductor' or 'node'"),
        (["conductor", "-c", "c.yaml"], "mode: node\nnode: {node_id: a}\n", "needs mode: conductor"),
        (["node", "-c", "c.yaml"], "mode: node\nnode: {node_id: a, port: 1}\n", "node.port: unknown field"),
        (["conductor", "-c", "missing.yaml"], None, "cannot read config file"),
        (["--config", "c.yaml", "--log-level", "LOUD"], "mode: conductor\n", "--log-level LOUD: expected one of"),
    ],
)
def test_bad_config_from_the_command_line_exits_2(tmp_path: Path, args: list[str], text: str | None, expected: str) -> None:
    if text is not None:
        _write(tmp_path, text)
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done
    assert len(done.stderr.strip().splitlines()) == 1 and expected in done.stderr, done.stderr


# ---------------------------------------------------------------- store
def test_store_survives_reopen_and_epochs_only_grow(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.put_deployment("web", {"name": "web", "replicas": 1}, "h1")
    store.put_job(JobRow("web-0", "web", 0, node_id="n1", epoch=store.next_epoch(), status={"state": "running"}))
    store.add_event("created", "web created", deployment_id="web")
    e1 = store.next_epoch()
    store.close()
    again = Store(tmp_path / "c.db")
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.get_deployment("web").spec == {"name": "web", "replicas": 1}  # type: ignore[union-attr]
    job = again.get_job("web-0")
    assert job is not None and job.node_id == "n1" and job.status == {"state": "running"}
    assert again.next_epoch() == e1 + 1
    assert [e.kind for e in again.list_events(deployment_id="web")] == ["created"]
    again.delete_deployment("web")
    assert again.list_jobs() == [] and again.get_deployment("web") is None


def test_store_transaction_rolls_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.put_deployment("x", {}, "h")
        raise RuntimeError
    assert store.get_deployment("x") is None


# ---------------------------------------------------------------- placement
def test_placer_reserves_releases_and_forgets_lost_nodes() -> None:
    p = Placer()
    p.upsert_node("a", groups=("g",), capacities={"A": 10}, schedulable=True)
    p.upsert_node("b", groups=("g",), capacities={"A": 10}, schedulable=False)
    first = p.place("w-0", "w", {"A": 6}, node_group="g")
    assert first.node_id == "a"  # b is not connected
    second = p.place("w-1", "w", {"A": 6}, node_group="g")
    assert second.node_id is None and "A=6" in second.reason
    p.reserve("v-0", "b", {"A": 4}, workload="v")  # restored from the store
    assert p.used("b") == {"A": 4.0}
    assert p.fits("b", {"A": 6}, node_group="g") and not p.fits("b", {"A": 7}, node_group="g")
    assert not p.fits("b", {"A": 1}, node_group="other")
    p.set_schedulable("b", True)
    assert p.place("w-1", "w", {"A": 6}, node_group="g").node_id == "b"
    assert sorted(p.remove_node("a")) == ["w-0"]
    p.release("w-1")
    assert p.used("b") == {"A": 4.0}


# ---------------------------------------------------------------- backoff
@settings(max_examples=200, deadline=None)
@given(low=st.floats(0.01, 5), factor=st.floats(1, 100), attempts=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_backoff_stays_within_bounds_and_resets(low: float, factor: float, attempts: int, seed: int) -> None:
    high = low * factor
    b = Backoff(low, high, rng=random.Random(seed))
    delays = [b.next_delay() for _ in range(attempts + 1)]
    assert all(low <= d <= high + 1e-9 for d in delays)
    assert delays[0] == pytest.approx(low)  # the first retry is quick
    b.reset()
    assert b.next_delay() == pytest.approx(low)


def test_backoff_jitter_spreads_a_fleet() -> None:
    delays = {round(Backoff(0.5, 30, attempts=6, rng=random.Random(i)).next_delay(), 3) for i in range(50)}
    assert len(delays) > 40


# ---------------------------------------------------------------- archives
def test_archives_are_cached_by_digest_and_cannot_escape(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("main.py", "print(1)")
    copy = tmp_path / "copy-of-a.zip"
    copy.write_bytes(archive.read_bytes())
    one = prepare_image(str(archive), tmp_path / "cache")
    two = prepare_image(f"file://{copy}", tmp_path / "cache")
    assert one == two and (one / "main.py").read_text() == "print(1)"
    assert len(list((tmp_path / "cache" / "archives").iterdir())) == 1
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArtifactError, match="escapes"):
        prepare_image(str(evil), tmp_path / "cache")
    with pytest.raises(ArtifactError, match=r"expected a \.zip"):
        prepare_image(str(tmp_path / "x.rar"), tmp_path / "cache")
