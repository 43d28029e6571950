"""The ``conductor`` cluster type: Experiments and Deployments through a conductor's HTTP API.

A client only (httpx); the conductor decides placement (an Experiment is one gang),
ports and the ``SYMPH_*`` environment. One ``POST /apply`` per reconcile pass carries
every touched experiment and deployment, and the conductor applies it all or nothing.
Observations come from ``GET /processes`` with the CLI's own spec hashes, so a re-apply
of unchanged manifests plans nothing.

The token is read from the Cluster's ``conductor.token_file``; ``conductor.ca_file``
verifies an ``https://`` conductor. Every failure is one line naming the cluster.
"""

from __future__ import annotations

import json
import re
import ssl
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from symphony.clusters.base import unsupported
from symphony.clusters.conductor_deployments import NotNative, apply_body
from symphony.errors import OperationFailed, Problem, UserError
from symphony.model import (
    ClusterSpec,
    Deployment,
    Experiment,
    ObservedProcess,
    ProcessState,
    SourceRef,
)
from symphony.names import resolve_service
from symphony.plan import Plan

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
STATES = {
    "running": ProcessState.RUNNING,
    "pending": ProcessState.PENDING,
    "assigned": ProcessState.PENDING,
    "starting": ProcessState.PENDING,
    "backoff": ProcessState.BACKOFF,
    "crash-loop": ProcessState.CRASH_LOOP,
    "exited": ProcessState.EXITED,
    "completed": ProcessState.COMPLETED,
    "stopped": ProcessState.EXITED,
    "failed": ProcessState.EXITED,
}


class ConductorCluster:
    def __init__(self, spec: ClusterSpec, *, transport: httpx.BaseTransport | None = None):
        self.spec = spec
        self._transport = transport
        self._client: httpx.Client | None = None

    # ------------------------------------------------------------------ connection
    @property
    def base_url(self) -> str:
        return self.spec.conductor.url.rstrip("/")

    def _token(self) -> str:
        name, configured = self.spec.name, self.spec.conductor.token_file
        if not configured:
            raise UserError(
                f"cluster {name}: conductor.token_file is not set (the token is in the conductor's <storage>/api-token)"
            )
        path = Path(configured).expanduser()
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise UserError(f"cluster {name}: conductor.token_file {path}: {exc.strerror or exc}") from None
        if not token:
            raise UserError(f"cluster {name}: conductor.token_file {path} is empty")
        return token

    def _verify(self) -> ssl.SSLContext | bool:
        ca = self.spec.conductor.ca_file
        if not ca:
            return True
        path = Path(ca).expanduser()
        try:
            return ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"cluster {self.spec.name}: conductor.ca_file {path}: {exc}") from None

    @property
    def client(self) -> httpx.Client:
        """Made on first use, so that building the adapter never fails."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self._token()}"},
                timeout=TIMEOUT,
                verify=self._verify(),
                transport=self._transport,
            )
        return self._client

    def _request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kw: Any) -> httpx.Response:
        try:
            resp = self.client.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._check(resp, method, path, ok)
        return resp

    def _unreachable(self, exc: Exception) -> OperationFailed:
        why = str(exc) or type(exc).__name__
        return OperationFailed(f"cluster {self.spec.name}: cannot reach the conductor at {self.base_url}: {why}")

    def _check(self, resp: httpx.Response, method: str, path: str, ok: tuple[int, ...]) -> None:
        name = self.spec.name
        if resp.status_code in ok:
            return
        if resp.status_code == 401:
            raise OperationFailed(
                f"cluster {name}: the conductor at {self.base_url} refused the API token "
                f"from {self.spec.conductor.token_file}"
            )
        errors = _errors(resp)
        if resp.status_code == 422:
            raise UserError([Problem(f"cluster {name}: {e}") for e in errors])
        raise OperationFailed(f"cluster {name}: {method} {path}: HTTP {resp.status_code}: {'; '.join(errors)}")

    # ------------------------------------------------------------------ Cluster
    def observe(self, *, experiments: Sequence[str] | None = None) -> list[ObservedProcess]:
        if experiments is not None and not experiments:
            return []
        # everything (status, delete, prune) includes stopped deployments; a plan of named
        # experiments does not: their manifests lower to no processes
        params = [("experiment", e) for e in experiments] if experiments else [("stopped", "true")]
        rows = self._request("GET", "/processes", params=params).json()
        return [self._observed(row) for row in rows]

    def _observed(self, row: dict[str, Any]) -> ObservedProcess:
        state = STATES.get(str(row.get("state")), ProcessState.UNKNOWN)
        return ObservedProcess(
            experiment=row["experiment"],
            key=row["key"],
            spec_hash=row.get("spec_hash") or "",
            state=state,
            restarts=int(row.get("restarts") or 0),
            exit_code=row.get("exit_code"),
            started_at=row.get("started_at"),
            node=row.get("node") or "",
            cluster=self.spec.name,
            ready=state is ProcessState.RUNNING,
            pid=row.get("pid"),
            reason=row.get("reason") or "",
        )

    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        self.apply_with_deployments(plan, desired, ())

    def apply_with_deployments(
        self, plan: Plan, desired: Sequence[Experiment], deployments: Sequence[Deployment]
    ) -> None:
        try:
            body = apply_body(plan, desired, deployments)
        except NotNative as exc:
            raise OperationFailed(f"cluster {self.spec.name}: {exc}") from None
        try:
            self._request("POST", "/apply", json=body)
        except UserError as exc:  # point at the manifest the conductor's complaint is about
            sources = {e.name: e.source for e in desired} | {d.name: d.source for d in deployments}
            raise UserError([_located(p, sources) for p in exc.problems]) from None

    def delete_experiment(self, name: str) -> None:
        self._request("DELETE", f"/experiments/{name}", ok=(200, 404))

    # ------------------------------------------------------------------ logs
    def _job(self, experiment: str, key: str) -> dict[str, Any]:
        for row in self._request("GET", "/processes", params=[("experiment", experiment)]).json():
            if row["key"] == key:
                return dict(row)
        raise UserError(f"no process {key!r} in experiment {experiment!r} on cluster {self.spec.name}")

    def logs(
        self,
        experiment: str,
        key: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
    ) -> Iterator[str]:
        """The job's whole output as the conductor keeps it on disk (or its last ``tail``
        lines, cut on the conductor's side), then new ones while ``follow``."""
        row = self._job(experiment, key)
        path, params = _log_source(row)
        ask = tail if tail and since is None else 0  # 0: everything
        kept = self._request("GET", path, params={**params, "tail": ask}).json()["lines"]
        last = max((int(e.get("seq", 0)) for e in kept), default=0)
        if since is not None:
            cutoff = time.time() - since
            kept = [e for e in kept if float(e.get("ts", 0)) >= cutoff]
        if tail is not None:
            kept = kept[-tail:] if tail else []
        for entry in kept:
            yield entry["line"] + "\n"
        if follow:
            yield from self._follow(path, params, last)

    def _follow(self, path: str, params: dict[str, Any], last: int) -> Iterator[str]:
        headers = {"Last-Event-ID": str(last)}
        timeout = httpx.Timeout(None, connect=5.0)
        try:
            with self.client.stream("GET", path, params={**params, "follow": 1}, headers=headers,
                                    timeout=timeout) as resp:
                self._check(resp, "GET", path, (200,))
                event = ""
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "log":
                        yield json.loads(line[5:])["line"] + "\n"
                    elif line.startswith("data:") and event == "end":
                        return
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    # ------------------------------------------------------------------ services
    def url(self, experiment: str, service: str) -> str:
        resp = self._request("GET", f"/experiments/{experiment}", ok=(200, 404))
        addresses = resp.json().get("addresses", {}) if resp.status_code == 200 else {}
        a = addresses[resolve_service(service, addresses, experiment=experiment)]
        return f"http://{a['host']}:{a['port']}"

    # ------------------------------------------------------------------ access
    def exec(self, experiment: str, key: str, argv: Sequence[str]) -> int:
        """Run ``argv`` on the process's node with its environment and folder (no terminal,
        no input); print its output when it has ended and return its exit code."""
        row = self._job(experiment, key)
        resp = self._request("POST", f"/jobs/{row['job_id']}/exec", json={"argv": list(argv)},
                             timeout=httpx.Timeout(None, connect=5.0))
        result = resp.json()
        sys.stdout.write(result.get("output", ""))
        sys.stdout.flush()
        if result.get("error"):
            raise OperationFailed(f"exec in {experiment}/{key} on node {result.get('node')}: {result['error']}")
        return int(result["exit_code"])

    def ssh(self, experiment: str, key: str) -> int:
        raise unsupported(self.spec, "ssh (attaching a terminal to a node's process)")

    # ------------------------------------------------------------------ nodes
    def nodes(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._request("GET", "/nodes").json()
        return data

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


_ABOUT = re.compile(r"^cluster [^:]+: (?:experiment|deployment) ([a-z0-9-]+)\b")


def _located(problem: Problem, sources: dict[str, SourceRef]) -> Problem:
    """``FILE:LINE: message`` when the message names an experiment or deployment we sent."""
    m = _ABOUT.match(problem.message)
    source = sources.get(m.group(1)) if m else None
    if source is None or source.file.startswith("<"):
        return problem
    return Problem(problem.message, file=source.file, line=source.line)


def _log_source(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where a process's output is: its job's deployment (one replica of it for a Deployment)."""
    if row.get("kind") == "deployment":
        return f"/deployments/{row['experiment']}/logs", {"replica": row.get("replica", 0)}
    return f"/deployments/{row['job_id']}/logs", {}


def _errors(resp: httpx.Response) -> list[str]:
    try:
        body = resp.json()
    except ValueError:
        return [resp.text[:200] or resp.reason_phrase]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return [str(e) for e in errors]
        return [str(body.get("detail") or body)]
    return [str(body)]
