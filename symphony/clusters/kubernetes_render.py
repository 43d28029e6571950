"""Experiments → Kubernetes objects (plain dicts, as the API serves them). Pure.

No Kubernetes client is imported here, so ``symphony render`` and the tests of
the mapping stay fast and need no cluster.

Mapping decisions (DESIGN §1-2, issue 6):

- **One bare Pod per ungrouped process, one Pod per process group** (a container
  per process). Replicas are not a ReplicaSet/StatefulSet: Symphony has already
  unrolled them into processes ``agent-0 …`` that differ in their environment
  (``SYMPH_PROCESS``, ``SYMPH_REPLICA``), which a workload's single Pod template
  cannot express, and the reconciler tracks, plans and reports each process
  on its own. A Pod that vanishes (node lost, evicted) is recreated by the next
  reconcile pass instead of by a controller.
- Pod names end in a hash of the rendered Pod (``rl-learner-3f9c1a2b``), like a
  ReplicaSet's: Pods are immutable, so an update creates the new Pod and then
  deletes the old one, without waiting for a name to be freed.
- Each bound name gets a ClusterIP Service, each exposed name a LoadBalancer
  Service (or NodePort, from the Cluster's ``service_type``), named
  ``EXPERIMENT-NAME``. ``SYMPH_<NAME>_HOST`` is ``SERVICE.NAMESPACE.svc`` and the
  port is the Service port, equal to the port the container listens on: the
  manifest's fixed port, else one derived from a hash of the name (stable across
  re-applies, unique inside a Pod).
- ``capacity_requests`` become equal requests and limits of the resources named
  in ``capacity_resources`` (extended resources such as ``nvidia.com/gpu``
  require requests == limits); ``node_group`` becomes a nodeSelector on
  ``node_group_label``; ``restart_policy.type`` becomes the Pod's
  restartPolicy (Never / OnFailure / Always). ``backoff_seconds`` and
  ``max_restarts`` have no Pod field: the kubelet's own back-off (10 s doubling
  to 5 min) applies.
- ``workdir`` is not used: it names a folder on the machine that holds the
  manifest; in a container the image's working directory applies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from symphony.environment import process_environment
from symphony.errors import Problem, UserError
from symphony.model import ClusterSpec, Experiment, ProcessSpec, RestartType, stable_hash

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "symphony"
EXPERIMENT_LABEL = "symphony/experiment"
PROCESS_LABEL = "symphony/process"
GROUP_LABEL = "symphony/group"
ENDPOINT_LABEL = "symphony/endpoint"
SPEC_HASH = "symphony/spec-hash"
SPEC_HASHES = "symphony/spec-hashes"  # JSON {container: process spec hash}
CLUSTER_HASH = "symphony/cluster-hash"

RESTART_POLICIES = {
    RestartType.NEVER: "Never",
    RestartType.ON_FAILURE: "OnFailure",
    RestartType.ALWAYS: "Always",
}
PORT_BASE, PORT_SPAN = 20000, 20000
NAME_LIMIT = 63


@dataclass(frozen=True)
class Unit:
    """What becomes one Pod: an ungrouped process, or every process of a group."""

    experiment: str
    name: str  # the process name, or the group name
    processes: tuple[ProcessSpec, ...]
    group: str | None = None


def managed_selector(experiments: Sequence[str] | None = None) -> str:
    """The label selector of everything Symphony owns (optionally only these experiments)."""
    selector = f"{MANAGED_BY}={MANAGER}"
    if experiments:
        selector += f",{EXPERIMENT_LABEL} in ({','.join(sorted(experiments))})"
    return selector


def units(experiment: Experiment) -> list[Unit]:
    """The experiment's Pods, in declaration order."""
    found: dict[str, list[ProcessSpec]] = {}
    for process in experiment.processes:
        found.setdefault(process.group or process.name, []).append(process)
    return [
        Unit(experiment.name, name, tuple(members), members[0].group)
        for name, members in found.items()
    ]


def unit_of(process: ProcessSpec) -> str:
    return process.group or process.name


def object_name(*parts: str, reserve: int = 0, letter_first: bool = False) -> str:
    """``a-b`` as a DNS label, shortened with a hash when it would exceed 63 characters.

    ``reserve`` keeps room for a suffix the caller appends; ``letter_first``
    makes it a DNS-1035 label (Services must start with a letter).
    """
    name = "-".join(parts)
    if letter_first and not name[:1].isalpha():
        name = "s-" + name
    limit = NAME_LIMIT - reserve
    if len(name) > limit:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = name[: limit - 9].rstrip("-") + "-" + digest
    return name


def service_name(experiment: str, endpoint: str) -> str:
    return object_name(experiment, endpoint, letter_first=True)


def service_host(experiment: str, endpoint: str, namespace: str) -> str:
    """The Service's DNS name, resolvable in every namespace whatever the cluster domain."""
    return f"{service_name(experiment, endpoint)}.{namespace}.svc"


def assigned_ports(experiment: Experiment) -> dict[str, int]:
    """A port for every bound or exposed name: the fixed one, else a stable hashed one.

    Ports only need to be unique inside one Pod (every Service has its own
    address), so collisions are resolved per Pod, in name order.
    """
    ports: dict[str, int] = {}
    for unit in units(experiment):
        endpoints = [e for p in unit.processes for e in p.endpoints]
        taken = {e.port for e in endpoints if e.port is not None}
        for endpoint in sorted(endpoints, key=lambda e: e.name):
            if endpoint.port is not None:
                ports[endpoint.name] = endpoint.port
                continue
            digest = int(
                hashlib.sha256(f"{experiment.name}/{endpoint.name}".encode()).hexdigest(), 16
            )
            port = PORT_BASE + digest % PORT_SPAN
            while port in taken:
                port = PORT_BASE + (port - PORT_BASE + 1) % PORT_SPAN
            taken.add(port)
            ports[endpoint.name] = port
    return ports


def addresses(experiment: Experiment, namespace: str) -> dict[str, tuple[str, int]]:
    ports = assigned_ports(experiment)
    return {
        e.name: (service_host(experiment.name, e.name, namespace), ports[e.name])
        for e in experiment.endpoints
    }


def cluster_hash(cluster: ClusterSpec) -> str:
    """A hash of the Cluster settings that shape rendered objects: a change re-renders them."""
    k = cluster.kubernetes
    return stable_hash(
        {
            "name": cluster.name,
            "namespace": k.namespace,
            "image": k.image,
            "capacity_resources": dict(sorted(k.capacity_resources.items())),
            "node_group_label": k.node_group_label,
            "service_type": k.service_type,
        }
    )


def problems(experiment: Experiment, cluster: ClusterSpec) -> list[Problem]:
    """What this cluster cannot run, found before anything is written."""
    found: list[Problem] = []
    mapping = cluster.kubernetes.capacity_resources
    for process in experiment.processes:
        for capacity in process.capacity_requests:
            if capacity not in mapping:
                known = ", ".join(f"{k}: {v}" for k, v in sorted(mapping.items())) or "none"
                found.append(
                    Problem(
                        f"process {process.key!r} requests capacity {capacity!r}, which cluster "
                        f"{cluster.name!r} does not map to a Kubernetes resource "
                        f"(spec.kubernetes.capacity_resources has {known})",
                        file=process.source.file,
                        line=process.source.line,
                    )
                )
    for unit in units(experiment):
        if unit.group is None:
            continue
        first = unit.processes[0]
        policies = {p.restart_policy.type for p in unit.processes}
        if len(policies) > 1:
            found.append(
                Problem(
                    f"group {unit.name!r} runs as one Pod with one restartPolicy, but its processes "
                    f"ask for {', '.join(sorted(policies))}; give them the same restart_policy.type",
                    file=first.source.file,
                    line=first.source.line,
                )
            )
        groups = {p.node_group for p in unit.processes if p.node_group}
        if len(groups) > 1:
            found.append(
                Problem(
                    f"group {unit.name!r} runs as one Pod on one node, but its processes ask for "
                    f"node groups {', '.join(sorted(groups))}",
                    file=first.source.file,
                    line=first.source.line,
                )
            )
    return found


def check(experiments: Sequence[Experiment], cluster: ClusterSpec) -> None:
    found = [p for e in experiments for p in problems(e, cluster)]
    if found:
        raise UserError(found)


def quantity(value: float) -> str:
    """A Kubernetes quantity: whole numbers stay whole, fractions in milli-units."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def labels(experiment: str, unit: str, *, group: str | None = None) -> dict[str, str]:
    found = {MANAGED_BY: MANAGER, EXPERIMENT_LABEL: experiment, PROCESS_LABEL: unit}
    if group:
        found[GROUP_LABEL] = group
    return found


def render_container(
    process: ProcessSpec,
    *,
    cluster: ClusterSpec,
    env: Mapping[str, str],
    ports: Mapping[str, int],
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": process.name,
        "image": cluster.kubernetes.image,
        "command": list(process.command),
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    if process.endpoints:
        container["ports"] = [
            {"containerPort": ports[e.name], "protocol": "TCP"} for e in process.endpoints
        ]
    if process.capacity_requests:
        resources = {
            cluster.kubernetes.capacity_resources[k]: quantity(v)
            for k, v in sorted(process.capacity_requests.items())
        }
        container["resources"] = {"requests": dict(resources), "limits": dict(resources)}
    return container


def render_pod(experiment: Experiment, unit: Unit, cluster: ClusterSpec) -> dict[str, Any]:
    """One Pod; its name ends in a hash of everything else in it."""
    kube = cluster.kubernetes
    hosts = addresses(experiment, kube.namespace)
    ports = {name: port for name, (_, port) in hosts.items()}
    containers = [
        render_container(
            p,
            cluster=cluster,
            env=process_environment(p, addresses=hosts, cluster=cluster.name),
            ports=ports,
        )
        for p in unit.processes
    ]
    hashes = {p.name: p.spec_hash() for p in unit.processes}
    first = unit.processes[0]
    spec: dict[str, Any] = {
        "restartPolicy": RESTART_POLICIES[first.restart_policy.type],
        "enableServiceLinks": False,
        "containers": containers,
    }
    node_group = next((p.node_group for p in unit.processes if p.node_group), None)
    if node_group:
        spec["nodeSelector"] = {kube.node_group_label: node_group}
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": kube.namespace,
            "labels": labels(experiment.name, unit.name, group=unit.group),
            "annotations": {
                SPEC_HASH: first.spec_hash() if unit.group is None else stable_hash(hashes),
                SPEC_HASHES: json.dumps(hashes, sort_keys=True),
                CLUSTER_HASH: cluster_hash(cluster),
            },
        },
        "spec": spec,
    }
    suffix = stable_hash(pod)[:8]
    name = object_name(experiment.name, unit.name, reserve=9) + "-" + suffix
    pod["metadata"] = {"name": name, **pod["metadata"]}
    return pod


def render_services(experiment: Experiment, cluster: ClusterSpec) -> list[dict[str, Any]]:
    kube = cluster.kubernetes
    ports = assigned_ports(experiment)
    services: list[dict[str, Any]] = []
    for process in experiment.processes:
        unit = unit_of(process)
        for endpoint in process.endpoints:
            port = ports[endpoint.name]
            spec = {
                "type": kube.service_type if endpoint.exposed else "ClusterIP",
                "selector": {
                    MANAGED_BY: MANAGER,
                    EXPERIMENT_LABEL: experiment.name,
                    PROCESS_LABEL: unit,
                },
                "ports": [{"name": "tcp", "port": port, "targetPort": port, "protocol": "TCP"}],
            }
            services.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": service_name(experiment.name, endpoint.name),
                        "namespace": kube.namespace,
                        "labels": {
                            **labels(experiment.name, unit, group=process.group),
                            ENDPOINT_LABEL: endpoint.name,
                        },
                        "annotations": {
                            SPEC_HASH: stable_hash(spec),
                            CLUSTER_HASH: cluster_hash(cluster),
                        },
                    },
                    "spec": spec,
                }
            )
    return services


def render_experiment(experiment: Experiment, cluster: ClusterSpec) -> list[dict[str, Any]]:
    """Every object of one experiment: Services first (so DNS exists when Pods start)."""
    check([experiment], cluster)
    pods = [render_pod(experiment, unit, cluster) for unit in units(experiment)]
    return [*render_services(experiment, cluster), *pods]


def render(experiments: Sequence[Experiment], cluster: ClusterSpec) -> list[dict[str, Any]]:
    """Every object of these experiments; every problem is reported before anything renders."""
    check(experiments, cluster)
    return [obj for e in experiments for obj in render_experiment(e, cluster)]
