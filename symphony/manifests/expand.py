"""Turn validated documents into the model: defaults pushed down, replicas unrolled.

Pure (dict → model). Also checks the rules a schema cannot express
(DESIGN §1): unique names, every ``connects`` has a binder, one provider per
name, no replicated binder, a fixed port once per host, no ``SYMPH_`` override.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from symphony.errors import Problem
from symphony.manifests.loader import Document, PathKey
from symphony.model import (
    LOCAL_CLUSTER,
    ClusterSpec,
    ClusterType,
    ConductorConfig,
    Deployment,
    DeploymentConfig,
    Endpoint,
    Experiment,
    KubernetesConfig,
    ProcessSpec,
    RestartPolicy,
    RestartType,
    SourceRef,
    TmuxConfig,
)

RESERVED_ENV_PREFIX = "SYMPH_"
MAX_PROCESSES = 10_000  # per experiment, replicas unrolled: a typo must not eat the machine


def source_of(doc: Document, path: PathKey = ("metadata", "name")) -> SourceRef:
    return SourceRef(file=doc.file, line=doc.line_of(path))


def stringify_env(raw: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        else:
            out[str(key)] = str(value)
    return out


def argv(command: str | list[Any], args: list[Any] | None) -> tuple[str, ...]:
    """A list runs as argv; a string runs through ``/bin/sh -c`` (args appended, quoted)."""
    extra = [str(a) for a in (args or [])]
    if isinstance(command, str):
        line = command + (" " + shlex.join(extra) if extra else "")
        return ("/bin/sh", "-c", line)
    return tuple(str(c) for c in command) + tuple(extra)


def endpoints(
    raw: list[str] | dict[str, int | None] | None, *, exposed: bool
) -> tuple[Endpoint, ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return tuple(Endpoint(name, port, exposed) for name, port in raw.items())
    return tuple(Endpoint(name, None, exposed) for name in raw)


def restart_policy(raw: Mapping[str, Any] | None, default: RestartPolicy) -> RestartPolicy:
    if not raw:
        return default
    return RestartPolicy(
        type=RestartType(raw.get("type", str(default.type))),
        backoff_seconds=float(raw.get("backoff_seconds", default.backoff_seconds)),
        max_restarts=int(raw.get("max_restarts", default.max_restarts)),
    )


def capacity(raw: Mapping[str, Any] | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (raw or {}).items()}


def build_experiment(
    doc: Document, *, cluster_override: str | None = None
) -> tuple[Experiment | None, list[Problem]]:
    """An Experiment from a schema-valid document, or the rule violations found."""
    data = doc.data
    name: str = data["metadata"]["name"]
    spec = data["spec"]
    cluster = cluster_override or spec.get("cluster") or LOCAL_CLUSTER
    experiment_env = stringify_env(spec.get("env"))
    problems = _reserved_env(doc, ("spec", "env"), spec.get("env"))

    entries: list[tuple[PathKey, dict[str, Any], str | None, dict[str, str]]] = []
    for i, raw in enumerate(spec.get("processes") or []):
        entries.append((("spec", "processes", i), raw, None, experiment_env))
    group_names: list[str] = []
    for gi, group in enumerate(spec.get("groups") or []):
        group_names.append(group["name"])
        group_env = {**experiment_env, **stringify_env(group.get("env"))}
        problems += _reserved_env(doc, ("spec", "groups", gi, "env"), group.get("env"))
        for pi, raw in enumerate(group["processes"]):
            entries.append((("spec", "groups", gi, "processes", pi), raw, group["name"], group_env))

    total = sum(int(raw.get("replicas", 1)) for _, raw, _, _ in entries)
    if total > MAX_PROCESSES:
        return None, [
            doc.problem(
                ("spec",),
                f"experiment {name!r} would have {total} processes; at most {MAX_PROCESSES} "
                f"are allowed (lower replicas, or split it into several experiments)",
            )
        ]
    processes: list[ProcessSpec] = []
    for path, raw, group, base_env in entries:
        problems += _reserved_env(doc, (*path, "env"), raw.get("env"))
        processes.extend(_expand_process(doc, path, raw, name, group, base_env, cluster))

    problems += _name_rules(doc, entries, group_names)
    problems += _endpoint_rules(doc, entries)
    if problems:
        return None, problems
    lines = {"spec.cluster": doc.line_of(("spec", "cluster"))}
    experiment = Experiment(
        name=name,
        processes=tuple(processes),
        cluster=cluster,
        labels=dict(data["metadata"].get("labels") or {}),
        groups=tuple(group_names),
        source=SourceRef(doc.file, doc.line_of(("metadata", "name")), lines),
    )
    return experiment, []


def _expand_process(
    doc: Document,
    path: PathKey,
    raw: dict[str, Any],
    experiment: str,
    group: str | None,
    base_env: Mapping[str, str],
    cluster: str,
) -> list[ProcessSpec]:
    replicas = int(raw.get("replicas", 1))
    workdir = raw.get("workdir", ".")
    resolved = os.path.normpath(os.path.join(doc.base_dir, os.path.expanduser(workdir)))
    common = {
        "experiment": experiment,
        "command": argv(raw["command"], raw.get("args")),
        "group": group,
        "base_name": raw["name"],
        "replicas": replicas,
        "env": {**base_env, **stringify_env(raw.get("env"))},
        "workdir": resolved,
        "binds": endpoints(raw.get("binds"), exposed=False),
        "exposes": endpoints(raw.get("exposes"), exposed=True),
        "connects": tuple(raw.get("connects") or ()),
        "restart_policy": restart_policy(raw.get("restart_policy"), RestartPolicy()),
        "capacity_requests": capacity(raw.get("capacity_requests")),
        "node_group": raw.get("node_group"),
        "cluster": cluster,
        "source": SourceRef(doc.file, doc.line_of(path)),
    }
    if replicas == 1:
        return [ProcessSpec(name=raw["name"], replica=0, **common)]
    return [ProcessSpec(name=f"{raw['name']}-{r}", replica=r, **common) for r in range(replicas)]


def _reserved_env(doc: Document, path: PathKey, raw: Mapping[str, Any] | None) -> list[Problem]:
    return [
        doc.problem((*path, key), f"env {key!r} may not override a Symphony variable (SYMPH_*)")
        for key in (raw or {})
        if str(key).startswith(RESERVED_ENV_PREFIX)
    ]


def _name_rules(
    doc: Document,
    entries: list[tuple[PathKey, dict[str, Any], str | None, dict[str, str]]],
    group_names: list[str],
) -> list[Problem]:
    problems: list[Problem] = []
    seen_groups: set[str] = set()
    for gi, group_name in enumerate(group_names):
        if group_name in seen_groups:
            problems.append(
                doc.problem(("spec", "groups", gi, "name"), f"duplicate group name {group_name!r}")
            )
        seen_groups.add(group_name)
    taken: dict[tuple[str | None, str], PathKey] = {}
    for path, raw, group, _ in entries:
        replicas = int(raw.get("replicas", 1))
        names = [raw["name"]] if replicas == 1 else [f"{raw['name']}-{r}" for r in range(replicas)]
        where = "in group " + repr(group) if group else "in this experiment"
        for full in names:
            if (group, full) in taken:
                problems.append(
                    doc.problem((*path, "name"), f"duplicate process name {full!r} {where}")
                )
                break
            taken[(group, full)] = path
        if group is None and raw["name"] in seen_groups:
            problems.append(
                doc.problem(
                    (*path, "name"), f"process {raw['name']!r} has the same name as a group"
                )
            )
    return problems


def _endpoint_rules(
    doc: Document,
    entries: list[tuple[PathKey, dict[str, Any], str | None, dict[str, str]]],
) -> list[Problem]:
    problems: list[Problem] = []
    providers: dict[str, str] = {}
    ports: dict[tuple[str, int], str] = {}
    for path, raw, group, _ in entries:
        who = f"{group}/{raw['name']}" if group else raw["name"]
        replicated = int(raw.get("replicas", 1)) > 1
        for field in ("binds", "exposes"):
            provided = endpoints(raw.get(field), exposed=field == "exposes")
            if provided and replicated:
                problems.append(
                    doc.problem(
                        (*path, field),
                        f"process {who!r} has replicas and may not {field[:-1]} a name "
                        f"(every replica would claim it); give the name to one process",
                    )
                )
                continue
            for endpoint in provided:
                at: PathKey = (
                    (*path, field, endpoint.name)
                    if isinstance(raw.get(field), dict)
                    else (*path, field)
                )
                if endpoint.name in providers:
                    problems.append(
                        doc.problem(
                            at,
                            f"{endpoint.name!r} is already provided by {providers[endpoint.name]!r}; "
                            f"a name is bound or exposed by exactly one process",
                        )
                    )
                    continue
                providers[endpoint.name] = who
                if endpoint.port is not None:
                    # Every process of a local experiment shares one host (127.0.0.1).
                    host_key = ("host", endpoint.port)
                    if host_key in ports:
                        problems.append(
                            doc.problem(
                                at,
                                f"port {endpoint.port} of {endpoint.name!r} is already used by "
                                f"{ports[host_key]!r} on the same host",
                            )
                        )
                    ports[host_key] = endpoint.name
    for path, raw, _group, _ in entries:
        for i, target in enumerate(raw.get("connects") or []):
            if target not in providers:
                known = ", ".join(sorted(providers)) or "none"
                problems.append(
                    doc.problem(
                        (*path, "connects", i),
                        f"connects to {target!r}, which no process binds or exposes (provided: {known})",
                    )
                )
    return problems


def build_deployment(
    doc: Document, spec: Mapping[str, Any], name: str, *, cluster_override: str | None = None
) -> tuple[Deployment | None, list[Problem]]:
    config = spec.get("config") or {}
    command = argv(config["command"], config.get("args")) if "command" in config else ()
    deployment = Deployment(
        name=name,
        config=DeploymentConfig(
            command=command,
            env=stringify_env(config.get("env")),
            image=config.get("image"),
            env_name=config.get("env_name"),
        ),
        cluster=cluster_override or spec.get("cluster") or LOCAL_CLUSTER,
        node_group=spec.get("node_group"),
        replicas=int(spec.get("replicas", 1)),
        capacity_requests=capacity(spec.get("capacity_requests")),
        kind=spec.get("kind", "exec"),
        restart_policy=restart_policy(
            spec.get("restart_policy"), RestartPolicy(RestartType.ON_FAILURE, 10.0, 0)
        ),
        desired_state=spec.get("desired_state", "running"),
        labels=dict((doc.data.get("metadata") or {}).get("labels") or {})
        if isinstance(doc.data, dict)
        else {},
        source=SourceRef(
            doc.file,
            doc.line_of(("metadata", "name")),
            {"spec.cluster": doc.line_of(("spec", "cluster"))},
        ),
    )
    return deployment, []


def build_cluster(doc: Document) -> ClusterSpec:
    data = doc.data
    spec = data["spec"]
    kube = spec.get("kubernetes") or {}
    cond = spec.get("conductor") or {}
    return ClusterSpec(
        name=data["metadata"]["name"],
        type=ClusterType(spec["type"]),
        tmux=TmuxConfig(socket_name=(spec.get("tmux") or {}).get("socket_name")),
        kubernetes=KubernetesConfig(
            context=kube.get("context"),
            namespace=kube.get("namespace", "symphony"),
            image=kube.get("image", "python:3.11-slim"),
            capacity_resources=dict(kube.get("capacity_resources") or {}),
            node_group_label=kube.get("node_group_label", "symphony/group"),
            service_type=kube.get("service_type", "LoadBalancer"),
        ),
        conductor=ConductorConfig(
            url=cond.get("url", "http://127.0.0.1:8000"),
            token_file=cond.get("token_file"),
            ca_file=cond.get("ca_file"),
        ),
        source=source_of(doc),
    )
