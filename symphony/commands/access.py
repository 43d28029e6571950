"""``visit`` (``vi``), ``exec`` (``x``), ``ssh`` and ``scp`` (``cp``)."""

from __future__ import annotations

import contextlib
import webbrowser

import click

from symphony import workspace
from symphony.clusters.base import FileCopier, ProcessAccess, ServiceLocator, unsupported
from symphony.commands.common import cluster_for, cluster_named, options
from symphony.commands.logs import locate
from symphony.errors import UserError
from symphony.names import resolve_name


@click.command()
@click.argument("service")
@click.argument("experiment", required=False)
@click.option("-u", "--url-only", is_flag=True, help="Print the URL instead of opening a browser.")
@click.pass_context
def visit(ctx: click.Context, service: str, experiment: str | None, url_only: bool) -> None:
    """Open an exposed service in a browser, or print its URL."""
    name = experiment or workspace.current_experiment()
    cluster = cluster_named(cluster_for(ctx, name))
    live = sorted({o.experiment for o in cluster.observe()})
    if name is None:
        if len(live) != 1:
            raise UserError(f"which experiment? name it (experiments: {', '.join(live) or 'none'})")
        name = live[0]
    exp = resolve_name(name, live, what="experiment")
    if not isinstance(cluster, ServiceLocator):
        raise unsupported(cluster.spec, "visit")
    url = cluster.url(exp, service)
    if url_only or not webbrowser.open(url):
        click.echo(url)
    else:
        click.echo(f"opened {url}")
    keep_alive = getattr(cluster, "wait_forwards", None)  # a port-forward lives as long as we do
    if callable(keep_alive):
        with contextlib.suppress(KeyboardInterrupt):
            keep_alive()


@click.command("exec")
@click.argument("process")
@click.argument("experiment", required=False)
@click.pass_context
def exec_(ctx: click.Context, process: str, experiment: str | None) -> None:
    """Run a command with a process's environment and folder: exec PROCESS [EXP] -- CMD…"""
    argv = options(ctx).passthrough
    if not argv:
        raise UserError("give the command after --, e.g. symphony exec learner -- env")
    cluster, exp, key = locate(ctx, process, experiment)
    if not isinstance(cluster, ProcessAccess):
        raise unsupported(cluster.spec, "exec")
    ctx.exit(cluster.exec(exp, key, argv))


@click.command()
@click.argument("process")
@click.argument("experiment", required=False)
@click.pass_context
def ssh(ctx: click.Context, process: str, experiment: str | None) -> None:
    """Attach your terminal to a process."""
    cluster, exp, key = locate(ctx, process, experiment)
    if not isinstance(cluster, ProcessAccess):
        raise unsupported(cluster.spec, "ssh")
    ctx.exit(cluster.ssh(exp, key))


@click.command()
@click.argument("source")
@click.argument("destination")
@click.argument("experiment", required=False)
@click.pass_context
def scp(ctx: click.Context, source: str, destination: str, experiment: str | None) -> None:
    """Copy to or from a process's place: ``[group/]process:/path``."""
    name = experiment or workspace.current_experiment()
    cluster = cluster_named(cluster_for(ctx, name))
    if not isinstance(cluster, FileCopier):
        raise unsupported(cluster.spec, "scp")
    if name is None:
        raise UserError(
            "which experiment? name it as the third argument or run `symphony switch-experiment`"
        )
    cluster.scp(source, destination, experiment=name)
