"""``status`` (``p``), ``list-experiments`` (``ls``) and ``switch-experiment`` (``se``)."""

from __future__ import annotations

import time
from typing import Any

import click

from symphony import workspace
from symphony.commands.common import (
    cluster_for,
    cluster_named,
    emit,
    experiment_names,
    options,
    state_text,
)
from symphony.errors import OperationFailed, UserError
from symphony.model import LOCAL_CLUSTER, ObservedProcess, ProcessState
from symphony.names import resolve_name
from symphony.reconciler import Reconciler


def process_row(o: ObservedProcess, now: float) -> dict[str, Any]:
    return {
        "experiment": o.experiment,
        "group": o.group or "",
        "name": o.name,
        "ready": 1 if o.ready else 0,
        "restarts": o.restarts,
        "state": state_text(o, now=now),
        "phase": str(o.state),
        "exit_code": o.exit_code,
        "node": o.node,
        "cluster": o.cluster,
        "pid": o.pid,
        "reason": o.reason,
    }


@click.command()
@click.argument("experiment", required=False)
@click.pass_context
def status(ctx: click.Context, experiment: str | None) -> None:
    """One row per process: group, name, ready, restarts, state, node, cluster."""
    opts = options(ctx)
    current = experiment or workspace.current_experiment()
    cluster = cluster_named(cluster_for(ctx, current))
    live = cluster.observe()
    names = sorted({o.experiment for o in live})
    if experiment is not None:
        chosen: list[str] | None = [resolve_name(experiment, names, what="experiment")]
    elif current is not None and current in names:
        chosen = [current]
    else:
        chosen = None  # everything on the cluster
    rows_src = [o for o in live if chosen is None or o.experiment in chosen]
    now = time.time()
    rows = [process_row(o, now) for o in rows_src]
    columns = [
        ("group", "Group"),
        ("name", "Name"),
        ("ready", "Ready"),
        ("restarts", "Restarts"),
        ("state", "State"),
        ("node", "Node"),
        ("cluster", "Cluster"),
    ]
    if chosen is None or len(chosen) > 1:
        columns.insert(0, ("experiment", "Experiment"))
    if opts.output == "table" and any(r["reason"] for r in rows):
        columns.append(("reason", "Reason"))
    emit(
        ctx,
        rows,
        columns,
        empty=f"no processes{' in ' + chosen[0] if chosen else ''} on cluster {cluster.spec.name}",
    )


def health(processes: list[ObservedProcess]) -> str:
    """Argo CD's vocabulary: Healthy, Progressing, Degraded, Missing."""
    if not processes:
        return "Missing"
    states = {p.state for p in processes}
    if states & {ProcessState.CRASH_LOOP, ProcessState.UNKNOWN} or any(
        p.state is ProcessState.EXITED for p in processes
    ):
        return "Degraded"
    if states <= {ProcessState.RUNNING, ProcessState.COMPLETED}:
        return "Healthy"
    return "Progressing"


def sync_state(
    name: str, processes: list[ObservedProcess], record: workspace.AppliedRecord | None
) -> str:
    if record is None:
        return "Unknown"
    live = {p.key: p.spec_hash for p in processes}
    return "Synced" if live == record.processes else "OutOfSync"


@click.command("list-experiments")
@click.pass_context
def list_experiments(ctx: click.Context) -> None:
    """Experiments with their cluster, process counts, sync and health."""
    opts = options(ctx)
    records = workspace.applied()
    if opts.cluster:
        cluster_names = [opts.cluster]
    else:
        cluster_names = sorted({LOCAL_CLUSTER, *(r.cluster for r in records.values())})
    reconciler = Reconciler()
    rows: list[dict[str, Any]] = []
    for cluster_name in cluster_names:
        try:
            cluster = cluster_named(cluster_name, reconciler)
            live = cluster.observe()
        except (UserError, OperationFailed) as exc:
            if opts.cluster:
                raise
            line = exc.lines()[0]
            prefix = "" if line.startswith(f"cluster {cluster_name}") else f"cluster {cluster_name}: "
            click.echo(f"warning: {prefix}{line}", err=True)
            continue
        by_exp: dict[str, list[ObservedProcess]] = {}
        for o in live:
            by_exp.setdefault(o.experiment, []).append(o)
        expected = {n for n, r in records.items() if r.cluster == cluster_name}
        for name in sorted(set(by_exp) | expected):
            procs = by_exp.get(name, [])
            record = records.get(name)
            rows.append(
                {
                    "name": name,
                    "cluster": cluster_name,
                    "processes": len(procs),
                    "running": sum(1 for p in procs if p.state is ProcessState.RUNNING),
                    "sync": sync_state(name, procs, record),
                    "health": health(procs),
                    "source": record.source if record else "",
                    "revision": (record.revision or "") if record else "",
                    "current": name == workspace.current_experiment(),
                }
            )
    _add_gitops_errors(rows, records, cluster_names)
    columns = [
        ("name", "Name"),
        ("cluster", "Cluster"),
        ("processes", "Processes"),
        ("running", "Running"),
        ("sync", "Sync"),
        ("health", "Health"),
        ("source", "Source"),
    ]
    if any(r["revision"] for r in rows):
        columns.append(("revision", "Revision"))
    if any(r.get("error") for r in rows):
        columns.append(("error", "Error"))
    emit(ctx, rows, columns, empty="no experiments")


def _add_gitops_errors(
    rows: list[dict[str, Any]],
    records: dict[str, workspace.AppliedRecord],
    cluster_names: list[str],
) -> None:
    """A GitOps source's blocked experiment: OutOfSync with its ``FILE:LINE: message``."""
    from symphony.gitops import store

    by_name = {r["name"]: r for r in rows}
    for name, status in sorted(store.experiments().items()):
        record = records.get(name)
        if not status.get("error") or (record is not None and record.source != status["source"]):
            continue  # fine, or applied by someone else since
        row = by_name.get(name)
        if row is None:
            cluster = status.get("cluster") or LOCAL_CLUSTER
            if cluster not in cluster_names:
                continue
            row = {
                "name": name,
                "cluster": cluster,
                "processes": 0,
                "running": 0,
                "health": "Missing",
                "source": status["source"],
                "revision": "",
                "current": name == workspace.current_experiment(),
            }
            rows.append(row)
        if not status.get("reported_by"):  # another source's conflict leaves the owner's sync be
            row["sync"] = "OutOfSync"
        row["error"] = status["error"]
    rows.sort(key=lambda r: (r["cluster"], r["name"]))


@click.command("switch-experiment")
@click.argument("name", required=False)
@click.option("--clear", is_flag=True, help="Forget the current experiment.")
@click.pass_context
def switch_experiment(ctx: click.Context, name: str | None, clear: bool) -> None:
    """Set (or show) the experiment used when a command names none."""
    if clear:
        workspace.set_current_experiment(None)
        click.echo("no current experiment")
        return
    if name is None:
        current = workspace.current_experiment()
        click.echo(current or "no current experiment")
        return
    cluster = cluster_named(cluster_for(ctx, None) if options(ctx).cluster else LOCAL_CLUSTER)
    candidates = set(experiment_names(cluster)) | set(workspace.applied())
    chosen = resolve_name(name, candidates, what="experiment")
    workspace.set_current_experiment(chosen)
    click.echo(f"current experiment: {chosen}")

