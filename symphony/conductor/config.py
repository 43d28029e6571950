"""``conductor.yaml``: the seed's format (``mode: conductor``) extended per DESIGN §4.

Relative paths are resolved against the config file's folder, so a conductor started
from anywhere finds the same storage. Every mistake is one line naming the file and the
field (exit code 2 through :class:`symphony.errors.UserError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from symphony.errors import Problem, UserError

STRATEGIES = ("binpack", "spread")


@dataclass(frozen=True)
class ConductorSettings:
    listen: str = "0.0.0.0:50051"
    http_listen: str = "127.0.0.1:8000"
    http_tls: bool = False  # serve the HTTP API over TLS with the conductor's server certificate
    storage_path: Path = Path("storage")
    cert_path: Path = Path("storage/certs")
    server_sans: tuple[str, ...] = ()
    allow_shared_node_cert: bool = False
    strategy: str = "binpack"
    # After a restart, known nodes get this long to reconnect before their jobs move.
    startup_grace_sec: float = 10.0
    # job output kept on disk, per job: files of this size, rotated, this many kept besides
    logs_max_bytes: int = 64 * 1024 * 1024
    logs_backups: int = 3
    log_level: str = "INFO"
    log_json: bool = False
    source: str = "<memory>"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


class ConfigReader:
    """Typed access to a nested mapping that reports ``FILE: a.b.c: problem``."""

    def __init__(self, file: str, data: dict[str, Any]):
        self.file = file
        self.data = data

    def fail(self, where: str, message: str) -> UserError:
        return UserError(Problem(f"{where}: {message}", file=self.file, line=self.line_of(where)))

    def line_of(self, where: str) -> int | None:
        """Best effort: the first line mentioning the field's last key."""
        key = where.rsplit(".", 1)[-1]
        try:
            for i, text in enumerate(Path(self.file).read_text().splitlines(), 1):
                if text.strip().startswith(f"{key}:"):
                    return i
        except OSError:
            return None
        return None

    def section(self, path: str, allowed: set[str]) -> dict[str, Any]:
        node: Any = self.data
        for part in path.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else None
            if node is None:
                node = {}
        if not isinstance(node, dict):
            raise self.fail(path, f"expected a mapping, got {type(node).__name__}")
        for key in node:
            if key not in allowed:
                raise self.fail(f"{path}.{key}", f"unknown field (expected one of: {', '.join(sorted(allowed))})")
        return node

    def get(self, sec: dict[str, Any], path: str, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in sec or sec[key] is None:
            return default
        value = sec[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(f"{path}.{key}", f"expected {kinds[0].__name__}, got a boolean")
        if not isinstance(value, kinds):
            raise self.fail(f"{path}.{key}", f"expected {kinds[0].__name__}, got {type(value).__name__}")
        return value


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Load a YAML file that must hold one mapping."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise UserError(f"{p}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise UserError(Problem(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(p), line=line)) from exc
    if not isinstance(data, dict):
        raise UserError(Problem("expected a mapping at the top level", file=str(p), line=1))
    return data


def check_listen(reader: ConfigReader, where: str, value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise reader.fail(where, f"expected HOST:PORT, got {value!r}")
    return value


def resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def load_conductor_settings(path: str | Path, data: dict[str, Any] | None = None) -> ConductorSettings:
    file = str(path)
    data = read_mapping(path) if data is None else data
    r = ConfigReader(file, data)
    base = Path(file).resolve().parent
    for key in data:
        if key not in {"mode", "logging", "conductor"}:
            raise r.fail(key, "unknown field (expected mode, logging, conductor)")
    log = r.section("logging", {"level", "json"})
    c = r.section("conductor", {"listen", "http", "storage", "tls", "scheduler", "startup_grace_sec", "logs"})
    logs = r.section("conductor.logs", {"max_bytes", "backups"})
    http = r.section("conductor.http", {"listen", "tls"})
    storage = r.section("conductor.storage", {"path"})
    tls = r.section("conductor.tls", {"cert_path", "server_sans", "allow_shared_node_cert"})
    sched = r.section("conductor.scheduler", {"strategy"})
    storage_path = resolve(base, r.get(storage, "conductor.storage", "path", str, "storage"))
    cert_default = str(storage_path / "certs")
    sans = r.get(tls, "conductor.tls", "server_sans", list, [])
    if not all(isinstance(s, str) for s in sans):
        raise r.fail("conductor.tls.server_sans", "expected a list of host names or IP addresses")
    strategy = r.get(sched, "conductor.scheduler", "strategy", str, "binpack")
    if strategy not in STRATEGIES:
        raise r.fail("conductor.scheduler.strategy", f"expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    grace = float(r.get(c, "conductor", "startup_grace_sec", (int, float), 10.0))
    if grace < 0:
        raise r.fail("conductor.startup_grace_sec", "must be >= 0")
    logs_max_bytes = r.get(logs, "conductor.logs", "max_bytes", int, 64 * 1024 * 1024)
    logs_backups = r.get(logs, "conductor.logs", "backups", int, 3)
    if logs_max_bytes < 0 or logs_backups < 0:
        raise r.fail("conductor.logs." + ("max_bytes" if logs_max_bytes < 0 else "backups"), "must be >= 0")
    return ConductorSettings(
        listen=check_listen(r, "conductor.listen", r.get(c, "conductor", "listen", str, "0.0.0.0:50051")),
        http_listen=check_listen(r, "conductor.http.listen", r.get(http, "conductor.http", "listen", str, "127.0.0.1:8000")),
        http_tls=r.get(http, "conductor.http", "tls", bool, False),
        storage_path=storage_path,
        cert_path=resolve(base, r.get(tls, "conductor.tls", "cert_path", str, cert_default)),
        server_sans=tuple(sans),
        allow_shared_node_cert=r.get(tls, "conductor.tls", "allow_shared_node_cert", bool, False),
        strategy=strategy,
        startup_grace_sec=grace,
        logs_max_bytes=logs_max_bytes,
        logs_backups=logs_backups,
        log_level=str(r.get(log, "logging", "level", str, "INFO")).upper(),
        log_json=r.get(log, "logging", "json", bool, False),
        source=file,
    )
