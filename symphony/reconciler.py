"""One reconcile pass: manifests → observe → plan → apply, per cluster.

Deciding is pure (:func:`symphony.plan.diff`); this module only sequences the
steps and talks to clusters through :mod:`symphony.clusters.base`. Every
cluster is connected and observed before the first change, so an unreachable
cluster or a missing tmux fails the whole apply with nothing changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from symphony import known_clusters, workspace
from symphony.clusters.base import Cluster, connect
from symphony.clusters.conductor_deployments import DeploymentApplier
from symphony.errors import ManifestError, OperationFailed, Problem
from symphony.lowering import deployment_as_experiment
from symphony.manifests import check_cluster_refs
from symphony.model import (
    ClusterSpec,
    ClusterType,
    Deployment,
    Experiment,
    ManifestSet,
    ObservedProcess,
    ProcessState,
    RestartType,
)
from symphony.plan import Plan, diff

Connector = Callable[[ClusterSpec], Cluster]
CANNOT_START = (126, 127)  # the shell's codes for "not executable" and "not found"


@dataclass
class ClusterPlan:
    """What one cluster will be asked to do."""

    spec: ClusterSpec
    cluster: Cluster
    desired: list[Experiment]
    observed: list[ObservedProcess]
    plan: Plan
    deployments: list[Deployment] = field(default_factory=list)  # for a DeploymentApplier


@dataclass
class Reconciler:
    """Sequences a pass; ``connect`` is swappable so tests can record what clusters were asked."""

    connect: Connector = connect
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _clusters: dict[str, Cluster] = field(default_factory=dict, repr=False)

    def cluster(self, spec: ClusterSpec) -> Cluster:
        if spec.name not in self._clusters:
            self._clusters[spec.name] = self.connect(spec)
        return self._clusters[spec.name]

    def desired_by_cluster(self, manifests: ManifestSet) -> dict[str, list[Experiment]]:
        grouped: dict[str, list[Experiment]] = {}
        for experiment in workloads(manifests):
            grouped.setdefault(experiment.cluster, []).append(experiment)
        return grouped

    def plan(
        self,
        manifests: ManifestSet,
        *,
        prune: bool = False,
        clusters: Iterable[ClusterSpec] = (),
    ) -> list[ClusterPlan]:
        """Connect, observe and diff every cluster the manifests (or ``clusters``) name."""
        known = known_clusters.all_clusters(manifests.clusters)
        problems = check_cluster_refs(manifests, known)
        if problems:
            raise ManifestError(problems)
        grouped = self.desired_by_cluster(manifests)
        for spec in clusters:
            grouped.setdefault(spec.name, [])
            known.setdefault(spec.name, spec)
        plans: list[ClusterPlan] = []
        problems = [
            problem
            for name in sorted(grouped)
            for d in manifests.deployments
            if d.cluster == name and (problem := runs_as_processes(d, known[name])) is not None
        ]
        if problems:
            raise ManifestError(problems)
        for name in sorted(grouped):
            spec = known[name]
            cluster = self.cluster(spec)
            desired = grouped[name]
            only = None if prune else [e.name for e in desired]
            observed = cluster.observe(experiments=only) if (prune or only) else []
            plans.append(
                ClusterPlan(spec, cluster, desired, observed, diff(desired, observed, prune=prune),
                            [d for d in manifests.deployments if d.cluster == name])
            )
        return plans

    def apply(self, plans: Sequence[ClusterPlan]) -> None:
        for item in plans:
            if isinstance(item.cluster, DeploymentApplier):  # runs Deployments natively
                if not item.plan.empty:
                    item.cluster.apply_with_deployments(item.plan, item.desired, item.deployments)
            elif not item.plan.empty or item.desired:
                # An empty plan still reaches the adapter: labels are not part of a
                # process's spec, so tmux refreshes them there (and returns early).
                item.cluster.apply(item.plan, item.desired)

    def wait(
        self,
        plans: Sequence[ClusterPlan],
        *,
        timeout: float,
        interval: float = 0.2,
        on_progress: Callable[[list[ObservedProcess]], None] | None = None,
    ) -> list[ObservedProcess]:
        """Until every desired process runs (or finished as its policy allows).

        Raises :class:`OperationFailed` on a crash loop, a failed start or the timeout.
        """
        deadline = self.clock() + timeout
        while True:
            observed, pending, failed = self._progress(plans)
            if on_progress is not None:
                on_progress(observed)
            if failed:
                raise OperationFailed([Problem(line) for line in failed])
            if not pending:
                return observed
            if self.clock() >= deadline:
                names = ", ".join(sorted(pending)[:10])
                more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
                raise OperationFailed(f"timed out after {timeout:g}s waiting for: {names}{more}")
            self.sleep(interval)

    def _progress(
        self, plans: Sequence[ClusterPlan]
    ) -> tuple[list[ObservedProcess], list[str], list[str]]:
        observed_all: list[ObservedProcess] = []
        pending: list[str] = []
        failed: list[str] = []
        for item in plans:
            names = [e.name for e in item.desired]
            if not names:
                continue
            observed = item.cluster.observe(experiments=names)
            observed_all.extend(observed)
            live = {(o.experiment, o.key): o for o in observed}
            for experiment in item.desired:
                for process in experiment.processes:
                    label = f"{experiment.name}/{process.key}"
                    current = live.get((experiment.name, process.key))
                    if current is None or current.spec_hash != process.spec_hash():
                        pending.append(label)
                        continue
                    verdict = settled(current, process.restart_policy.type)
                    if verdict is None:
                        pending.append(label)
                    elif verdict:
                        failed.append(
                            f"{label}: {current.state}{': ' + current.reason if current.reason else ''}"
                        )
        return observed_all, pending, failed


def settled(observed: ObservedProcess, policy: RestartType) -> str | None:
    """None while still converging; "" when done; a reason when it failed for good."""
    state = observed.state
    if state is ProcessState.RUNNING or state is ProcessState.COMPLETED:
        return ""
    if state is ProcessState.CRASH_LOOP:
        return "crash-loop"
    if state is ProcessState.EXITED:
        if observed.exit_code in CANNOT_START:
            return f"exited: {observed.exit_code} (could not start)"
        # Finished as its policy allows: `never` runs once; anything else gave up restarting.
        return "" if policy is RestartType.NEVER else f"exited: {observed.exit_code}"
    return None


def runs_as_processes(deployment: Deployment, cluster: ClusterSpec) -> Problem | None:
    """A Deployment on a tmux or Kubernetes cluster runs as plain processes: refuse what
    only a conductor node can do, instead of silently running it on the host."""
    if cluster.type is ClusterType.CONDUCTOR:
        return None
    config = deployment.config
    what = (
        "kind: docker"
        if deployment.kind == "docker"
        else "config.image"
        if config.image
        else "config.env_name"
        if config.env_name
        else None
    )
    if what is None:
        return None
    ref = deployment.source
    return Problem(
        f"Deployment {deployment.name!r}: {what} needs a conductor cluster; "
        f"cluster {cluster.name!r} is {cluster.type.value} and would run the command on its own",
        file=ref.file,
        line=ref.line,
    )


def workloads(manifests: ManifestSet) -> list[Experiment]:
    """Experiments plus Deployments lowered to experiments (for process-level clusters)."""
    names = {e.name for e in manifests.experiments}
    clash = [d for d in manifests.deployments if d.name in names]
    if clash:
        d = clash[0]
        raise ManifestError(
            f"{d.source}: Deployment {d.name!r} has the same name as an Experiment; names must differ"
        )
    return [*manifests.experiments, *(deployment_as_experiment(d) for d in manifests.deployments)]


def apply_manifests(
    manifests: ManifestSet,
    *,
    reconciler: Reconciler,
    prune: bool = False,
    dry_run: bool = False,
) -> list[ClusterPlan]:
    """Plan everything, then change things (the order that keeps a bad apply harmless)."""
    prune_clusters = []
    if prune:
        known = known_clusters.all_clusters(manifests.clusters)
        used = {e.cluster for e in workloads(manifests)}
        prune_clusters = [known[n] for n in sorted(used) if n in known]
    plans = reconciler.plan(manifests, prune=prune, clusters=prune_clusters)
    if dry_run:
        return plans
    for spec in manifests.clusters:
        known_clusters.remember(spec)
    reconciler.apply(plans)
    deleted = sorted(
        {o.experiment for p in plans for o in p.plan.delete}
        - {e.name for p in plans for e in p.desired}
    )
    workspace.record_applied([e for p in plans for e in p.desired], removed=deleted)
    return plans
