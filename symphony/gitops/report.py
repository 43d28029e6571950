"""The ``/status`` document: each source, and each experiment with its live health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from symphony import known_clusters
from symphony.errors import UserError
from symphony.gitops.runner import SourceRunner
from symphony.model import ObservedProcess, ProcessState
from symphony.reconciler import Reconciler


def health(processes: Sequence[ObservedProcess]) -> str:
    """Argo CD's vocabulary: Healthy, Progressing, Degraded, Missing."""
    if not processes:
        return "Missing"
    states = {p.state for p in processes}
    if states & {ProcessState.CRASH_LOOP, ProcessState.UNKNOWN, ProcessState.EXITED}:
        return "Degraded"
    if states <= {ProcessState.RUNNING, ProcessState.COMPLETED}:
        return "Healthy"
    return "Progressing"


def live_processes(
    reconciler: Reconciler, clusters: set[str]
) -> dict[str, list[ObservedProcess]] | None:
    """Observed processes by experiment; None when a cluster cannot be read."""
    known = known_clusters.all_clusters()
    found: dict[str, list[ObservedProcess]] = {}
    try:
        for name in sorted(clusters):
            if name not in known:
                continue
            for o in reconciler.cluster(known[name]).observe():
                found.setdefault(o.experiment, []).append(o)
    except (UserError, OSError):
        return None
    return found


def status_document(runners: Sequence[SourceRunner], reconciler: Reconciler) -> dict[str, Any]:
    states = [r.status() for r in runners]
    clusters = {e["cluster"] for s in states for e in s["experiments"].values() if e.get("cluster")}
    live = live_processes(reconciler, clusters)
    experiments = []
    for runner, state in zip(runners, states, strict=True):
        for name, exp in state["experiments"].items():
            procs = live.get(name, []) if live is not None else None
            experiments.append(
                {
                    "name": name,
                    "source": runner.id,
                    **exp,
                    "health": health(procs) if procs is not None else "Unknown",
                    "processes": len(procs) if procs is not None else None,
                }
            )
    return {
        "sources": [
            {**s["source"], "running": s["running"], "events": s["events"][:10]} for s in states
        ],
        "experiments": sorted(experiments, key=lambda e: (e["name"], e["source"])),
    }
