"""The gRPC side: ``ConductorService.Connect``, one bidirectional stream per node.

Identity comes from the TLS layer, not from what a node says: the client
certificate's subject CN must equal the id in the node's hello (the seed's shared
certificate may claim any id only when ``allow_shared_node_cert`` is on).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator

import grpc

from symphony.certs import SHARED_NODE_CN
from symphony.conductor.controller import Conductor
from symphony.conductor.registry import NodeSession
from symphony.proto import protocol_pb2 as pb
from symphony.proto import protocol_pb2_grpc as pb_grpc

log = logging.getLogger("symphony.conductor.grpc")

HELLO_TIMEOUT_SEC = 10.0
NODE_ID = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?")


def peer_common_name(context: grpc.aio.ServicerContext) -> str:
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else ""


class ConductorService(pb_grpc.ConductorServiceServicer):
    def __init__(self, conductor: Conductor, *, allow_shared_node_cert: bool = False) -> None:
        self.conductor = conductor
        self.allow_shared = allow_shared_node_cert

    async def Connect(
        self, request_iterator: AsyncIterator[pb.NodeToConductor], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConductorToNode]:
        cn = peer_common_name(context)
        if not cn:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a client certificate is required")
        try:
            first = await asyncio.wait_for(anext(aiter(request_iterator)), HELLO_TIMEOUT_SEC)
        except (TimeoutError, StopAsyncIteration):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected a NodeHello first")
        if first.WhichOneof("msg") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a NodeHello")
        hello = first.hello
        node_id = hello.node_id
        if not NODE_ID.fullmatch(node_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid node id {node_id!r}")
        if node_id != cn and not (cn == SHARED_NODE_CN and self.allow_shared):
            log.warning("refused %s: certificate CN %r may not claim node id %r", context.peer(), cn, node_id)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"certificate subject {cn!r} may not claim node id {node_id!r}",
            )
        session = NodeSession(node_id=node_id, hello=hello, peer=context.peer())
        other = self.conductor.node_connected(session)
        if other is not None:
            log.warning("refused a second stream for node %s from %s (live from %s)", node_id, session.peer, other.peer)
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS, f"node {node_id} is already connected from {other.peer}"
            )
        log.info("node %s connected from %s", node_id, session.peer)
        reader = asyncio.create_task(self._read(session, request_iterator))
        try:
            while True:
                msg = await session.outbox.get()
                if msg is None:
                    break
                yield msg
        finally:
            reader.cancel()
            self.conductor.node_disconnected(session)
            log.info("node %s stream closed", node_id)

    async def _read(self, session: NodeSession, requests: AsyncIterator[pb.NodeToConductor]) -> None:
        c = self.conductor
        try:
            async for msg in requests:
                session.last_seen = time.monotonic()
                kind = msg.WhichOneof("msg")
                try:
                    if kind == "heartbeat":
                        c.on_heartbeat(session, msg.heartbeat)
                    elif kind == "deployment_status_list":
                        c.on_status(session, msg.deployment_status_list)
                    elif kind == "deployment_logs":
                        c.on_logs(session, msg.deployment_logs)
                    elif kind == "ack":
                        c.on_ack(session, msg.ack)
                    elif kind == "exec_result":
                        c.on_exec_result(session, msg.exec_result)
                    elif kind == "hello":
                        log.warning("node %s sent a second hello; ignored", session.node_id)
                except Exception:  # one bad message must not end the stream
                    log.exception("handling %s from %s", kind, session.node_id)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            session.close()
