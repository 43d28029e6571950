"""The node's way out: an mTLS channel to the conductor and a reconnect backoff.

Backoff is "full jitter" (a random wait between the floor and an exponentially
growing ceiling) so that a fleet of nodes that lost the conductor together does not
come back in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from symphony.errors import UserError
from symphony.node.config import NodeSettings

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # reconnects are ours (Backoff below), not the channel's
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass
class Backoff:
    """Exponential backoff with full jitter: ``uniform(low, min(high, low * 2**n))``."""

    low: float = 0.5
    high: float = 5.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.high, self.low * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return self.rng.uniform(self.low, max(self.low, ceiling))

    def reset(self) -> None:
        self.attempts = 0


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the node's {what}: {exc.strerror or exc}") from exc


def credentials(settings: NodeSettings) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.ca_file, "CA certificate (node.tls.ca_file)"),
        private_key=_read(settings.key_file, "key (node.tls.key_file)"),
        certificate_chain=_read(settings.cert_file, "certificate (node.tls.cert_file)"),
    )


def open_channel(settings: NodeSettings, creds: grpc.ChannelCredentials) -> grpc.aio.Channel:
    options: list[tuple[str, str | int]] = list(CHANNEL_OPTIONS)
    if settings.server_name:
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    return grpc.aio.secure_channel(settings.conductor_addr, creds, options=options)
