"""Click options several commands share (kept light: no Symphony imports)."""

from __future__ import annotations

import click

paths_option = click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    metavar="PATH",
    help="A manifest file, a folder of *.yaml/*.yml, or - for stdin (repeatable).",
)
