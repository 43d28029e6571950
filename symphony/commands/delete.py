"""``delete`` (``d``) and ``delete-batch`` (``db``)."""

from __future__ import annotations

import re

import click

from symphony import workspace
from symphony.clusters.base import Cluster
from symphony.commands.common import cluster_for, cluster_named, confirm, experiment_names
from symphony.errors import UserError
from symphony.names import resolve_name


def _remove(cluster: Cluster, names: list[str], *, dry_run: bool, force: bool) -> None:
    if not names:
        click.echo("nothing to delete")
        return
    listing = ", ".join(names)
    if dry_run:
        for name in names:
            click.echo(f"would delete experiment {name} ({cluster.spec.name})")
        return
    if not confirm(f"Delete {len(names)} experiment(s): {listing}?", force=force):
        click.echo("nothing deleted")
        return
    for name in names:
        cluster.delete_experiment(name)
        click.echo(f"experiment {name} ({cluster.spec.name}): deleted")
    workspace.record_applied([], removed=names)
    if workspace.current_experiment() in names:
        workspace.set_current_experiment(None)


@click.command()
@click.argument("experiments", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.pass_context
def delete(ctx: click.Context, experiments: tuple[str, ...], force: bool, dry_run: bool) -> None:
    """Stop and remove experiments (the current one when none is named)."""
    current = workspace.current_experiment()
    given = list(experiments) or ([current] if current else [])
    if not given:
        raise UserError("name the experiment(s) to delete")
    by_cluster: dict[str, list[str]] = {}
    for name in given:
        by_cluster.setdefault(cluster_for(ctx, name), []).append(name)
    for cluster_name, names in by_cluster.items():
        cluster = cluster_named(cluster_name)
        live = experiment_names(cluster)
        chosen = sorted({resolve_name(n, live, what="experiment") for n in names})
        _remove(cluster, chosen, dry_run=dry_run, force=force)


@click.command("delete-batch")
@click.argument("patterns", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.pass_context
def delete_batch(ctx: click.Context, patterns: tuple[str, ...], force: bool, dry_run: bool) -> None:
    """Delete every experiment whose name a regular expression matches (from its start)."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise UserError(f"bad regular expression {pattern!r}: {exc}") from None
    cluster = cluster_named(cluster_for(ctx, None))
    chosen = [n for n in experiment_names(cluster) if any(r.match(n) for r in compiled)]
    _remove(cluster, chosen, dry_run=dry_run, force=force)
