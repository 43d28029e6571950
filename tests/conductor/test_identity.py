"""Who may connect: mTLS with the conductor's CA, node id = certificate subject, one stream per id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from symphony import certs
from symphony.proto import protocol_pb2 as pb
from symphony.proto import protocol_pb2_grpc as pb_grpc

from .conftest import Cluster, wait_for

pytestmark = pytest.mark.timeout(90)


async def _hello(port: int, ca: Path, cert: Path | None, key: Path | None, node_id: str) -> str:
    """Connect, say hello as ``node_id``; return the first reply's kind or the error code name."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        call = pb_grpc.ConductorServiceStub(channel).Connect()
        try:
            await call.write(pb.NodeToConductor(hello=pb.NodeHello(node_id=node_id, heartbeat_sec=0.5,
                                                                   groups=["g"], capacities_total={"A": 1})))
            reply = await asyncio.wait_for(call.read(), 10)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        if reply is grpc.aio.EOF:
            return (await call.code()).name
        call.cancel()
        return reply.WhichOneof("msg")


def hello(port: int, ca: Path, cert: Path | None, key: Path | None, node_id: str) -> str:
    return asyncio.run(_hello(port, ca, cert, key, node_id))


def test_foreign_ca_spoofed_id_and_shared_cert_are_refused(cluster_factory, tmp_path: Path) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    ca = c.certs / "ca.pem"
    own = tmp_path / "own"
    certs.issue_node(c.certs, "node-a", own)

    # a certificate from another CA: the TLS handshake fails
    other_ca = tmp_path / "other-ca"
    certs.ensure_conductor_certs(other_ca)
    certs.issue_node(other_ca, "node-a", tmp_path / "foreign")
    assert hello(c.grpc_port, ca, tmp_path / "foreign/node-a.pem", tmp_path / "foreign/node-a.key", "node-a") == "UNAVAILABLE"
    # no client certificate at all
    assert hello(c.grpc_port, ca, None, None, "node-a") == "UNAVAILABLE"
    # node-a's certificate claiming node-b
    assert hello(c.grpc_port, ca, own / "node-a.pem", own / "node-a.key", "node-b") == "PERMISSION_DENIED"
    # the seed's shared certificate is off by default
    shared = (c.certs / "node-client.pem", c.certs / "node-client.key")
    assert hello(c.grpc_port, ca, *shared, "node-z") == "PERMISSION_DENIED"
    # its own id is fine
    assert hello(c.grpc_port, ca, own / "node-a.pem", own / "node-a.key", "node-a") == "welcome"
    nodes = c.api_nodes()
    assert "node-b" not in nodes and "node-z" not in nodes

    # a real node agent with a foreign certificate never gets in, and keeps retrying
    certs.issue_node(other_ca, "intruder", tmp_path / "foreign-intruder")
    intruder = c.start_node("intruder", wait=False, cert_dir=tmp_path / "foreign-intruder")
    wait_for(lambda: intruder.output().count("reconnecting") >= 2, timeout=20, what="the node to retry")
    assert intruder.alive()
    assert "intruder" not in c.api_nodes()


def test_shared_cert_allowed_when_configured(cluster_factory) -> None:
    c: Cluster = cluster_factory(allow_shared=True)
    c.start_conductor(seed_entry=True)
    shared = (c.certs / "node-client.pem", c.certs / "node-client.key")
    assert hello(c.grpc_port, c.certs / "ca.pem", *shared, "seed-node") == "welcome"


def test_duplicate_connection_does_not_evict_the_live_one(cluster_factory) -> None:
    c: Cluster = cluster_factory()
    c.start_conductor()
    c.start_node("n1")
    before = c.api_nodes()["n1"]
    cert_dir = c.root / "certs-n1"
    assert hello(c.grpc_port, c.certs / "ca.pem", cert_dir / "n1.pem", cert_dir / "n1.key", "n1") == "ALREADY_EXISTS"
    after = c.wait_node("n1", "ready")
    assert after["connected_at"] == before["connected_at"]
    wait_for(lambda: (c.api_nodes()["n1"]["last_heartbeat_age"] or 9) < 1.0, what="heartbeats still flowing")
