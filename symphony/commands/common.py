"""What several commands share: loading, cluster lookup, printing."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from symphony import known_clusters, workspace
from symphony.cli import Globals, globals_of
from symphony.clusters.base import Cluster
from symphony.errors import UserError
from symphony.manifests import load_paths
from symphony.model import LOCAL_CLUSTER, ManifestSet, ObservedProcess, ProcessState
from symphony.names import resolve_name
from symphony.reconciler import Reconciler


def options(ctx: click.Context) -> Globals:
    return globals_of(ctx)


def load(ctx: click.Context, paths: Sequence[str]) -> ManifestSet:
    """Load manifests; ``--cluster`` overrides theirs (and is checked as the flag it is)."""
    override = options(ctx).cluster
    manifests = load_paths(list(paths), cluster_override=override)
    if override is not None:
        known = known_clusters.all_clusters(manifests.clusters)
        if override not in known:
            raise UserError(
                f"--cluster {override}: unknown cluster (known: {', '.join(sorted(known))})"
            )
    if not (manifests.experiments or manifests.deployments or manifests.clusters):
        raise UserError(f"no documents in {', '.join(paths)}: nothing to do")
    return manifests


def make_reconciler() -> Reconciler:
    return Reconciler()


def cluster_named(name: str, reconciler: Reconciler | None = None) -> Cluster:
    spec = known_clusters.resolve(name)
    return (reconciler or make_reconciler()).cluster(spec)


def cluster_for(ctx: click.Context, experiment: str | None) -> str:
    """``--cluster`` wins; else where the experiment (or the one it abbreviates) was
    applied; else ``local``."""
    given = options(ctx).cluster
    if given:
        return given
    if experiment:
        records = workspace.applied()
        if experiment in records:
            return records[experiment].cluster
        matches = sorted(n for n in records if n.startswith(experiment))
        if len({records[n].cluster for n in matches}) == 1:
            return records[matches[0]].cluster
        if matches:  # prefixes on several clusters: let the user say which
            resolve_name(experiment, matches, what="experiment")
    return LOCAL_CLUSTER


def experiment_names(cluster: Cluster) -> list[str]:
    return sorted({o.experiment for o in cluster.observe()})


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def state_text(observed: ObservedProcess, *, now: float | None = None) -> str:
    """``running: 23.2h``, ``pending``, ``crash-loop``, ``exited: 1``, ``completed`` …"""
    state = observed.state
    if state is ProcessState.RUNNING:
        if observed.started_at:
            return (
                f"running: {human_duration(max(0.0, (now or time.time()) - observed.started_at))}"
            )
        return "running"
    if state is ProcessState.EXITED:
        return f"exited: {observed.exit_code if observed.exit_code is not None else '?'}"
    return str(state)


def emit(
    ctx: click.Context,
    rows: list[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    empty: str = "nothing to show",
) -> None:
    """Print ``rows`` as a table (``columns``: (key, header)), or as JSON/YAML with every key."""
    fmt = options(ctx).output
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(rows, sort_keys=False), nl=False)
        return
    if not rows:
        click.echo(empty, err=True)
        return
    print_table(
        [[str(r.get(k, "") if r.get(k) is not None else "") for k, _ in columns] for r in rows],
        [h for _, h in columns],
    )


def print_table(cells: Iterable[Sequence[str]], headers: Sequence[str]) -> None:
    """Plain aligned columns, like the seed's ``symphony p`` (no box drawing: easy to grep)."""
    body = [list(r) for r in cells]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = sys.stdout
    for row in [list(headers), *body]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n")


def confirm(prompt: str, *, force: bool) -> bool:
    """Ask on a terminal unless ``-f``; without a terminal, refuse unless ``-f``."""
    if force:
        return True
    if not sys.stdin.isatty():
        raise UserError(f"{prompt} — refusing without a terminal to confirm; pass -f to go ahead")
    return click.confirm(prompt, default=False)


def progress_printer() -> Callable[[list[ObservedProcess]], None]:
    last: dict[str, str] = {}

    def show(observed: list[ObservedProcess]) -> None:
        for o in observed:
            text = state_text(o)
            short = text.split(":")[0]
            label = f"{o.experiment}/{o.key}"
            if last.get(label) != short:
                last[label] = short
                click.echo(f"{label}: {text}", err=True)

    return show
