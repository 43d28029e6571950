"""Long-running daemons: ``symphony conductor``, ``symphony node``, ``symphony --config FILE``;
and ``symphony nodes``, the conductor's node list over its HTTP API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from symphony.errors import OperationFailed, UserError

MODES = ("conductor", "node")
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _setup_logging(level: str, *, as_json: bool = False) -> None:
    name = level.upper()
    if name not in LEVELS:
        raise UserError(f"--log-level {level}: expected one of {', '.join(LEVELS)}")
    fmt = (
        '{"ts": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", "msg": "%(message)s"}'
        if as_json else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=getattr(logging, name), format=fmt, stream=sys.stderr, force=True)
    if name != "DEBUG":
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def run_from_config(path: str, *, mode: str | None = None, log_level: str | None = None) -> None:
    """The seed's ``symphony --config FILE``: the file's ``mode:`` picks conductor or node."""
    from symphony.conductor.config import read_mapping

    data = read_mapping(path)
    chosen = mode or data.get("mode")
    if chosen not in MODES:
        where = "--mode" if mode else f"{path}: mode"
        raise UserError(f"{where}: expected 'conductor' or 'node', got {chosen!r}")
    if chosen == "conductor":
        _run_conductor(path, data, log_level)
    else:
        _run_node(path, data, log_level)


def _run_conductor(path: str, data: dict[str, Any], log_level: str | None) -> None:
    from symphony.conductor import server
    from symphony.conductor.config import load_conductor_settings

    settings = load_conductor_settings(path, data)
    _setup_logging(log_level or settings.log_level, as_json=settings.log_json)
    server.run(settings)


def _run_node(path: str, data: dict[str, Any], log_level: str | None) -> None:
    from symphony.node import agent
    from symphony.node.config import load_node_settings

    settings = load_node_settings(path, data)
    _setup_logging(log_level or settings.log_level, as_json=settings.log_json)
    agent.run(settings)


def _check_mode(path: str, data: dict[str, Any], expected: str) -> None:
    found = data.get("mode", expected)
    if found != expected:
        raise UserError(f"{path}: mode is {found!r}, but `symphony {expected}` needs mode: {expected}")


@click.command("conductor", help="Run a conductor (gRPC for nodes, HTTP API) from a conductor.yaml.")
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False), help="conductor.yaml")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR")
def conductor(config_file: str, log_level: str | None) -> None:
    from symphony.conductor.config import read_mapping

    data = read_mapping(config_file)
    _check_mode(config_file, data, "conductor")
    _run_conductor(config_file, data, log_level)


@click.command("node", help="Run a node agent that connects out to a conductor, from a node.yaml.")
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False), help="node.yaml")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR")
def node(config_file: str, log_level: str | None) -> None:
    from symphony.node.config import read_mapping

    data = read_mapping(config_file)
    _check_mode(config_file, data, "node")
    _run_node(config_file, data, log_level)


DEFAULT_URL = "http://127.0.0.1:8000"


def _token(token: str | None, token_file: str | None) -> str:
    if token:
        return token
    candidates = [Path(token_file).expanduser()] if token_file else [Path("storage/api-token")]
    for path in candidates:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return value
    shown = ", ".join(str(p) for p in candidates)
    raise UserError(f"no API token: pass --token or --token-file (looked in {shown})")


def _fmt_caps(used: dict[str, float], total: dict[str, float]) -> str:
    return ", ".join(f"{k} {used.get(k, 0):g}/{v:g}" for k, v in sorted(total.items())) or "-"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024:
            return f"{n:.0f}{unit}"
        n /= 1024
    return f"{n:.0f}P"


def _node_row(n: dict[str, Any]) -> list[str]:
    hb = n.get("heartbeat") or {}
    cpu = hb.get("cpu", {}).get("total_percent")
    mem = hb.get("memory", {})
    total_mem = float(n.get("memory", {}).get("total_bytes", 0) or 0)
    gpus = hb.get("gpus") or []
    gpu = ", ".join(f"{g.get('index', 0)}:{g.get('util_percent', 0):.0f}%" for g in gpus) or (
        f"{len(n.get('gpus', []))} GPU" if n.get("gpus") else "-"
    )
    age = n.get("last_heartbeat_age")
    return [
        n["node_id"], n["state"], ",".join(n.get("groups", [])) or "-",
        _fmt_caps(n.get("capacities_used", {}), n.get("capacities_total", {})),
        f"{cpu:.0f}%" if cpu is not None else "-",
        f"{_fmt_bytes(float(mem.get('used_bytes', 0)))}/{_fmt_bytes(total_mem)}" if mem else "-",
        gpu,
        f"{age:.1f}s ago" if age is not None else "-",
    ]


def _cluster_nodes(name: str) -> list[dict[str, Any]]:
    from symphony import known_clusters
    from symphony.clusters.conductor import ConductorCluster
    from symphony.model import ClusterType

    spec = known_clusters.resolve(name)
    if spec.type is not ClusterType.CONDUCTOR:
        raise UserError(f"cluster {name} is a {spec.type} cluster; `symphony nodes` lists a conductor's nodes")
    return ConductorCluster(spec).nodes()


@click.command("nodes", help="List the conductor's nodes: groups, capacity used/total, CPU/RAM/GPU, last heartbeat. "
               "With --cluster NAME, the url, token and CA come from that conductor Cluster.")
@click.option("--url", default=DEFAULT_URL, show_default=True, envvar="SYMPHONY_CONDUCTOR_URL", help="The conductor's HTTP API.")
@click.option("--token", default=None, envvar="SYMPHONY_TOKEN", help="API token (default: read --token-file).")
@click.option("--token-file", default=None, help="File holding the API token (default: ./storage/api-token).")
@click.pass_context
def nodes(ctx: click.Context, url: str, token: str | None, token_file: str | None) -> None:
    import httpx

    from symphony.cli import globals_of

    cluster = globals_of(ctx).cluster
    if cluster:  # --cluster NAME: the Cluster's url, token_file and ca_file
        data = _cluster_nodes(cluster)
    else:
        headers = {"Authorization": f"Bearer {_token(token, token_file)}"}
        try:
            resp = httpx.get(url.rstrip("/") + "/nodes", headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            raise OperationFailed(f"{url}: cannot reach the conductor: {exc}") from exc
        if resp.status_code == 401:
            raise OperationFailed(f"{url}: the conductor refused the API token")
        if resp.status_code != 200:
            raise OperationFailed(f"{url}/nodes: HTTP {resp.status_code}: {resp.text[:200]}")
        data = resp.json()
    output = globals_of(ctx).output
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    if output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False))
        return
    header = ["NODE", "STATE", "GROUPS", "CAPACITY (used/total)", "CPU", "RAM", "GPU", "HEARTBEAT"]
    rows = [header, *(_node_row(n) for n in data)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
