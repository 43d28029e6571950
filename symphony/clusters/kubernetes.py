"""The ``kubernetes`` cluster type: Experiments as Pods and Services in one namespace.

What the objects look like is decided in :mod:`kubernetes_render` (pure); how a
Pod's state reads as a Symphony state in :mod:`kubernetes_status` (pure). This
module does the talking: observe by label selector, converge with server-side
apply (field manager ``symphony``), prune only what carries Symphony's labels.

Every write of a pass is first sent with ``dryRun=All``, so a forbidden
namespace, a missing namespace or an object the API rejects stops the pass
before anything has changed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from symphony.clusters import kubernetes_render as render
from symphony.clusters.kubernetes_api import KubeApi, load_client
from symphony.clusters.kubernetes_status import needs_events, observe_pod, scheduler_message
from symphony.errors import UserError
from symphony.model import ClusterSpec, Experiment, ObservedProcess
from symphony.plan import Plan


class KubernetesCluster:
    def __init__(self, spec: ClusterSpec, *, api: KubeApi | None = None):
        self.spec = spec
        self._api = api
        self._forwards: list[Any] = []

    @property
    def api(self) -> KubeApi:
        """Connected on first use, so that constructing the adapter never fails."""
        if self._api is None:
            self._api = KubeApi(self.spec, load_client(self.spec))
        return self._api

    # --- Cluster -------------------------------------------------------------
    def observe(self, *, experiments: Sequence[str] | None = None) -> list[ObservedProcess]:
        if experiments is not None and not experiments:
            return []
        pods = self._live("Pod", experiments)
        fingerprint = render.cluster_hash(self.spec)
        found: list[ObservedProcess] = []
        for pod in sorted(pods, key=_created):
            message = ""
            if needs_events(pod):
                message = scheduler_message(self.api.events(pod["metadata"]["name"]))
            found.extend(
                observe_pod(
                    pod, cluster=self.spec.name, cluster_hash=fingerprint, scheduler_message=message
                )
            )
        return found

    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        """Converge the experiments the plan touches: check all, dry-run all, then write."""
        touched = sorted(plan.experiments_touched())
        if not touched:
            return
        by_name = {e.name: e for e in desired}
        render.check([by_name[name] for name in touched if name in by_name], self.spec)
        writes, deletes = self._changes(plan, by_name, touched)
        for obj in writes:
            self.api.apply(obj, dry_run=True)
        for kind, name in deletes:
            self.api.delete(kind, name, dry_run=True)
        for obj in writes:  # Services come first, so their DNS names exist when Pods start
            self.api.apply(obj)
        for kind, name in deletes:
            self.api.delete(kind, name)

    def delete_experiment(self, name: str) -> None:
        for kind in render_kinds():
            for obj in self._live(kind, [name]):
                self.api.delete(kind, obj["metadata"]["name"])

    # --- LogSource -------------------------------------------------------------
    def logs(
        self,
        experiment: str,
        key: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
    ) -> Iterator[str]:
        pod, container = self.pod_of(experiment, key)
        return self.api.log_lines(
            pod["metadata"]["name"],
            container,
            follow=follow,
            tail=tail,
            since_seconds=None if since is None else max(1, math.ceil(since)),
        )

    # --- ServiceLocator ----------------------------------------------------------
    def url(self, experiment: str, service: str) -> str:
        """The LoadBalancer's ingress, a node port, or else a port-forward on localhost."""
        from symphony.clusters.kubernetes_access import service_url

        return service_url(self, experiment, service)

    def wait_forwards(self) -> None:
        """Keep port-forwards that :meth:`url` opened alive until interrupted."""
        while any(f.alive for f in self._forwards):
            time.sleep(0.5)

    # --- ProcessAccess / FileCopier ---------------------------------------------
    def exec(self, experiment: str, key: str, argv: Sequence[str]) -> int:
        from symphony.clusters.kubernetes_access import run_exec

        pod, container = self.pod_of(experiment, key)
        return run_exec(self.api, pod["metadata"]["name"], container, list(argv))

    def ssh(self, experiment: str, key: str) -> int:
        from symphony.clusters.kubernetes_access import attach_shell

        pod, container = self.pod_of(experiment, key)
        return attach_shell(self.api, pod["metadata"]["name"], container)

    def scp(self, source: str, destination: str, *, experiment: str) -> None:
        from symphony.clusters.kubernetes_access import copy

        copy(self, source, destination, experiment=experiment)

    # --- helpers -----------------------------------------------------------------
    def pod_of(self, experiment: str, key: str) -> tuple[dict[str, Any], str]:
        """The live Pod of a process (the newest, when an update is under way) and its container."""
        group, _, name = key.rpartition("/")
        unit = group or name
        pods = [
            p
            for p in self._live("Pod", [experiment])
            if p["metadata"]["labels"].get(render.PROCESS_LABEL) == unit
            and any(c["name"] == name for c in p["spec"]["containers"])
        ]
        if not pods:
            raise UserError(
                f"no process {key!r} of experiment {experiment!r} on cluster {self.spec.name!r}"
            )
        return max(pods, key=_created), name

    def _live(self, kind: str, experiments: Sequence[str] | None) -> list[dict[str, Any]]:
        """Symphony's objects of ``kind``, without those already being deleted."""
        objects = self.api.select(kind, render.managed_selector(experiments))
        return [o for o in objects if not o["metadata"].get("deletionTimestamp")]

    def _changes(
        self, plan: Plan, desired: dict[str, Experiment], touched: list[str]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """The objects to apply (Services, then Pods) and the (kind, name)s to delete."""
        pods = self._live("Pod", touched)
        services = self._live("Service", touched)
        changed_units = {
            (p.experiment, render.unit_of(p)) for p in (*plan.create, *plan.update)
        } | {(o.experiment, o.group or o.name) for o in plan.delete}
        writes_services: list[dict[str, Any]] = []
        writes_pods: list[dict[str, Any]] = []
        keep: set[tuple[str, str]] = set()
        for name in touched:
            experiment = desired.get(name)
            if experiment is None:
                continue
            live_services = {s["metadata"]["name"]: s for s in services if _exp(s) == name}
            for service in render.render_services(experiment, self.spec):
                keep.add(("Service", service["metadata"]["name"]))
                current = live_services.get(service["metadata"]["name"])
                if current is None or _annotations(current) != _annotations(service):
                    writes_services.append(service)
            for unit in render.units(experiment):
                pod = render.render_pod(experiment, unit, self.spec)
                live_names = {
                    p["metadata"]["name"] for p in pods if _exp(p) == name and _unit(p) == unit.name
                }
                if (name, unit.name) in changed_units or not live_names:
                    keep.add(("Pod", pod["metadata"]["name"]))
                    if pod["metadata"]["name"] not in live_names:
                        writes_pods.append(pod)
                else:
                    keep.update(("Pod", n) for n in live_names)
        deletes = [
            (kind, obj["metadata"]["name"])
            for kind, objects in (("Pod", pods), ("Service", services))
            for obj in objects
            if (kind, obj["metadata"]["name"]) not in keep
        ]
        return [*writes_services, *writes_pods], deletes

    def __repr__(self) -> str:
        return (
            f"KubernetesCluster({self.spec.name!r}, namespace={self.spec.kubernetes.namespace!r})"
        )


def render_kinds() -> tuple[str, ...]:
    """Deletion order: Pods first, then the Services that pointed at them."""
    return ("Pod", "Service")


def _exp(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get(render.EXPERIMENT_LABEL, ""))


def _unit(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get(render.PROCESS_LABEL, ""))


def _annotations(obj: dict[str, Any]) -> tuple[str, str]:
    notes = obj["metadata"].get("annotations") or {}
    return notes.get(render.SPEC_HASH, ""), notes.get(render.CLUSTER_HASH, "")


def _created(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("creationTimestamp") or "")
