"""Symphony's vocabulary: frozen dataclasses that every layer speaks.

Pure: imports nothing of ours and does no I/O. Manifests are loaded into these,
the planner and the scheduler decide over them, clusters act on them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

API_VERSION = "symphony/v1"
LOCAL_CLUSTER = "local"


class RestartType(StrEnum):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class ClusterType(StrEnum):
    TMUX = "tmux"
    KUBERNETES = "kubernetes"
    CONDUCTOR = "conductor"


class ProcessState(StrEnum):
    """What a process is doing, read back from the cluster (never assumed)."""

    PENDING = "pending"
    RUNNING = "running"
    BACKOFF = "backoff"  # waiting to be restarted after a failure
    CRASH_LOOP = "crash-loop"
    EXITED = "exited"  # finished with a non-zero code and will not restart
    COMPLETED = "completed"  # finished with code 0
    UNKNOWN = "unknown"  # the cluster holds it but cannot say (e.g. supervisor gone)


@dataclass(frozen=True)
class SourceRef:
    """Where a thing was declared, for error messages: ``FILE:LINE``."""

    file: str = "<memory>"
    line: int = 1
    # lines of individual fields ("spec.cluster" -> 7), for later checks such as unknown clusters
    fields: Mapping[str, int] = field(default_factory=dict, compare=False)

    def at(self, field_path: str) -> SourceRef:
        return SourceRef(self.file, self.fields.get(field_path, self.line))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class RestartPolicy:
    type: RestartType = RestartType.NEVER
    backoff_seconds: float = 5.0
    max_restarts: int = 0  # 0 = unlimited

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": str(self.type),
            "backoff_seconds": self.backoff_seconds,
            "max_restarts": self.max_restarts,
        }


@dataclass(frozen=True)
class Endpoint:
    """A name a process provides (binds or exposes); ``port`` is fixed or None (assigned)."""

    name: str
    port: int | None = None
    exposed: bool = False


@dataclass(frozen=True)
class ProcessSpec:
    """One runnable process after expansion: replicas unrolled, defaults pushed down.

    ``env`` is the user's environment only (experiment env overlaid by process env);
    the ``SYMPH_*`` variables are added by :mod:`symphony.environment` at launch time,
    once the cluster has chosen hosts and ports.
    """

    experiment: str
    name: str  # full name, replica suffix included: "agent-3"
    command: tuple[str, ...]
    group: str | None = None
    base_name: str = ""  # name before the replica suffix: "agent"
    replica: int = 0
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "."
    binds: tuple[Endpoint, ...] = ()
    exposes: tuple[Endpoint, ...] = ()
    connects: tuple[str, ...] = ()
    restart_policy: RestartPolicy = RestartPolicy()
    capacity_requests: Mapping[str, float] = field(default_factory=dict)
    node_group: str | None = None
    cluster: str = LOCAL_CLUSTER
    source: SourceRef = field(default=SourceRef(), compare=False)

    @property
    def key(self) -> str:
        """Unique name inside its experiment: ``group/process`` or ``process``."""
        return f"{self.group}/{self.name}" if self.group else self.name

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self.binds + self.exposes

    def fingerprint(self) -> dict[str, Any]:
        """Everything that, when changed, means the process must be restarted."""
        return {
            "experiment": self.experiment,
            "name": self.name,
            "group": self.group,
            "replica": self.replica,
            "command": list(self.command),
            "env": dict(sorted(self.env.items())),
            "workdir": self.workdir,
            "binds": [[e.name, e.port] for e in self.binds],
            "exposes": [[e.name, e.port] for e in self.exposes],
            "connects": sorted(self.connects),
            "restart_policy": self.restart_policy.to_dict(),
            "capacity_requests": dict(sorted(self.capacity_requests.items())),
            "node_group": self.node_group,
            "cluster": self.cluster,
        }

    def spec_hash(self) -> str:
        return stable_hash(self.fingerprint())


@dataclass(frozen=True)
class Experiment:
    name: str
    processes: tuple[ProcessSpec, ...]
    cluster: str = LOCAL_CLUSTER
    labels: Mapping[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    source: SourceRef = field(default=SourceRef(), compare=False)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every name bound or exposed in this experiment, in declaration order."""
        return tuple(e for p in self.processes for e in p.endpoints)

    def process(self, key: str) -> ProcessSpec:
        for p in self.processes:
            if p.key == key:
                return p
        raise KeyError(key)


@dataclass(frozen=True)
class DeploymentConfig:
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    env_name: str | None = None


@dataclass(frozen=True)
class Deployment:
    name: str
    config: DeploymentConfig
    cluster: str = LOCAL_CLUSTER
    node_group: str | None = None
    replicas: int = 1
    capacity_requests: Mapping[str, float] = field(default_factory=dict)
    kind: str = "exec"  # exec | docker
    restart_policy: RestartPolicy = RestartPolicy(RestartType.ON_FAILURE, 10.0, 0)
    desired_state: str = "running"  # running | stopped
    labels: Mapping[str, str] = field(default_factory=dict)
    source: SourceRef = field(default=SourceRef(), compare=False)

    def to_spec(self) -> dict[str, Any]:
        """The manifest's ``spec`` (and the HTTP API body, with ``name``)."""
        return {
            "cluster": self.cluster,
            "node_group": self.node_group,
            "replicas": self.replicas,
            "capacity_requests": dict(self.capacity_requests),
            "kind": self.kind,
            # a docker job may leave out its command (the image's own); [] would not validate
            "config": {
                **({"command": list(self.config.command)} if self.config.command else {}),
                "env": dict(self.config.env),
                "image": self.config.image,
                "env_name": self.config.env_name,
            },
            "restart_policy": self.restart_policy.to_dict(),
            "desired_state": self.desired_state,
        }

    def spec_hash(self) -> str:
        return stable_hash(self.to_spec())


@dataclass(frozen=True)
class TmuxConfig:
    socket_name: str | None = None  # None: SYMPHONY_TMUX_SOCKET or "symphony"


@dataclass(frozen=True)
class KubernetesConfig:
    context: str | None = None
    namespace: str = "symphony"
    image: str = "python:3.11-slim"
    capacity_resources: Mapping[str, str] = field(default_factory=dict)
    node_group_label: str = "symphony/group"
    service_type: str = "LoadBalancer"  # for exposed names: LoadBalancer | NodePort


@dataclass(frozen=True)
class ConductorConfig:
    url: str = "http://127.0.0.1:8000"
    token_file: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    type: ClusterType = ClusterType.TMUX
    tmux: TmuxConfig = TmuxConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    conductor: ConductorConfig = ConductorConfig()
    source: SourceRef = field(default=SourceRef(), compare=False)


LOCAL = ClusterSpec(name=LOCAL_CLUSTER, type=ClusterType.TMUX)


@dataclass(frozen=True)
class ManifestSet:
    """Everything one load produced, in document order."""

    experiments: tuple[Experiment, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    clusters: tuple[ClusterSpec, ...] = ()


@dataclass(frozen=True)
class ObservedProcess:
    """A process as a cluster reports it. ``spec_hash`` is what it was started from."""

    experiment: str
    key: str
    spec_hash: str
    state: ProcessState = ProcessState.UNKNOWN
    restarts: int = 0
    exit_code: int | None = None
    started_at: float | None = None  # unix time the current run started
    node: str = ""
    cluster: str = LOCAL_CLUSTER
    ready: bool = False
    pid: int | None = None
    reason: str = ""

    @property
    def group(self) -> str | None:
        return self.key.split("/", 1)[0] if "/" in self.key else None

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def stable_hash(data: Any) -> str:
    """A short hash of JSON-able data that does not depend on key order."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def env_name(name: str) -> str:
    """``replay-server`` → ``REPLAY_SERVER`` (DESIGN §2)."""
    return "".join(c if ("A" <= c <= "Z" or "0" <= c <= "9") else "_" for c in name.upper())
