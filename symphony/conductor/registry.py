"""Connected nodes: one session per live gRPC stream, health from heartbeats.

Memory only — what must survive a restart (a node's identity, groups, capacities)
goes to the store. Heartbeats are kept as the received protobuf message and turned
into JSON only when someone asks (``GET /nodes``), so 1,000 nodes at 1 s cost little.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict

from symphony.proto import protocol_pb2 as pb

_conn_ids = itertools.count(1)


@dataclass
class NodeSession:
    """One accepted stream. ``outbox`` feeds the stream's writer."""

    node_id: str
    hello: pb.NodeHello
    peer: str = ""
    conn_id: int = field(default_factory=lambda: next(_conn_ids))
    outbox: asyncio.Queue[pb.ConductorToNode | None] = field(default_factory=asyncio.Queue)
    last_seen: float = field(default_factory=time.monotonic)
    last_heartbeat: pb.Heartbeat | None = None
    connected_at: float = field(default_factory=time.time)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    closed: bool = False

    @property
    def heartbeat_sec(self) -> float:
        return self.hello.heartbeat_sec or 3.0

    @property
    def lost_after(self) -> float:
        return 3.0 * self.heartbeat_sec

    def silent_for(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.last_seen

    def send(self, msg: pb.ConductorToNode) -> None:
        if self.closed:
            return
        msg.seq = next(self.seq)
        self.outbox.put_nowait(msg)

    def close(self) -> None:
        """Ask the stream's writer to end the call."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(None)


def hello_info(hello: pb.NodeHello) -> dict[str, Any]:
    """The static part of a node, as stored and shown by the API."""
    return {
        "node_id": hello.node_id,
        "groups": list(hello.groups),
        "capacities_total": dict(hello.capacities_total),
        "heartbeat_sec": hello.heartbeat_sec or 3.0,
        "advertise_address": hello.advertise_address,
        "hostname": hello.hostname,
        "agent_version": hello.agent_version,
        "cpu": MessageToDict(hello.cpu, preserving_proto_field_name=True),
        "memory": MessageToDict(hello.memory, preserving_proto_field_name=True),
        "storage_mounts": [MessageToDict(m, preserving_proto_field_name=True) for m in hello.storage_mounts],
        "gpus": [MessageToDict(g, preserving_proto_field_name=True) for g in hello.gpus],
    }


def heartbeat_info(hb: pb.Heartbeat | None) -> dict[str, Any] | None:
    if hb is None:
        return None
    return MessageToDict(hb, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


class Registry:
    """node id → live session. A second stream for a live id is refused, not swapped in."""

    def __init__(self) -> None:
        self.sessions: dict[str, NodeSession] = {}

    def get(self, node_id: str) -> NodeSession | None:
        return self.sessions.get(node_id)

    def admit(self, session: NodeSession) -> NodeSession | None:
        """Register ``session``; return the live session it collides with, if any.

        An old session that has been silent for longer than its lost-after window is
        dead in all but name (half-open TCP): it is closed and replaced.
        """
        old = self.sessions.get(session.node_id)
        if old is not None and not old.closed and old.silent_for() < old.lost_after:
            return old
        if old is not None:
            old.close()
        self.sessions[session.node_id] = session
        return None

    def remove(self, session: NodeSession) -> bool:
        """Forget ``session`` if it is still the registered one; True when it was."""
        if self.sessions.get(session.node_id) is session:
            del self.sessions[session.node_id]
            return True
        return False

    def live(self) -> list[NodeSession]:
        return [s for s in self.sessions.values() if not s.closed]
