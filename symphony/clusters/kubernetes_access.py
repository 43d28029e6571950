"""Reaching into Pods through the API: exec, a shell, tar-over-exec copies, service URLs.

All of it goes through the API server's exec and port-forward websockets (the
official client's ``kubernetes.stream``); nothing shells out to kubectl.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import select
import shlex
import socket
import sys
import tarfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from symphony.clusters import kubernetes_render as render
from symphony.errors import OperationFailed, UserError
from symphony.names import resolve_service

if TYPE_CHECKING:
    from symphony.clusters.kubernetes import KubernetesCluster
    from symphony.clusters.kubernetes_api import KubeApi

STDOUT, STDERR = 1, 2
REMOTE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[a-z0-9]([-a-z0-9]*[a-z0-9])?)?")
SHELL = "command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l"


def open_exec(
    api: KubeApi, pod: str, container: str, argv: list[str], *, stdin: bool, tty: bool
) -> Any:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    try:
        return stream(
            api.core.connect_get_namespaced_pod_exec,
            pod,
            api.namespace,
            container=container,
            command=argv,
            stdin=stdin,
            stdout=True,
            stderr=True,
            tty=tty,
            _preload_content=False,
            binary=True,
        )
    except ApiException as exc:
        raise OperationFailed(
            f"cluster {api.spec.name!r}: cannot exec in {pod}/{container}: {exc.reason or exc.status}"
        ) from None


def pump(client: Any, *, stdout: Any, stderr: Any) -> int:
    """Copy the exec's output until it ends; its exit code."""
    while client.is_open():
        client.update(timeout=1)
        for channel, out in ((STDOUT, stdout), (STDERR, stderr)):
            data = client.read_channel(channel)
            if data:
                out.write(data)
                out.flush()
    for channel, out in ((STDOUT, stdout), (STDERR, stderr)):
        data = client.read_channel(channel)
        if data:
            out.write(data)
    code = client.returncode
    return int(code) if code is not None else 1


def run_exec(api: KubeApi, pod: str, container: str, argv: list[str]) -> int:
    client = open_exec(api, pod, container, argv, stdin=False, tty=False)
    return pump(client, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)


def capture(api: KubeApi, pod: str, container: str, argv: list[str]) -> tuple[int, bytes, bytes]:
    client = open_exec(api, pod, container, argv, stdin=False, tty=False)
    out, err = io.BytesIO(), io.BytesIO()
    code = pump(client, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def attach_shell(api: KubeApi, pod: str, container: str) -> int:
    """An interactive shell in the container, the user's terminal in raw mode."""
    import termios
    import tty

    if not sys.stdin.isatty():
        raise UserError("ssh needs a terminal; use `symphony exec PROCESS -- CMD` from scripts")
    client = open_exec(api, pod, container, ["/bin/sh", "-c", SHELL], stdin=True, tty=True)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        columns, lines = os.get_terminal_size(fd)
        client.write_channel(4, f'{{"Width": {columns}, "Height": {lines}}}'.encode())
        while client.is_open():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                data = os.read(fd, 4096)
                if data:
                    client.write_stdin(data)
            client.update(timeout=0)
            for channel in (STDOUT, STDERR):
                data = client.read_channel(channel)
                if data:
                    os.write(sys.stdout.fileno(), data)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    code = client.returncode
    return int(code) if code is not None else 0


# --- scp: tar over exec ------------------------------------------------------------
def split_remote(path: str) -> tuple[str, str] | None:
    """``[group/]process:/path`` → (key, path); None for a local path."""
    head, sep, tail = path.partition(":")
    if not sep or not REMOTE.fullmatch(head):
        return None
    return head, tail or "."


def copy(cluster: KubernetesCluster, source: str, destination: str, *, experiment: str) -> None:
    remote_src, remote_dst = split_remote(source), split_remote(destination)
    if bool(remote_src) == bool(remote_dst):
        raise UserError(
            "scp: exactly one side must be a process path ([group/]process:/path), e.g. "
            "symphony scp learner:/tmp/out.txt ./out.txt"
        )
    if remote_dst is not None:
        key, path = remote_dst
        pod, container = cluster.pod_of(experiment, key)
        upload(cluster.api, pod["metadata"]["name"], container, Path(source), path)
    else:
        assert remote_src is not None
        key, path = remote_src
        pod, container = cluster.pod_of(experiment, key)
        download(cluster.api, pod["metadata"]["name"], container, path, Path(destination))


def upload(api: KubeApi, pod: str, container: str, local: Path, remote: str) -> None:
    """``local`` (file or folder) becomes ``remote`` in the container."""
    if not local.exists():
        raise UserError(f"scp: {local}: no such file or folder")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(local), arcname=posixpath.basename(remote.rstrip("/")) or local.name)
    data = buffer.getvalue()
    folder = posixpath.dirname(remote.rstrip("/")) or "."
    # The exec websocket (v4) cannot half-close stdin: read exactly the archive's size.
    script = (
        f"mkdir -p {shlex.quote(folder)} && head -c {len(data)} | tar xf - -C {shlex.quote(folder)}"
    )
    client = open_exec(api, pod, container, ["/bin/sh", "-c", script], stdin=True, tty=False)
    for start in range(0, len(data), 64 * 1024):
        client.write_stdin(data[start : start + 64 * 1024])
    err = io.BytesIO()
    code = pump(client, stdout=io.BytesIO(), stderr=err)
    if code != 0:
        raise OperationFailed(
            f"scp: copying to {pod}:{remote} failed: {_first_line(err.getvalue())}"
        )


def download(api: KubeApi, pod: str, container: str, remote: str, local: Path) -> None:
    """``remote`` in the container becomes ``local`` (into it, when it is a folder)."""
    remote = remote.rstrip("/") or "/"
    folder, base = posixpath.split(remote)
    code, out, err = capture(
        api, pod, container, ["tar", "cf", "-", "-C", folder or "/", base or "."]
    )
    if code != 0:
        raise OperationFailed(f"scp: copying {pod}:{remote} failed: {_first_line(err)}")
    target = local / base if local.is_dir() else local
    with tarfile.open(fileobj=io.BytesIO(out), mode="r") as tar:
        for member in tar.getmembers():
            relative = member.name.split("/", 1)[1] if "/" in member.name else ""
            member.name = str(Path(target.name) / relative) if relative else target.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tar.extractall(target.parent, filter="data")


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[-1] if text else "no message"


# --- visit -------------------------------------------------------------------------
def service_url(cluster: KubernetesCluster, experiment: str, service: str) -> str:
    api = cluster.api
    endpoints = {
        s["metadata"]["labels"].get(render.ENDPOINT_LABEL, ""): s
        for s in cluster._live("Service", [experiment])
    }
    found = endpoints[resolve_service(service, endpoints.keys() - {""}, experiment=experiment)]
    spec = found.get("spec") or {}
    port_spec = (spec.get("ports") or [{}])[0]
    port = int(port_spec.get("port", 80))
    if spec.get("type") == "LoadBalancer":
        for ingress in ((found.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = ingress.get("hostname") or ingress.get("ip")
            if host:
                return f"http://{host}:{port}"
    if spec.get("type") == "NodePort" and port_spec.get("nodePort"):
        address = node_address(api.nodes())
        if address:
            return f"http://{address}:{port_spec['nodePort']}"
    unit = (spec.get("selector") or {}).get(render.PROCESS_LABEL, "")
    pods = [
        p
        for p in cluster._live("Pod", [experiment])
        if p["metadata"]["labels"].get(render.PROCESS_LABEL) == unit
    ]
    if not pods:
        raise OperationFailed(f"service {service!r} of experiment {experiment!r}: no Pod runs it")
    forward = PortForward(api, pods[0]["metadata"]["name"], int(port_spec.get("targetPort", port)))
    cluster._forwards.append(forward)
    return f"http://127.0.0.1:{forward.local_port}"


def node_address(nodes: list[dict[str, Any]]) -> str | None:
    for kind in ("ExternalIP", "ExternalDNS", "InternalIP"):
        for node in nodes:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == kind:
                    return str(address["address"])
    return None


class PortForward:
    """A listener on 127.0.0.1 whose connections go to a Pod's port through the API."""

    def __init__(self, api: KubeApi, pod: str, port: int):
        self.api, self.pod, self.port = api, pod, port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.local_port = self.server.getsockname()[1]
        self.alive = True
        threading.Thread(target=self._serve, daemon=True, name=f"forward-{pod}").start()

    def _serve(self) -> None:
        try:
            while self.alive:
                conn, _ = self.server.accept()
                threading.Thread(target=self._relay, args=(conn,), daemon=True).start()
        except OSError:
            self.alive = False

    def _relay(self, conn: socket.socket) -> None:
        from kubernetes.stream import portforward

        forward = portforward(
            self.api.core.connect_get_namespaced_pod_portforward,
            self.pod,
            self.api.namespace,
            ports=str(self.port),
        )
        remote = forward.socket(self.port)
        remote.setblocking(True)
        try:
            sockets = [conn, remote]
            while True:
                ready, _, _ = select.select(sockets, [], [], 30)
                if not ready:
                    continue
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (remote if s is conn else conn).sendall(data)
        except OSError:
            return
        finally:
            conn.close()
            forward.close()

    def close(self) -> None:
        self.alive = False
        self.server.close()
