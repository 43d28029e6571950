"""Run a conductor: gRPC (mTLS) for nodes and HTTP for people, in one event loop.

On start it creates what is missing (certificates, the API token, the SQLite store),
restores its picture from the store, and writes ``<storage>/conductor.json`` with the
addresses it actually listens on (useful with port 0 in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import uvicorn

from symphony import certs
from symphony.conductor.config import ConductorSettings
from symphony.conductor.controller import Conductor
from symphony.conductor.http_api import create_app, ensure_token
from symphony.conductor.log_store import LogStore
from symphony.conductor.placement import Placer
from symphony.conductor.service import ConductorService
from symphony.conductor.store import Store
from symphony.errors import OperationFailed
from symphony.proto import protocol_pb2_grpc as pb_grpc

log = logging.getLogger("symphony.conductor")

LOST_CHECK_SEC = 0.25
GRPC_OPTIONS = [
    ("grpc.so_reuseport", 0),  # a second conductor on the same port must fail, not share it
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the conductor owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _bind_http(listen: str) -> socket.socket:
    host, port = _split(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OperationFailed(f"conductor.http.listen {listen}: cannot listen: {exc.strerror or exc}") from exc
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _server_credentials(cert_path: Path) -> grpc.ServerCredentials:
    paths = certs.CertPaths(cert_path)
    return grpc.ssl_server_credentials(
        [(paths.server_key.read_bytes(), paths.server_cert.read_bytes())],
        root_certificates=paths.ca_cert.read_bytes(),
        require_client_auth=True,
    )


async def serve(settings: ConductorSettings, *, stop: asyncio.Event | None = None) -> None:
    for path in certs.ensure_conductor_certs(settings.cert_path, sans=(*certs.DEFAULT_SANS, *settings.server_sans)):
        log.info("created %s", path)
    token = ensure_token(settings.storage_path)
    store = Store(settings.storage_path / "conductor.db")
    logs = LogStore(settings.storage_path / "logs", max_bytes=settings.logs_max_bytes, backups=settings.logs_backups)
    conductor = Conductor(store, Placer(strategy=settings.strategy), startup_grace_sec=settings.startup_grace_sec,
                          log_store=logs)
    conductor.restore()

    server = grpc.aio.server(options=GRPC_OPTIONS)
    pb_grpc.add_ConductorServiceServicer_to_server(
        ConductorService(conductor, allow_shared_node_cert=settings.allow_shared_node_cert), server
    )
    try:
        grpc_port = server.add_secure_port(settings.listen, _server_credentials(settings.cert_path))
    except RuntimeError as exc:
        raise OperationFailed(f"conductor.listen {settings.listen}: cannot listen ({exc})") from exc
    if grpc_port == 0:
        raise OperationFailed(f"conductor.listen {settings.listen}: cannot listen (address in use?)")
    http_sock = _bind_http(settings.http_listen)
    await server.start()

    app = create_app(conductor, token=token, secure_cookie=settings.http_tls)
    # TLS with the server certificate the nodes check, so clients trust the same ca.pem
    paths = certs.CertPaths(settings.cert_path)
    # timeout_graceful_shutdown: an open (followed) log stream must not hold up shutdown
    uv = _Uvicorn(uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1,
        ssl_certfile=str(paths.server_cert) if settings.http_tls else None,
        ssl_keyfile=str(paths.server_key) if settings.http_tls else None,
    ))
    grpc_host, _ = _split(settings.listen)
    http_host, http_port = http_sock.getsockname()[:2]
    shown = "127.0.0.1" if http_host in ("0.0.0.0", "::") else http_host
    http_url = f"{'https' if settings.http_tls else 'http'}://{shown}:{http_port}"
    info = {
        "pid": os.getpid(),
        "grpc": f"{grpc_host}:{grpc_port}",
        "http": http_url,
        "ca_file": str(certs.CertPaths(settings.cert_path).ca_cert),
        "token_file": str(settings.storage_path / "api-token"),
    }
    (settings.storage_path / "conductor.json").write_text(json.dumps(info, indent=2))
    print(f"symphony conductor: gRPC (mTLS) on {grpc_host}:{grpc_port}, HTTP on {http_url}", flush=True)
    print(f"symphony conductor: UI {http_url}/ui?token={token}", flush=True)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(uv.serve(sockets=[http_sock]))
    lost_task = asyncio.create_task(_watch_lost(conductor))
    try:
        done, _ = await asyncio.wait(
            [asyncio.create_task(stop.wait()), http_task, lost_task], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not http_task and task is not lost_task:
                continue
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        uv.should_exit = True
        lost_task.cancel()
        for session in conductor.registry.live():
            session.close()
        await server.stop(grace=1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, 5)
        store.close()
        log.info("conductor stopped")


async def _watch_lost(conductor: Conductor) -> None:
    while True:
        await asyncio.sleep(LOST_CHECK_SEC)
        try:
            conductor.check_lost()
        except Exception:
            log.exception("checking for lost nodes")


def run(settings: ConductorSettings) -> None:
    asyncio.run(serve(settings))
