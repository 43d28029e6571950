"""The few Kubernetes API calls Symphony makes, on plain dicts, with one-line errors.

The official client does the transport (kubeconfig, TLS, auth plugins); answers
are decoded as JSON dicts so the pure mapping modules never see client models.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from symphony.clusters.kubernetes_render import MANAGER
from symphony.errors import OperationFailed, UserError
from symphony.model import ClusterSpec

APPLY_PATCH = "application/apply-patch+yaml"
KINDS = ("Service", "Pod")


def kubeconfig_paths() -> list[str]:
    raw = os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [str(Path(p).expanduser()) for p in raw.split(os.pathsep) if p]


def load_client(spec: ClusterSpec) -> Any:
    """An ``ApiClient`` for the Cluster's context; a clear error when there is none."""
    from kubernetes import config
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config.config_exception import ConfigException

    who = f"cluster {spec.name!r}"
    context = spec.kubernetes.context
    paths = [p for p in kubeconfig_paths() if Path(p).is_file()]
    if not paths:
        if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return ApiClient(configuration)
        raise UserError(
            f"{who}: no kubeconfig found at {os.pathsep.join(kubeconfig_paths())} "
            f"(set KUBECONFIG or create ~/.kube/config)"
        )
    joined = os.pathsep.join(paths)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=joined)
    except ConfigException as exc:
        raise UserError(f"{who}: cannot read kubeconfig {joined}: {exc}") from None
    names = sorted(c["name"] for c in contexts or [])
    if context is not None and context not in names:
        raise UserError(
            f"{who}: context {context!r} is not in kubeconfig {joined} "
            f"(contexts: {', '.join(names) or 'none'})"
        )
    if context is None and not current:
        raise UserError(
            f"{who}: kubeconfig {joined} has no current-context; set spec.kubernetes.context"
        )
    try:
        return config.new_client_from_config(config_file=joined, context=context)
    except (ConfigException, OSError, ValueError) as exc:
        raise UserError(
            f"{who}: cannot use context {context or current['name']!r}: {exc}"
        ) from None


class KubeApi:
    """Pods, Services, logs and events in one namespace, as dicts."""

    def __init__(self, spec: ClusterSpec, client: Any):
        from kubernetes import client as k8s

        self.spec = spec
        self.namespace = spec.kubernetes.namespace
        self.client = client
        self.core = k8s.CoreV1Api(client)

    # --- calls -------------------------------------------------------------
    def select(self, kind: str, selector: str) -> list[dict[str, Any]]:
        method = {
            "Pod": self.core.list_namespaced_pod,
            "Service": self.core.list_namespaced_service,
        }
        data = self._json(
            f"list {kind.lower()}s", method[kind], self.namespace, label_selector=selector
        )
        return list(data.get("items") or [])

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        method = {
            "Pod": self.core.read_namespaced_pod,
            "Service": self.core.read_namespaced_service,
        }
        try:
            return self._json(f"read {kind.lower()} {name}", method[kind], name, self.namespace)
        except NotFound:
            return None

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply as field manager ``symphony``."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        method = {
            "Pod": self.core.patch_namespaced_pod,
            "Service": self.core.patch_namespaced_service,
        }
        return self._json(
            f"apply {kind.lower()} {name}",
            method[kind],
            name,
            self.namespace,
            dict(obj),
            field_manager=MANAGER,
            dry_run="All" if dry_run else None,
            _content_type=APPLY_PATCH,
        )

    def delete(self, kind: str, name: str, *, dry_run: bool = False) -> None:
        method = {
            "Pod": self.core.delete_namespaced_pod,
            "Service": self.core.delete_namespaced_service,
        }
        with contextlib.suppress(NotFound):
            self._json(
                f"delete {kind.lower()} {name}",
                method[kind],
                name,
                self.namespace,
                dry_run="All" if dry_run else None,
            )

    def events(self, pod: str) -> list[dict[str, Any]]:
        data = self._json(
            f"list events of {pod}",
            self.core.list_namespaced_event,
            self.namespace,
            field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod}",
        )
        return list(data.get("items") or [])

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._json("list nodes", self.core.list_node).get("items") or [])

    def log_lines(
        self,
        pod: str,
        container: str,
        *,
        follow: bool,
        tail: int | None,
        since_seconds: int | None,
    ) -> Iterator[str]:
        response = self._call(
            f"read the log of {pod}/{container}",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            container=container,
            follow=follow,
            tail_lines=tail,
            since_seconds=since_seconds,
            _request_timeout=None if follow else 60,
        )
        try:
            pending = b""
            for chunk in response.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace") + "\n"
            if pending:
                yield pending.decode("utf-8", "replace")
        finally:
            response.release_conn()

    # --- plumbing ----------------------------------------------------------
    def _json(self, action: str, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        response = self._call(action, method, *args, **kwargs)
        body = response.data
        return json.loads(body) if body else {}

    def _call(self, action: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            response = method(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise self.failure(action, exc.status, exc.body or exc.reason) from None
        except (HTTPError, OSError) as exc:
            host = self.client.configuration.host
            raise OperationFailed(
                f"cluster {self.spec.name!r}: cannot reach the Kubernetes API at {host} ({_short(exc)})"
            ) from None
        status = getattr(response, "status", 200)
        if not 200 <= status < 300:
            raise self.failure(action, status, response.data)
        return response

    def failure(self, action: str, status: int, body: Any) -> OperationFailed:
        """One line from an API error; 403 and a missing namespace get their own wording."""
        message = _status_message(body)
        who = f"cluster {self.spec.name!r}"
        if status == 404 and "namespaces" in message and self.namespace in message:
            return OperationFailed(
                f"{who}: namespace {self.namespace!r} does not exist "
                f"(create it, e.g. kubectl create namespace {self.namespace})"
            )
        if status == 404:
            return NotFound(f"{who}: cannot {action}: {message}")
        if status == 403:
            return OperationFailed(
                f"{who}: not allowed to {action} in namespace {self.namespace!r} (403 Forbidden: {message})"
            )
        if status == 401:
            return OperationFailed(
                f"{who}: the API refused our credentials (401 Unauthorized: {message})"
            )
        return OperationFailed(f"{who}: cannot {action} ({status}: {message})")


class NotFound(OperationFailed):
    """404 for a named object (callers decide whether that is an error)."""


def _status_message(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body or "").strip().splitlines()[0] if body else "no message"
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(body).strip()


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:200] if text else type(exc).__name__
