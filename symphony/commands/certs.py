"""``symphony certs init`` / ``symphony certs issue-node``: the conductor's little CA."""

from __future__ import annotations

from pathlib import Path

import click

from symphony import certs as certs_mod


@click.group("certs", help="Make a CA, the conductor's server certificate and per-node client certificates.")
def certs() -> None:
    pass


@certs.command("init", help="Create the CA and server certificate in --cert-path (keeps existing files).")
@click.option("--cert-path", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--san", "sans", multiple=True, help="Extra DNS name or IP for the server certificate (repeatable).")
@click.option("--no-shared-node-cert", is_flag=True, help="Do not create the seed's shared node-client.pem/.key.")
def init(cert_path: Path, sans: tuple[str, ...], no_shared_node_cert: bool) -> None:
    written = certs_mod.ensure_conductor_certs(
        cert_path, sans=(*certs_mod.DEFAULT_SANS, *sans), shared_node_cert=not no_shared_node_cert
    )
    if not written:
        click.echo(f"{cert_path}: certificates already present, nothing written")
    for path in written:
        click.echo(f"wrote {path}")


@certs.command("issue-node", help="Issue a client certificate whose subject is NODE_ID.")
@click.argument("node_id")
@click.option("--cert-path", required=True, type=click.Path(file_okay=False, path_type=Path), help="The CA's folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Where to write NODE_ID.pem/.key and ca.pem.")
def issue_node(node_id: str, cert_path: Path, out: Path) -> None:
    for path in certs_mod.issue_node(cert_path, node_id, out):
        click.echo(f"wrote {path}")
