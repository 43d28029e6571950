"""``apply``, ``diff`` and ``validate``."""

from __future__ import annotations

import sys
from typing import Any

import click

from symphony import known_clusters
from symphony.commands.common import load, make_reconciler, options, progress_printer
from symphony.commands.options import paths_option
from symphony.errors import ManifestError
from symphony.manifests import check_cluster_refs
from symphony.reconciler import ClusterPlan, apply_manifests, workloads


def plan_rows(plans: list[ClusterPlan]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for item in plans:
        for action, processes in (
            ("create", item.plan.create),
            ("update", item.plan.update),
            ("unchanged", item.plan.unchanged),
        ):
            rows += [
                {
                    "action": action,
                    "experiment": p.experiment,
                    "process": p.key,
                    "cluster": item.spec.name,
                }
                for p in processes
            ]
        rows += [
            {
                "action": "delete",
                "experiment": o.experiment,
                "process": o.key,
                "cluster": item.spec.name,
            }
            for o in item.plan.delete
        ]
    order = {"create": 0, "update": 1, "delete": 2, "unchanged": 3}
    return sorted(
        rows, key=lambda r: (r["cluster"], r["experiment"], order[r["action"]], r["process"])
    )


SIGNS = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}


def print_plan(ctx: click.Context, plans: list[ClusterPlan]) -> None:
    rows = plan_rows(plans)
    if options(ctx).output != "table":
        from symphony.commands.common import emit

        emit(ctx, rows, [])
        return
    for row in rows:
        click.echo(
            f"{SIGNS[row['action']]} {row['experiment']}/{row['process']} ({row['action']}, cluster {row['cluster']})"
        )
    click.echo(summary(plans))


def summary(plans: list[ClusterPlan]) -> str:
    totals = {"create": 0, "update": 0, "delete": 0, "unchanged": 0}
    for item in plans:
        totals["create"] += len(item.plan.create)
        totals["update"] += len(item.plan.update)
        totals["delete"] += len(item.plan.delete)
        totals["unchanged"] += len(item.plan.unchanged)
    return ", ".join(f"{n} {k}" for k, n in totals.items())


@click.command()
@paths_option
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until every process runs (or finished as its restart policy allows).",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True, help="Seconds --wait waits."
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete managed experiments absent from these manifests (on the clusters they use).",
)
@click.pass_context
def apply(
    ctx: click.Context,
    paths: tuple[str, ...],
    dry_run: bool,
    wait: bool,
    timeout: float,
    prune: bool,
) -> None:
    """Validate everything, then converge the clusters to the manifests."""
    manifests = load(ctx, paths)
    reconciler = make_reconciler()
    plans = apply_manifests(manifests, reconciler=reconciler, prune=prune, dry_run=dry_run)
    if dry_run:
        print_plan(ctx, plans)
        return
    for item in plans:
        for e in item.desired:
            p = item.plan
            counts = [
                (len([x for x in p.create if x.experiment == e.name]), "created"),
                (len([x for x in p.update if x.experiment == e.name]), "updated"),
                (len([x for x in p.delete if x.experiment == e.name]), "deleted"),
                (len([x for x in p.unchanged if x.experiment == e.name]), "unchanged"),
            ]
            text = ", ".join(f"{n} {w}" for n, w in counts if n) or "no processes"
            click.echo(f"experiment {e.name} ({item.spec.name}): {text}")
        for name in sorted(
            {o.experiment for o in item.plan.delete} - {e.name for e in item.desired}
        ):
            click.echo(f"experiment {name} ({item.spec.name}): pruned")
    for spec in manifests.clusters:
        click.echo(f"cluster {spec.name} ({spec.type}): remembered")
    if wait:
        reconciler.wait(
            plans, timeout=timeout, on_progress=progress_printer() if sys.stderr.isatty() else None
        )
        click.echo("all processes are running or finished")


@click.command()
@paths_option
@click.option(
    "--prune", is_flag=True, help="Also show managed experiments that apply --prune would delete."
)
@click.pass_context
def diff(ctx: click.Context, paths: tuple[str, ...], prune: bool) -> None:
    """What apply would do, per process. Exit 0: nothing would change; 1: something would."""
    manifests = load(ctx, paths)
    plans = apply_manifests(manifests, reconciler=make_reconciler(), prune=prune, dry_run=True)
    print_plan(ctx, plans)
    if any(not p.plan.empty for p in plans):
        ctx.exit(1)


@click.command()
@paths_option
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check manifests (schema and rules) without touching any cluster."""
    manifests = load(ctx, paths)
    problems = check_cluster_refs(manifests, known_clusters.all_clusters(manifests.clusters))
    if problems:
        raise ManifestError(problems)
    workloads(manifests)  # names shared by an Experiment and a Deployment
    count = len(manifests.experiments) + len(manifests.deployments) + len(manifests.clusters)
    processes = sum(len(e.processes) for e in manifests.experiments)
    click.echo(
        f"valid: {count} document(s), {len(manifests.experiments)} experiment(s) with {processes} process(es)"
    )
