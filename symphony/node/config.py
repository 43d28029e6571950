"""``node.yaml``: the seed's format (``mode: node``) extended per DESIGN §4.

Relative paths resolve against the config file's folder. Mistakes are one line
naming the file and field (exit code 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from symphony.errors import Problem, UserError


@dataclass(frozen=True)
class NodeSettings:
    node_id: str
    conductor_addr: str = "localhost:50051"
    groups: tuple[str, ...] = ()
    capacities_total: dict[str, float] = field(default_factory=dict)
    heartbeat_sec: float = 3.0
    ca_file: Path = Path("storage/certs/ca.pem")
    cert_file: Path = Path("storage/certs/node-client.pem")
    key_file: Path = Path("storage/certs/node-client.key")
    server_name: str | None = None  # TLS name to check on the conductor's certificate
    advertise_address: str = "127.0.0.1"
    work_dir: Path = Path("node-work")
    reconnect_min_sec: float = 0.5
    reconnect_max_sec: float = 5.0
    stop_timeout_sec: float = 10.0
    log_level: str = "INFO"
    log_json: bool = False
    source: str = "<memory>"


def _fail(file: str, where: str, message: str) -> UserError:
    line = None
    key = where.rsplit(".", 1)[-1]
    try:
        for i, text in enumerate(Path(file).read_text().splitlines(), 1):
            if text.strip().startswith(f"{key}:"):
                line = i
                break
    except OSError:
        pass
    return UserError(Problem(f"{where}: {message}", file=file, line=line))


def read_mapping(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise UserError(f"{p}: cannot read config file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(Problem(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(p),
                                line=mark.line + 1 if mark is not None else None)) from exc
    if not isinstance(data, dict):
        raise UserError(Problem("expected a mapping at the top level", file=str(p), line=1))
    return data


def _section(file: str, data: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(file, where, f"expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise _fail(file, f"{where}.{key}", f"unknown field (expected one of: {', '.join(sorted(allowed))})")
    return data


def _number(file: str, where: str, value: Any, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(file, where, f"expected a number, got {value!r}")
    if value < minimum:
        raise _fail(file, where, f"must be >= {minimum:g}, got {value!r}")
    return float(value)


def _string(file: str, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(file, where, f"expected a non-empty string, got {value!r}")
    return value


NODE_FIELDS = {
    "node_id", "conductor_addr", "groups", "capacities_total", "heartbeat_sec", "tls",
    "advertise_address", "work_dir", "reconnect", "stop_timeout_sec",
}


def load_node_settings(path: str | Path, data: dict[str, Any] | None = None) -> NodeSettings:
    file = str(path)
    data = read_mapping(path) if data is None else data
    base = Path(file).resolve().parent

    def res(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    for key in data:
        if key not in {"mode", "logging", "node"}:
            raise _fail(file, key, "unknown field (expected mode, logging, node)")
    log = _section(file, data.get("logging"), "logging", {"level", "json"})
    n = _section(file, data.get("node"), "node", NODE_FIELDS)
    tls = _section(file, n.get("tls"), "node.tls", {"ca_file", "cert_file", "key_file", "server_name"})
    rec = _section(file, n.get("reconnect"), "node.reconnect", {"min_sec", "max_sec"})
    if "node_id" not in n:
        raise _fail(file, "node", "missing required field 'node_id'")
    node_id = _string(file, "node.node_id", n["node_id"])
    groups = n.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise _fail(file, "node.groups", "expected a list of group names")
    caps_raw = n.get("capacities_total") or {}
    if not isinstance(caps_raw, dict):
        raise _fail(file, "node.capacities_total", "expected a mapping of class: amount")
    caps = {str(k): _number(file, f"node.capacities_total.{k}", v, minimum=0) for k, v in caps_raw.items()}
    addr = _string(file, "node.conductor_addr", n.get("conductor_addr", "localhost:50051"))
    if not addr.rpartition(":")[2].isdigit():
        raise _fail(file, "node.conductor_addr", f"expected HOST:PORT, got {addr!r}")
    certs_dir = "storage/certs"
    rmin = _number(file, "node.reconnect.min_sec", rec.get("min_sec", 0.5), minimum=0.01)
    rmax = _number(file, "node.reconnect.max_sec", rec.get("max_sec", 5.0), minimum=rmin)
    return NodeSettings(
        node_id=node_id,
        conductor_addr=addr,
        groups=tuple(groups),
        capacities_total=caps,
        heartbeat_sec=_number(file, "node.heartbeat_sec", n.get("heartbeat_sec", 3.0), minimum=0.05),
        ca_file=res(_string(file, "node.tls.ca_file", tls.get("ca_file", f"{certs_dir}/ca.pem"))),
        cert_file=res(_string(file, "node.tls.cert_file", tls.get("cert_file", f"{certs_dir}/node-client.pem"))),
        key_file=res(_string(file, "node.tls.key_file", tls.get("key_file", f"{certs_dir}/node-client.key"))),
        server_name=_string(file, "node.tls.server_name", tls["server_name"]) if tls.get("server_name") else None,
        advertise_address=_string(file, "node.advertise_address", n.get("advertise_address", "127.0.0.1")),
        work_dir=res(_string(file, "node.work_dir", n.get("work_dir", f"node-work/{node_id}"))),
        reconnect_min_sec=rmin,
        reconnect_max_sec=rmax,
        stop_timeout_sec=_number(file, "node.stop_timeout_sec", n.get("stop_timeout_sec", 10.0), minimum=0),
        log_level=str(log.get("level") or "INFO").upper(),
        log_json=bool(log.get("json", False)),
        source=file,
    )
