"""The ``symphony`` command line: parsing and printing only.

Commands live in :mod:`symphony.commands` and are imported lazily, so that
``symphony status`` does not pay for gRPC, FastAPI or Kubernetes imports.
Global options (``--cluster``, ``-o``) are accepted before or after the command
name, like kubectl.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from symphony.errors import UserError

# command name -> "module:attribute"; aliases map to the same target.
COMMANDS: dict[str, str] = {
    "apply": "symphony.commands.apply:apply",
    "diff": "symphony.commands.apply:diff",
    "validate": "symphony.commands.apply:validate",
    "status": "symphony.commands.status:status",
    "list-experiments": "symphony.commands.status:list_experiments",
    "switch-experiment": "symphony.commands.status:switch_experiment",
    "logs": "symphony.commands.logs:logs",
    "delete": "symphony.commands.delete:delete",
    "delete-batch": "symphony.commands.delete:delete_batch",
    "visit": "symphony.commands.access:visit",
    "exec": "symphony.commands.access:exec_",
    "ssh": "symphony.commands.access:ssh",
    "scp": "symphony.commands.access:scp",
    "schedule": "symphony.commands.schedule:schedule",
    "render": "symphony.commands.render:render",
    "certs": "symphony.commands.certs:certs",
    "conductor": "symphony.commands.daemons:conductor",
    "node": "symphony.commands.daemons:node",
    "nodes": "symphony.commands.daemons:nodes",
    "watch": "symphony.commands.gitops:watch",
    "sync": "symphony.commands.gitops:sync",
    "serve": "symphony.commands.gitops:serve",
}

ALIASES: dict[str, str] = {
    "process": "status",
    "p": "status",
    "list-processes": "status",
    "lsp": "status",
    "ls": "list-experiments",
    "lse": "list-experiments",
    "se": "switch-experiment",
    "e": "switch-experiment",
    "log": "logs",
    "l": "logs",
    "d": "delete",
    "db": "delete-batch",
    "vi": "visit",
    "x": "exec",
    "cp": "scp",
}

OUTPUT_FORMATS = ("table", "json", "yaml")


@dataclass
class Globals:
    """Options that every command may read from ``ctx.obj``."""

    cluster: str | None = None
    output: str = "table"
    output_given: bool = False
    passthrough: list[str] | None = None  # what followed "--" (exec's command)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(ALIASES.get(cmd_name, cmd_name))
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("symphony"):
                return None
            raise
        command: click.Command = getattr(module, attr)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else name), cmd, rest


def _pop_globals(argv: Sequence[str]) -> tuple[list[str], Globals]:
    """Take ``--cluster`` and ``-o/--output`` from anywhere before ``--``."""
    g = Globals()
    out: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        if arg == "--":
            g.passthrough = args[i + 1 :]
            break
        value: str | None = None
        which = None
        for flag, name in (("--cluster", "cluster"), ("--output", "output"), ("-o", "output")):
            if arg == flag:
                if i + 1 >= len(args) or args[i + 1] == "--":
                    raise click.UsageError(f"{flag} needs a value")
                which, value = name, args[i + 1]
                i += 1
                break
            if flag.startswith("--") and arg.startswith(flag + "="):
                which, value = name, arg.split("=", 1)[1]
                break
            if flag == "-o" and arg.startswith("-o") and len(arg) > 2 and not arg.startswith("--"):
                which, value = name, arg[2:].removeprefix("=")
                break
        if which == "cluster":
            g.cluster = value
        elif which == "output":
            if value not in OUTPUT_FORMATS:
                raise click.UsageError(
                    f"-o {value}: unknown output format (choose from {', '.join(OUTPUT_FORMATS)})"
                )
            g.output, g.output_given = value or "table", True
        else:
            out.append(arg)
        i += 1
    return out, g


HELP = """Symphony runs distributed programs from declarative YAML manifests.

\b
Global options, accepted before or after the command name:
  --cluster NAME        the cluster to use (default: from the manifest, else "local")
  -o table|json|yaml    output format of listings
"""


@click.group(cls=LazyGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    default=None,
    help="Run a conductor or node from FILE (mode: read from the file).",
)
@click.option(
    "--mode", default=None, help="With --config: override the file's mode (conductor | node)."
)
@click.option("--log-level", default=None, help="With --config: log level (DEBUG, INFO, ...).")
@click.version_option(package_name="symphony", prog_name="symphony")
@click.pass_context
def cli(
    ctx: click.Context, config_file: str | None, mode: str | None, log_level: str | None
) -> None:
    if config_file is not None:
        # The seed's entry point: `symphony --config FILE` runs a conductor or node.
        from symphony.commands.daemons import run_from_config

        run_from_config(config_file, mode=mode, log_level=log_level)
        ctx.exit(0)


cli.invoke_without_command = True
cli.no_args_is_help = False


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args, g = _pop_globals(args)
    except click.UsageError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    if not args:
        args = ["--help"]
    try:
        code = cli.main(args=args, prog_name="symphony", obj=g, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C, e.g. ending `logs -f`
            sys.exit(130)
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # the last line of defence: no traceback reaches a user
        if os.environ.get("SYMPHONY_DEBUG"):
            raise
        click.echo(
            f"error: {type(exc).__name__}: {exc} (a bug in Symphony; "
            "run with SYMPHONY_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)


def globals_of(ctx: click.Context) -> Globals:
    obj: Any = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


if __name__ == "__main__":
    # Run through the imported module so commands share its Globals class.
    from symphony.cli import main as _main

    _main()
