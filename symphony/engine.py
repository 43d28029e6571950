"""The Python API of the seed: ``Cluster.new('tmux')``, ``new_experiment``, ``new_process``…

The builders only write a manifest (``to_manifest()``); launching goes through the
same loader, validator and reconciler as ``symphony apply`` — one path, not two.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from symphony.model import LOCAL_CLUSTER, ClusterType, ManifestSet, ObservedProcess

Names = str | Iterable[str] | Mapping[str, int | None]


def _add_names(target: dict[str, int | None], names: Names) -> None:
    if isinstance(names, str):
        target.setdefault(names, None)
    elif isinstance(names, Mapping):
        target.update(names)
    else:
        for name in names:
            target.setdefault(name, None)


class ProcessSpec:
    """A process being declared; ``binds``/``connects``/``exposes`` chain."""

    def __init__(
        self,
        name: str,
        *,
        command: str | Sequence[str],
        args: Sequence[Any] | None = None,
        env: Mapping[str, Any] | None = None,
        workdir: str | None = None,
        replicas: int = 1,
        restart_policy: Mapping[str, Any] | None = None,
        capacity_requests: Mapping[str, float] | None = None,
        node_group: str | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.args = list(args or [])
        self.env = dict(env or {})
        self.workdir = workdir
        self.replicas = replicas
        self.restart_policy = dict(restart_policy or {})
        self.capacity_requests = dict(capacity_requests or {})
        self.node_group = node_group
        self._binds: dict[str, int | None] = {}
        self._exposes: dict[str, int | None] = {}
        self._connects: list[str] = []

    def binds(self, names: Names) -> ProcessSpec:
        """Provide a name (or several, or ``{name: port}``) other processes connect to."""
        _add_names(self._binds, names)
        return self

    def exposes(self, names: Names) -> ProcessSpec:
        """Provide a name reachable from outside (``symphony visit``)."""
        _add_names(self._exposes, names)
        return self

    expose = exposes

    def connects(self, names: str | Iterable[str]) -> ProcessSpec:
        """Declare that this process talks to a name some process binds (checked at launch)."""
        for name in [names] if isinstance(names, str) else names:
            if name not in self._connects:
                self._connects.append(name)
        return self

    def set_env(self, key: str, value: Any) -> ProcessSpec:
        self.env[key] = value
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "command": self.command if isinstance(self.command, str) else list(self.command),
        }
        if self.args:
            out["args"] = [str(a) for a in self.args]
        if self.env:
            out["env"] = {k: str(v) for k, v in self.env.items()}
        if self.workdir is not None:
            out["workdir"] = self.workdir
        if self.replicas != 1:
            out["replicas"] = self.replicas
        for key, names in (("binds", self._binds), ("exposes", self._exposes)):
            if names:
                fixed = any(port is not None for port in names.values())
                out[key] = dict(names) if fixed else list(names)
        if self._connects:
            out["connects"] = list(self._connects)
        if self.restart_policy:
            out["restart_policy"] = dict(self.restart_policy)
        if self.capacity_requests:
            out["capacity_requests"] = dict(self.capacity_requests)
        if self.node_group:
            out["node_group"] = self.node_group
        return out


class ProcessGroupSpec:
    """Processes that share a host (one Pod on Kubernetes)."""

    def __init__(self, name: str, *, env: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.env = dict(env or {})
        self.processes: list[ProcessSpec] = []

    def new_process(self, name: str, **kwargs: Any) -> ProcessSpec:
        process = ProcessSpec(name, **kwargs)
        self.processes.append(process)
        return process

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "processes": [p.to_dict() for p in self.processes],
        }
        if self.env:
            out["env"] = {k: str(v) for k, v in self.env.items()}
        return out


class ExperimentSpec:
    def __init__(
        self,
        name: str,
        *,
        cluster: str = LOCAL_CLUSTER,
        env: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.cluster = cluster
        self.env = dict(env or {})
        self.labels = dict(labels or {})
        self.processes: list[ProcessSpec] = []
        self.groups: list[ProcessGroupSpec] = []

    def new_process(self, name: str, **kwargs: Any) -> ProcessSpec:
        process = ProcessSpec(name, **kwargs)
        self.processes.append(process)
        return process

    def new_process_group(self, name: str, **kwargs: Any) -> ProcessGroupSpec:
        group = ProcessGroupSpec(name, **kwargs)
        self.groups.append(group)
        return group

    def to_dict(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        spec: dict[str, Any] = {}
        if self.cluster != LOCAL_CLUSTER:
            spec["cluster"] = self.cluster
        if self.env:
            spec["env"] = {k: str(v) for k, v in self.env.items()}
        if self.processes:
            spec["processes"] = [p.to_dict() for p in self.processes]
        if self.groups:
            spec["groups"] = [g.to_dict() for g in self.groups]
        return {
            "apiVersion": "symphony/v1",
            "kind": "Experiment",
            "metadata": metadata,
            "spec": spec,
        }

    def to_manifest(self) -> str:
        """The YAML a user would write for this experiment."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


class Cluster:
    """Where experiments run. ``Cluster.new('tmux')`` is this machine."""

    def __init__(self, name: str, type: ClusterType, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.type = type
        self.settings = dict(settings)

    @classmethod
    def new(cls, type: str = "tmux", *, name: str | None = None, **settings: Any) -> Cluster:
        """``tmux`` (this machine; ``local``), ``kubernetes`` or ``conductor`` with their settings."""
        try:
            kind = ClusterType(type)
        except ValueError:
            choices = ", ".join(t.value for t in ClusterType)
            raise ValueError(f"unknown cluster type {type!r} (choose from {choices})") from None
        default = LOCAL_CLUSTER if kind is ClusterType.TMUX and not settings else kind.value
        return cls(name or default, kind, settings)

    def new_experiment(self, name: str, **kwargs: Any) -> ExperimentSpec:
        return ExperimentSpec(name, cluster=self.name, **kwargs)

    def _cluster_document(self) -> dict[str, Any] | None:
        if self.name == LOCAL_CLUSTER and not self.settings:
            return None
        return {
            "apiVersion": "symphony/v1",
            "kind": "Cluster",
            "metadata": {"name": self.name},
            "spec": {"type": self.type.value, self.type.value: dict(self.settings)},
        }

    def manifests(self, *experiments: ExperimentSpec) -> ManifestSet:
        """Validate as ``symphony apply`` would (raises ManifestError on bad declarations)."""
        from symphony.manifests import load_text

        docs = [e.to_dict() for e in experiments]
        cluster_doc = self._cluster_document()
        if cluster_doc is not None:
            docs.insert(0, cluster_doc)
        text = yaml.safe_dump_all(docs, sort_keys=False)
        return load_text(text, file="<python>", base_dir=os.getcwd())

    def launch(
        self, *experiments: ExperimentSpec, wait: bool = False, timeout: float = 60.0
    ) -> None:
        """Converge the cluster to these experiments, like ``symphony apply``."""
        from symphony.reconciler import Reconciler, apply_manifests

        reconciler = Reconciler()
        plans = apply_manifests(self.manifests(*experiments), reconciler=reconciler)
        if wait:
            reconciler.wait(plans, timeout=timeout)

    def status(self, experiment: str | ExperimentSpec) -> list[ObservedProcess]:
        name = experiment.name if isinstance(experiment, ExperimentSpec) else experiment
        return self._adapter().observe(experiments=[name])

    def delete(self, experiment: str | ExperimentSpec) -> None:
        from symphony import workspace

        name = experiment.name if isinstance(experiment, ExperimentSpec) else experiment
        self._adapter().delete_experiment(name)
        workspace.record_applied([], removed=[name])

    def _adapter(self) -> Any:
        from symphony import known_clusters
        from symphony.reconciler import Reconciler

        extra = self.manifests().clusters
        return Reconciler().cluster(known_clusters.resolve(self.name, extra))
