"""A small Kubernetes API emulator over real HTTP, for the parts Symphony uses.

No API server can be installed on the CI machines, so the adapter's tests talk
to this instead, through the official ``kubernetes`` client and a generated
kubeconfig. It serves, on 127.0.0.1 in a thread:

- Pods and Services: list by label selector, get, server-side apply (PATCH
  ``application/apply-patch+yaml`` with ``fieldManager``, ``dryRun=All``),
  delete; Pods are immutable once created (422, as on a real API server);
- Pod logs (``tailLines``, ``sinceSeconds``, ``follow``), events (field selector),
  nodes;
- exec and port-forward over websockets (channel protocol v4);
- bearer-token auth, missing namespaces (404) and forbidden namespaces (403).

A fake kubelet gives it life: a Pod that fits the one emulated node is
"scheduled" and each container's command runs as a local subprocess, with the
Pod's environment, restarted as its restartPolicy says (CrashLoopBackOff after
two restarts); a Pod that does not fit stays Pending with the scheduler's
FailedScheduling event. Tests can also set container states by hand.

What it does not do: field ownership conflicts between managers, watches,
admission, and any kind Symphony does not use.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

TOKEN = "emulator-token"
NODE = "emu-node-1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PLURALS = {"pods": "Pod", "services": "Service"}
QUANTITY = re.compile(r"^([0-9.]+)(m|k|Ki|M|Mi|G|Gi)?$")
SUFFIX = {"m": 0.001, "k": 1e3, "Ki": 1024, "M": 1e6, "Mi": 1024**2, "G": 1e9, "Gi": 1024**3}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_quantity(text: str) -> float:
    match = QUANTITY.match(str(text))
    if not match:
        raise ValueError(f"bad quantity {text!r}")
    return float(match.group(1)) * SUFFIX.get(match.group(2) or "", 1)


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality, inequality, set-based (in / notin) and existence requirements."""
    for requirement in re.findall(r"[^,(]+(?:\([^)]*\))?", selector or ""):
        requirement = requirement.strip()
        if not requirement:
            continue
        set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", requirement)
        if set_match:
            key, op, values = set_match.groups()
            options = {v.strip() for v in values.split(",")}
            if (labels.get(key) in options) != (op == "in"):
                return False
        elif "!=" in requirement:
            key, value = requirement.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in requirement:
            key, value = re.split("==?", requirement, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif requirement.startswith("!"):
            if requirement[1:] in labels:
                return False
        elif requirement not in labels:
            return False
    return True


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


class Container:
    """One container's run under the fake kubelet: a local subprocess and its log."""

    def __init__(self, emulator: Emulator, namespace: str, pod: str, spec: dict[str, Any]):
        self.emulator, self.namespace, self.pod, self.spec = emulator, namespace, pod, spec
        self.name = spec["name"]
        self.lines: list[tuple[float, bytes]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.finished = threading.Event()  # no more output will come (pod gone or done for good)
        self.changed = threading.Condition()

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
        env.update({e["name"]: e.get("value", "") for e in self.spec.get("env") or []})
        env["HOSTNAME"] = self.pod
        return env

    def append(self, line: bytes) -> None:
        with self.changed:
            self.lines.append((time.time(), line))
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.finished.set()
            self.changed.notify_all()


class Emulator:
    def __init__(self, *, kubelet: bool = True, namespaces: tuple[str, ...] = ("default",)):
        self.kubelet = kubelet
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name)
        self.events: list[dict[str, Any]] = []
        self.namespaces = set(namespaces)
        self.forbidden: set[str] = set()
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, dry run)
        self.node_labels = {"kubernetes.io/hostname": NODE, "symphony/group": "cpu"}
        self.allocatable = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        self.containers: dict[tuple[str, str, str], Container] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="kube-emulator-"))
        self.version = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- test controls --------------------------------------------------------
    def kubeconfig(
        self, path: Path, *, namespace: str = "default", context: str = "emulator"
    ) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": TOKEN}}],
                    "contexts": [
                        {
                            "name": context,
                            "context": {
                                "cluster": "emulator",
                                "user": "tester",
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": context,
                }
            )
        )
        return path

    def writes(self) -> list[tuple[str, str]]:
        """Requests that changed something (dry runs excluded)."""
        return [
            (m, p)
            for m, p, dry in self.requests
            if m in ("PATCH", "POST", "PUT", "DELETE") and not dry
        ]

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in self.objects.items()
                if k == "Pod" and ns == namespace
            ]

    def services(self, namespace: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in self.objects.items()
                if k == "Service" and ns == namespace
            ]

    def set_container(
        self,
        namespace: str,
        pod: str,
        container: str,
        status: dict[str, Any],
        *,
        phase: str | None = None,
    ) -> None:
        """Overwrite one container's status (name added), e.g. a CrashLoopBackOff waiting state."""
        with self.lock:
            obj = self.objects[("Pod", namespace, pod)]
            statuses = [
                c for c in obj["status"].get("containerStatuses", []) if c["name"] != container
            ]
            statuses.append({"name": container, "image": "emulated", **status})
            obj["status"]["containerStatuses"] = statuses
            if phase:
                obj["status"]["phase"] = phase
            obj["spec"].setdefault("nodeName", NODE)

    def set_ingress(self, namespace: str, service: str, ip: str) -> None:
        with self.lock:
            self.objects[("Service", namespace, service)]["status"] = {
                "loadBalancer": {"ingress": [{"ip": ip}]}
            }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            pods = [key for key in self.objects if key[0] == "Pod"]
        for _, ns, name in pods:
            self._stop_pod(ns, name)

    # --- objects ---------------------------------------------------------------
    def _check_namespace(self, namespace: str, verb: str, plural: str, name: str | None) -> None:
        if namespace in self.forbidden and verb not in ("get", "list"):
            what = f'{plural} "{name}"' if name else plural
            raise ApiError(
                403,
                "Forbidden",
                f'{what} is forbidden: User "tester" cannot {verb} resource "{plural}" '
                f'in API group "" in the namespace "{namespace}"',
            )
        if namespace not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def apply(
        self,
        plural: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        manager: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        kind = PLURALS[plural]
        self._check_namespace(namespace, "patch", plural, name)
        if not manager:
            raise ApiError(400, "BadRequest", "fieldManager is required for apply requests")
        if body.get("kind") != kind or body.get("apiVersion") != "v1":
            raise ApiError(
                400,
                "BadRequest",
                f"expected apiVersion v1 kind {kind}, got {body.get('apiVersion')} {body.get('kind')}",
            )
        meta = body.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
            raise ApiError(
                400, "BadRequest", "the name or namespace of the body does not match the URL"
            )
        with self.lock:
            current = self.objects.get((kind, namespace, name))
            if current is None:
                obj = self._new_object(kind, namespace, copy.deepcopy(body), manager)
            else:
                obj = self._merge(kind, copy.deepcopy(current), body)
            if dry_run:
                return obj
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.objects[(kind, namespace, name)] = obj
        if current is None and kind == "Pod" and self.kubelet:
            self._schedule(namespace, name)
        return copy.deepcopy(obj)

    def _new_object(
        self, kind: str, namespace: str, obj: dict[str, Any], manager: str
    ) -> dict[str, Any]:
        obj["metadata"].update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=now(),
            managedFields=[{"manager": manager, "operation": "Apply", "apiVersion": "v1"}],
        )
        if kind == "Pod":
            for container in obj["spec"].get("containers") or []:
                for quantity in (container.get("resources") or {}).get("requests", {}).values():
                    try:
                        parse_quantity(quantity)
                    except ValueError as exc:
                        raise ApiError(
                            422, "Invalid", f'Pod "{obj["metadata"]["name"]}" is invalid: {exc}'
                        ) from None
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        else:
            spec = obj["spec"]
            spec["clusterIP"] = f"10.96.{len(self.objects) // 250}.{len(self.objects) % 250 + 1}"
            for i, port in enumerate(spec.get("ports") or []):
                if spec.get("type") in ("NodePort", "LoadBalancer"):
                    port.setdefault(
                        "nodePort", 30000 + (hash((namespace, obj["metadata"]["name"], i)) % 2767)
                    )
            obj["status"] = {"loadBalancer": {}}
        return obj

    def _merge(self, kind: str, current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        for field in ("labels", "annotations"):
            if field in meta:
                current["metadata"][field] = dict(meta[field])
        if kind == "Pod":
            if body.get("spec") != {k: v for k, v in current["spec"].items() if k != "nodeName"}:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Pod "{current["metadata"]["name"]}" is invalid: spec: Forbidden: pod updates may not '
                    "change fields other than `spec.containers[*].image`, `spec.activeDeadlineSeconds`, ...",
                )
            return current
        keep = {k: current["spec"][k] for k in ("clusterIP",) if k in current["spec"]}
        current["spec"] = {**copy.deepcopy(body.get("spec") or {}), **keep}
        return current

    def delete(self, plural: str, namespace: str, name: str, *, dry_run: bool) -> dict[str, Any]:
        kind = PLURALS[plural]
        self._check_namespace(namespace, "delete", plural, name)
        with self.lock:
            obj = self.objects.get((kind, namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{plural} "{name}" not found')
            if dry_run:
                return copy.deepcopy(obj)
            del self.objects[(kind, namespace, name)]
        if kind == "Pod":
            self._stop_pod(namespace, name)
        return copy.deepcopy(obj)

    def list(self, plural: str, namespace: str | None, selector: str) -> dict[str, Any]:
        kind = PLURALS.get(plural, plural)
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (k, ns, _), o in sorted(self.objects.items())
                if k == kind
                and ns == namespace
                and selector_matches(selector, o["metadata"].get("labels") or {})
            ]
        return {
            "kind": f"{kind}List",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self.version)},
            "items": items,
        }

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.get((PLURALS[plural], namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{plural} "{name}" not found')
            return copy.deepcopy(obj)

    # --- fake kubelet -----------------------------------------------------------
    def _schedule(self, namespace: str, name: str) -> None:
        with self.lock:
            pod = self.objects[("Pod", namespace, name)]
            reason = self._unschedulable(pod)
            if reason:
                pod["status"]["conditions"] = [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": reason,
                    }
                ]
                self.events.append(
                    {
                        "kind": "Event",
                        "metadata": {
                            "name": f"{name}.{uuid.uuid4().hex[:8]}",
                            "namespace": namespace,
                        },
                        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
                        "reason": "FailedScheduling",
                        "message": reason,
                        "type": "Warning",
                        "lastTimestamp": now(),
                    }
                )
                return
            pod["spec"]["nodeName"] = NODE
            pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            specs = list(pod["spec"]["containers"])
            policy = pod["spec"].get("restartPolicy", "Always")
        for spec in specs:
            container = Container(self, namespace, name, spec)
            self.containers[(namespace, name, spec["name"])] = container
            threading.Thread(target=self._run, args=(container, policy), daemon=True).start()

    def _unschedulable(self, pod: dict[str, Any]) -> str:
        for key, value in (pod["spec"].get("nodeSelector") or {}).items():
            if self.node_labels.get(key) != value:
                return (
                    "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
                )
        wanted: dict[str, float] = {}
        for container in pod["spec"]["containers"]:
            for resource, quantity in (
                (container.get("resources") or {}).get("requests") or {}
            ).items():
                wanted[resource] = wanted.get(resource, 0.0) + parse_quantity(quantity)
        for resource, amount in sorted(wanted.items()):
            if amount > parse_quantity(self.allocatable.get(resource, "0")):
                return f"0/1 nodes are available: 1 Insufficient {resource}."
        return ""

    def _status(
        self, container: Container, status: dict[str, Any], *, phase: str | None = None
    ) -> bool:
        """Set a container's status; False when the Pod is gone."""
        with self.lock:
            pod = self.objects.get(("Pod", container.namespace, container.pod))
            if pod is None:
                return False
            statuses = [
                c for c in pod["status"].get("containerStatuses", []) if c["name"] != container.name
            ]
            statuses.append({"name": container.name, "image": container.spec["image"], **status})
            statuses.sort(key=lambda c: c["name"])
            pod["status"]["containerStatuses"] = statuses
            pod["status"]["phase"] = phase or self._phase(pod)
            return True

    @staticmethod
    def _phase(pod: dict[str, Any]) -> str:
        states = [c.get("state", {}) for c in pod["status"].get("containerStatuses", [])]
        if len(states) < len(pod["spec"]["containers"]) or not all(
            "terminated" in s for s in states
        ):
            return "Running"
        return "Succeeded" if all(s["terminated"]["exitCode"] == 0 for s in states) else "Failed"

    def _run(self, container: Container, policy: str) -> None:
        restarts, last = 0, None
        while True:
            started = now()
            try:
                process = subprocess.Popen(
                    list(container.spec.get("command") or []),
                    env=container.environment(),
                    cwd=self.workdir,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                container.append(f"exec failed: {exc}\n".encode())
                code = 128
            else:
                container.process = process
                base = {"restartCount": restarts, "ready": True, "started": True}
                if last:
                    base["lastState"] = {"terminated": last}
                if not self._status(
                    container, {**base, "state": {"running": {"startedAt": started}}}
                ):
                    process.kill()
                assert process.stdout is not None
                for line in iter(process.stdout.readline, b""):
                    container.append(line)
                code = process.wait()
                if code < 0:
                    code = 128 - code
            done = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now(),
            }
            again = policy == "Always" or (policy == "OnFailure" and code != 0)
            status = {"restartCount": restarts, "ready": False, "state": {"terminated": done}}
            if last:
                status["lastState"] = {"terminated": last}
            if not again:
                self._status(container, status)
                container.close()
                return
            restarts += 1
            last = done
            backoff = min(0.2 * restarts, 1.0)
            if restarts >= 2:
                waiting = {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(backoff * 10)}s restarting failed container={container.name} pod={container.pod}",
                }
                status = {
                    "restartCount": restarts,
                    "ready": False,
                    "state": {"waiting": waiting},
                    "lastState": {"terminated": done},
                }
            if not self._status(container, status):
                container.close()
                return
            time.sleep(backoff)
            with self.lock:
                if ("Pod", container.namespace, container.pod) not in self.objects:
                    container.close()
                    return
            with container.changed:
                container.lines = []  # a new run has a new log, as on a real kubelet

    def _stop_pod(self, namespace: str, name: str) -> None:
        for key, container in list(self.containers.items()):
            if key[:2] == (namespace, name):
                if container.process and container.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(container.process.pid, 9)
                container.close()
                del self.containers[key]

    # --- logs ---------------------------------------------------------------------
    def log_lines(
        self, namespace: str, pod: str, query: dict[str, str]
    ) -> tuple[Container, Iterator[bytes]]:
        obj = self.get("pods", namespace, pod)
        names = [c["name"] for c in obj["spec"]["containers"]]
        name = query.get("container") or (names[0] if len(names) == 1 else "")
        if not name:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {pod}, choose one of: {names}",
            )
        container = self.containers.get((namespace, pod, name))
        if container is None or (not container.lines and container.process is None):
            raise ApiError(
                400,
                "BadRequest",
                f'container "{name}" in pod "{pod}" is waiting to start: ContainerCreating',
            )
        follow = query.get("follow") == "true"
        tail = int(query["tailLines"]) if "tailLines" in query else None
        since = float(query["sinceSeconds"]) if "sinceSeconds" in query else None

        def lines() -> Iterator[bytes]:
            with container.changed:
                history = list(container.lines)
            if since is not None:
                history = [item for item in history if item[0] >= time.time() - since]
            if tail is not None:
                history = history[-tail:] if tail else []
            yield from (line for _, line in history)
            seen = len(container.lines)
            while follow:
                with container.changed:
                    while len(container.lines) <= seen and not container.finished.is_set():
                        container.changed.wait(0.5)
                    fresh = container.lines[seen:]
                    seen = len(container.lines)
                    finished = container.finished.is_set()
                yield from (line for _, line in fresh)
                if finished and not fresh:
                    return

        return container, lines()

    # --- HTTP ------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_PATCH(self) -> None:
                self._dispatch("PATCH")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                emulator.requests.append((method, url.path, query.get("dryRun") == "All"))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    self._route(method, url.path, query, body, parse_qs(url.query))
                except ApiError as exc:
                    self._send_json(exc.code, exc.body())

            def _route(
                self,
                method: str,
                path: str,
                query: dict[str, str],
                body: bytes,
                multi: dict[str, list[str]],
            ) -> None:
                parts = path.strip("/").split("/")
                if parts[:2] != ["api", "v1"]:
                    raise ApiError(
                        404,
                        "NotFound",
                        f"the server could not find the requested resource ({path})",
                    )
                rest = parts[2:]
                if rest == ["nodes"] and method == "GET":
                    node = {
                        "kind": "Node",
                        "metadata": {"name": NODE, "labels": emulator.node_labels},
                        "status": {
                            "allocatable": emulator.allocatable,
                            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                        },
                    }
                    return self._send_json(200, {"kind": "NodeList", "items": [node]})
                if len(rest) < 3 or rest[0] != "namespaces":
                    raise ApiError(
                        404,
                        "NotFound",
                        f"the server could not find the requested resource ({path})",
                    )
                namespace, plural, tail = rest[1], rest[2], rest[3:]
                if plural == "events" and not tail and method == "GET":
                    fields = dict(
                        f.split("=", 1)
                        for f in query.get("fieldSelector", "").split(",")
                        if "=" in f
                    )
                    items = [
                        e
                        for e in emulator.events
                        if e["metadata"]["namespace"] == namespace
                        and all(
                            e["involvedObject"].get(k.split(".", 1)[1]) == v
                            for k, v in fields.items()
                            if k.startswith("involvedObject.")
                        )
                    ]
                    return self._send_json(200, {"kind": "EventList", "items": items})
                if plural not in PLURALS:
                    raise ApiError(
                        404,
                        "NotFound",
                        f"the server could not find the requested resource ({path})",
                    )
                dry_run = query.get("dryRun") == "All"
                if not tail:
                    if method != "GET":
                        raise ApiError(405, "MethodNotAllowed", f"{method} {path}")
                    emulator._check_namespace(namespace, "list", plural, None)
                    return self._send_json(
                        200, emulator.list(plural, namespace, query.get("labelSelector", ""))
                    )
                name = tail[0]
                if len(tail) == 1:
                    if method == "GET":
                        return self._send_json(200, emulator.get(plural, namespace, name))
                    if method == "DELETE":
                        return self._send_json(
                            200, emulator.delete(plural, namespace, name, dry_run=dry_run)
                        )
                    if method == "PATCH":
                        if (
                            self.headers.get("Content-Type", "").split(";")[0]
                            != "application/apply-patch+yaml"
                        ):
                            raise ApiError(
                                415, "UnsupportedMediaType", "only server-side apply is emulated"
                            )
                        document = yaml.safe_load(body.decode())
                        obj = emulator.apply(
                            plural,
                            namespace,
                            name,
                            document,
                            manager=query.get("fieldManager"),
                            dry_run=dry_run,
                        )
                        return self._send_json(200, obj)
                if plural == "pods" and tail[1:] == ["log"] and method == "GET":
                    return self._logs(namespace, name, query)
                if plural == "pods" and tail[1:] == ["exec"]:
                    return self._exec(namespace, name, query, multi)
                if plural == "pods" and tail[1:] == ["portforward"]:
                    return self._portforward(namespace, name, query)
                raise ApiError(
                    404, "NotFound", f"the server could not find the requested resource ({path})"
                )

            def _send_json(self, code: int, data: dict[str, Any]) -> None:
                blob = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def _logs(self, namespace: str, pod: str, query: dict[str, str]) -> None:
                _, lines = emulator.log_lines(namespace, pod, query)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for line in lines:
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            # --- websockets (RFC 6455, server side) ---
            def _upgrade(self) -> None:
                if self.headers.get("Upgrade", "").lower() != "websocket":
                    raise ApiError(400, "BadRequest", "Upgrade request required")
                offered = [
                    p.strip()
                    for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")
                    if p.strip()
                ]
                accept = base64.b64encode(
                    hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest()
                ).decode()
                self.send_response(101, "Switching Protocols")
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                protocol = (
                    "v4.channel.k8s.io"
                    if "v4.channel.k8s.io" in offered
                    else (offered[0] if offered else "")
                )
                if protocol:
                    self.send_header("Sec-WebSocket-Protocol", protocol)
                self.end_headers()
                self.close_connection = True
                self.send_lock = threading.Lock()

            def _ws_send(self, payload: bytes, opcode: int = 2) -> None:
                header = bytes([0x80 | opcode])
                size = len(payload)
                if size < 126:
                    header += bytes([size])
                elif size < 65536:
                    header += bytes([126]) + struct.pack(">H", size)
                else:
                    header += bytes([127]) + struct.pack(">Q", size)
                with self.send_lock:
                    self.connection.sendall(header + payload)

            def _ws_recv(self) -> tuple[int, bytes] | None:
                try:
                    return self._ws_read_frame()
                except (OSError, ValueError):  # the connection was closed under us
                    return None

            def _ws_read_frame(self) -> tuple[int, bytes] | None:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return None
                opcode, size = head[0] & 0x0F, head[1] & 0x7F
                if size == 126:
                    size = struct.unpack(">H", self.rfile.read(2))[0]
                elif size == 127:
                    size = struct.unpack(">Q", self.rfile.read(8))[0]
                mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
                data = bytearray(self.rfile.read(size))
                for i in range(len(data)):
                    data[i] ^= mask[i % 4]
                return opcode, bytes(data)

            def _exec(
                self, namespace: str, pod: str, query: dict[str, str], multi: dict[str, list[str]]
            ) -> None:
                obj = emulator.get("pods", namespace, pod)
                name = query.get("container") or obj["spec"]["containers"][0]["name"]
                container = emulator.containers.get((namespace, pod, name))
                if container is None or obj["status"].get("phase") != "Running":
                    raise ApiError(400, "BadRequest", f"pod {pod} is not running")
                self._upgrade()
                process = subprocess.Popen(
                    multi.get("command", []),
                    env=container.environment(),
                    cwd=emulator.workdir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )

                def reader(stream: Any, channel: int) -> None:
                    try:
                        for chunk in iter(lambda: stream.read1(65536), b""):
                            self._ws_send(bytes([channel]) + chunk)
                    except OSError:  # the client went away
                        pass

                readers = [
                    threading.Thread(target=reader, args=(process.stdout, 1), daemon=True),
                    threading.Thread(target=reader, args=(process.stderr, 2), daemon=True),
                ]
                for thread in readers:
                    thread.start()

                def writer() -> None:
                    assert process.stdin is not None
                    while True:
                        frame = self._ws_recv()
                        if frame is None or frame[0] == 8:
                            break
                        if frame[0] in (1, 2) and frame[1][:1] == b"\0":
                            try:
                                process.stdin.write(frame[1][1:])
                                process.stdin.flush()
                            except BrokenPipeError:
                                pass
                    process.stdin.close()

                threading.Thread(target=writer, daemon=True).start()
                code = process.wait()
                for thread in readers:
                    thread.join()
                if code == 0:
                    status = {"metadata": {}, "status": "Success"}
                else:
                    status = {
                        "metadata": {},
                        "status": "Failure",
                        "reason": "NonZeroExitCode",
                        "message": f"command terminated with non-zero exit code: {code}",
                        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                    }
                self._ws_send(b"\x03" + json.dumps(status).encode())
                self._ws_send(struct.pack(">H", 1000), opcode=8)

            def _portforward(self, namespace: str, pod: str, query: dict[str, str]) -> None:
                emulator.get("pods", namespace, pod)
                port = int(query["ports"])
                self._upgrade()
                self._ws_send(b"\x00" + struct.pack("<H", port))
                self._ws_send(b"\x01" + struct.pack("<H", port))
                try:
                    target = socket.create_connection(("127.0.0.1", port), timeout=10)
                except OSError as exc:
                    self._ws_send(b"\x01" + str(exc).encode())
                    self._ws_send(struct.pack(">H", 1000), opcode=8)
                    return

                def pull() -> None:
                    try:
                        for chunk in iter(lambda: target.recv(65536), b""):
                            self._ws_send(b"\x00" + chunk)
                    except OSError:
                        pass
                    with contextlib.suppress(OSError):
                        self._ws_send(struct.pack(">H", 1000), opcode=8)

                threading.Thread(target=pull, daemon=True).start()
                while True:
                    frame = self._ws_recv()
                    if frame is None or frame[0] == 8:
                        break
                    if frame[1][:1] == b"\x00" and len(frame[1]) > 1:
                        target.sendall(frame[1][1:])
                target.close()

        return Handler
