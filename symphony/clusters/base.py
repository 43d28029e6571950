"""The seams between the reconciler/CLI and a cluster: small Protocols.

A cluster adapter implements :class:`Cluster` (observe + apply, what the
reconciler needs) and whichever optional capabilities it can (logs, access).
The CLI checks a capability with ``isinstance`` and prints a clear
"not supported on <type> clusters" when it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from symphony.errors import OperationFailed
from symphony.model import ClusterSpec, ClusterType, Experiment, ObservedProcess
from symphony.plan import Plan


@runtime_checkable
class Observer(Protocol):
    def observe(self, *, experiments: Sequence[str] | None = None) -> list[ObservedProcess]:
        """Every Symphony-managed process live on the cluster (optionally only these experiments)."""
        ...


@runtime_checkable
class Applier(Protocol):
    def apply(self, plan: Plan, desired: Sequence[Experiment]) -> None:
        """Carry out ``plan``; ``desired`` gives each process its experiment (for the environment)."""
        ...


@runtime_checkable
class Cluster(Observer, Applier, Protocol):
    spec: ClusterSpec

    def delete_experiment(self, name: str) -> None:
        """Stop and remove everything of one experiment."""
        ...


@runtime_checkable
class LogSource(Protocol):
    def logs(
        self,
        experiment: str,
        key: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
    ) -> Iterator[str]:
        """The process's whole output (lines with their newline), then new lines while ``follow``."""
        ...


@runtime_checkable
class ServiceLocator(Protocol):
    def url(self, experiment: str, service: str) -> str:
        """A URL for an exposed (or bound) name."""
        ...


@runtime_checkable
class ProcessAccess(Protocol):
    def exec(self, experiment: str, key: str, argv: Sequence[str]) -> int:
        """Run ``argv`` with the process's environment and folder; return its exit code."""
        ...

    def ssh(self, experiment: str, key: str) -> int:
        """Attach the user's terminal to the process."""
        ...


@runtime_checkable
class FileCopier(Protocol):
    def scp(self, source: str, destination: str, *, experiment: str) -> None:
        """Copy ``[group/]process:/path`` to or from the local machine."""
        ...


@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    cluster: str
    processes: int
    running: int
    labels: dict[str, str]


ClusterFactory = Callable[[ClusterSpec], Cluster]
_REGISTRY: dict[ClusterType, str] = {
    ClusterType.TMUX: "symphony.clusters.tmux:TmuxCluster",
    ClusterType.KUBERNETES: "symphony.clusters.kubernetes:KubernetesCluster",
    ClusterType.CONDUCTOR: "symphony.clusters.conductor:ConductorCluster",
}


def connect(spec: ClusterSpec) -> Cluster:
    """Build the adapter for ``spec`` (imported lazily: clusters never import each other)."""
    import importlib

    target = _REGISTRY[spec.type]
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise OperationFailed(
            f"cluster {spec.name!r}: the {spec.type} cluster type is not available ({exc.name} missing)"
        ) from None
    factory: ClusterFactory = getattr(module, attr)
    return factory(spec)


def unsupported(spec: ClusterSpec, what: str) -> OperationFailed:
    return OperationFailed(
        f"{what} is not supported on {spec.type} clusters (cluster {spec.name!r})"
    )
