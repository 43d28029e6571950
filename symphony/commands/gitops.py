"""``watch``, ``sync`` and ``serve``: keep clusters converged to files, a folder or git."""

from __future__ import annotations

import os
import sys

import click

from symphony.cli import globals_of
from symphony.errors import ManifestError, OperationFailed, Problem, UserError
from symphony.gitops.config import ServerConfig, SourceConfig, load_config
from symphony.gitops.loop import DEFAULT_RESYNC
from symphony.gitops.ownership import RunBy
from symphony.gitops.runner import PassResult, SourceRunner
from symphony.gitops.service import make_runners, run_forever, run_once, stamp


def _log(line: str) -> None:
    click.echo(f"{stamp()} {line}")
    sys.stdout.flush()


resync_option = click.option(
    "--resync",
    type=click.FloatRange(min=0.05),
    default=DEFAULT_RESYNC,
    show_default=True,
    help="Seconds between full resyncs, which find and heal drift.",
)
allow_empty_option = click.option(
    "--allow-empty",
    is_flag=True,
    help="Let a source that yields no manifests prune everything it applied.",
)
adopt_option = click.option(
    "--adopt",
    is_flag=True,
    help="Take over experiments applied by hand or owned by a source that is not running "
    "(default: report them as conflicts and leave them alone).",
)
once_option = click.option(
    "--once",
    is_flag=True,
    help="One pass, then exit (1: a cluster failed; 2: a document is invalid or an "
    "experiment is owned by another source or was applied by hand).",
)
name_option = click.option(
    "--name", default=None, help="The source's id, recorded on what it applies (default: derived)."
)


def _finish_once(results: list[PassResult], runners: list[SourceRunner]) -> None:
    """Exit 1 when a cluster or the source failed, 2 when a document is invalid or an
    experiment is owned elsewhere (a conflict is bad input, like a duplicate name)."""
    lines: list[str] = []
    for runner, result in zip(runners, results, strict=True):
        lines += [line for n in result.failed for line in runner.experiments[n].errors]
        lines += list(result.messages)
    if any(not r.ok for r in results):
        raise OperationFailed([Problem(line) for line in lines or ["a pass failed"]])
    blocked = [line for r in runners for s in r.experiments.values() for line in s.errors]
    if blocked or lines:
        raise ManifestError([Problem(line) for line in [*blocked, *lines]])


def _check_name(name: str | None) -> None:
    from symphony.gitops.config import label_value

    if name is not None and not label_value(name):
        raise UserError(f"--name {name}: use lower-case letters, digits and '-' (≤ 63 characters)")


def _run(
    ctx: click.Context,
    configs: list[SourceConfig],
    *,
    resync: float,
    once: bool,
    run_by: RunBy,
    server: ServerConfig | None = None,
    banner: str = "",
) -> None:
    runners = make_runners(
        configs, log=_log, cluster_override=globals_of(ctx).cluster, run_by=run_by
    )
    if once:
        _finish_once(run_once(runners), runners)
        return
    resyncs = [c.resync or resync for c in configs]

    def ready(address: str | None) -> None:
        for runner, every in zip(runners, resyncs, strict=True):
            _log(
                f"{runner.id}: {runner.source.kind} {runner.source.target} (resync every {every:g}s)"
            )
        if address:
            _log(f"serving /status, /healthz and POST /hooks/git on http://{address}")
        if banner:
            _log(banner)

    run_forever(runners, resync=resyncs, server=server, on_ready=ready)
    _log("stopped")


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@resync_option
@allow_empty_option
@adopt_option
@once_option
@name_option
@click.pass_context
def watch(
    ctx: click.Context,
    paths: tuple[str, ...],
    resync: float,
    allow_empty: bool,
    adopt: bool,
    once: bool,
    name: str | None,
) -> None:
    """Reconcile on every change under PATH (files or folders), plus a periodic resync."""
    _check_name(name)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UserError(f"{missing[0]}: no such file or folder")
    config = SourceConfig(
        type="watch", name=name, paths=paths, allow_empty=allow_empty, resync=resync, adopt=adopt
    )
    _run(
        ctx, [config], resync=resync, once=once, run_by=RunBy("watch"),
        banner="watching; Ctrl-C stops",
    )  # fmt: skip


@click.command()
@click.option("--repo", required=True, help="A git URL or a local repository path.")
@click.option("--branch", default=None, help="The branch to follow (default: the remote's HEAD).")
@click.option(
    "--path",
    "subpath",
    default=".",
    show_default=True,
    help="The folder of manifests in the repository.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=5.0,
    show_default=True,
    help="Seconds between polls for new commits.",
)
@click.option("--no-shallow", is_flag=True, help="Fetch full history instead of --depth 1.")
@resync_option
@allow_empty_option
@adopt_option
@once_option
@name_option
@click.pass_context
def sync(
    ctx: click.Context,
    repo: str,
    branch: str | None,
    subpath: str,
    interval: float,
    no_shallow: bool,
    resync: float,
    allow_empty: bool,
    adopt: bool,
    once: bool,
    name: str | None,
) -> None:
    """Apply the manifests of the newest commit of a branch; report the revision live."""
    _check_name(name)
    from symphony.sources.git import local_repository_problem

    problem = local_repository_problem(repo)
    if problem is not None:
        raise UserError(f"--repo {problem}")
    config = SourceConfig(
        type="git", name=name, repo=repo, branch=branch, path=subpath, interval=interval,
        shallow=not no_shallow, resync=resync, allow_empty=allow_empty, adopt=adopt,
    )  # fmt: skip
    _run(
        ctx, [config], resync=resync, once=once, run_by=RunBy("sync"),
        banner="syncing; Ctrl-C stops",
    )  # fmt: skip


@click.command()
@click.option(
    "-c",
    "--config",
    "config_file",
    required=True,
    metavar="FILE",
    help="server.yaml: listen, sources.",
)
@click.option(
    "--listen", default=None, metavar="HOST:PORT", help="Override the file's listen address."
)
@once_option
@click.pass_context
def serve(ctx: click.Context, config_file: str, listen: str | None, once: bool) -> None:
    """Run every source of FILE at once, with /status, /healthz and POST /hooks/git."""
    config = load_config(config_file)
    if listen is not None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--listen {listen}: expected HOST:PORT")
        from dataclasses import replace

        config = replace(config, host=host, port=int(port))
    run_by = RunBy("serve", os.path.abspath(config_file))
    _run(ctx, list(config.sources), resync=config.resync, once=once, run_by=run_by, server=config)
