"""``logs PROCESS [EXP] [-f] [--tail N] [--since S]``."""

from __future__ import annotations

import sys

import click

from symphony import workspace
from symphony.clusters.base import Cluster, LogSource, unsupported
from symphony.commands.common import cluster_for, cluster_named
from symphony.errors import UserError
from symphony.names import resolve_name, resolve_process


def parse_since(text: str | None) -> float | None:
    """``90``, ``90s``, ``5m``, ``2h``, ``1d`` → seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except (ValueError, IndexError):
        raise UserError(f"--since {text}: expected a duration such as 30s, 5m, 2h") from None


def locate(ctx: click.Context, process: str, experiment: str | None) -> tuple[Cluster, str, str]:
    """(cluster, experiment, process key) from user input with abbreviations."""
    exp_hint = experiment or workspace.current_experiment()
    cluster = cluster_named(cluster_for(ctx, exp_hint))
    live = cluster.observe()
    names = sorted({o.experiment for o in live})
    if experiment is not None:
        exp = resolve_name(experiment, names, what="experiment")
    elif exp_hint is not None and exp_hint in names:
        exp = exp_hint
    else:
        holders = sorted({o.experiment for o in live if process in (o.key, o.name)})
        if len(holders) == 1:
            exp = holders[0]
        elif not names:
            raise UserError(f"no experiments on cluster {cluster.spec.name}")
        elif len(names) == 1:
            exp = names[0]
        else:
            raise UserError(
                f"which experiment? name it (symphony logs {process} EXPERIMENT) or run `symphony switch-experiment` "
                f"(experiments: {', '.join(names)})"
            )
    key = resolve_process(process, [o.key for o in live if o.experiment == exp])
    return cluster, exp, key


@click.command()
@click.argument("process")
@click.argument("experiment", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output.")
@click.option("--tail", type=click.IntRange(0, 10**9), default=None, help="Only the last N lines.")
@click.option("--since", default=None, help="Only output newer than this (30s, 5m, 2h).")
@click.pass_context
def logs(
    ctx: click.Context,
    process: str,
    experiment: str | None,
    follow: bool,
    tail: int | None,
    since: str | None,
) -> None:
    """A process's whole output (``group/process`` where names repeat)."""
    cluster, exp, key = locate(ctx, process, experiment)
    if not isinstance(cluster, LogSource):
        raise unsupported(cluster.spec, "logs")
    out = sys.stdout
    for line in cluster.logs(exp, key, follow=follow, tail=tail, since=parse_since(since)):
        out.write(line)
        if follow:
            out.flush()
