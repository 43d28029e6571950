"""Where the tmux cluster keeps a process's files, and reading/writing them.

``state_home()/tmux/<socket>/<experiment>/`` holds, per process, the
supervisor's spec (``<safe>.spec.json``), its state (``<safe>.state.json``)
and its output (``<safe>.log`` and rotated ``<safe>.log.N``), where ``<safe>``
is the process key with ``/`` turned into ``__`` (names are DNS labels, so
this cannot collide), plus ``ports.json`` for the experiment. Nothing here is
a cache that tmux does not also hold, except the logs themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PORTS_FILE = "ports.json"
_BACKUP = re.compile(r"\.log\.(\d+)$")


def safe_name(key: str) -> str:
    """``group/process`` → ``group__process``: a file name for a process key."""
    return key.replace("/", "__")


def key_of(safe: str) -> str:
    return safe.replace("__", "/")


@dataclass(frozen=True)
class ProcessFiles:
    folder: Path
    key: str

    @property
    def stem(self) -> str:
        return safe_name(self.key)

    @property
    def spec(self) -> Path:
        return self.folder / f"{self.stem}.spec.json"

    @property
    def state(self) -> Path:
        return self.folder / f"{self.stem}.state.json"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.stem}.log"

    def log_files(self) -> list[Path]:
        """Rotated backups oldest first (``.log.3``, ``.log.2``, ``.log.1``), then the live log."""
        backups: list[tuple[int, Path]] = []
        prefix = f"{self.stem}.log."
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith(prefix):
                match = _BACKUP.search(name)
                if match and name == f"{prefix}{match.group(1)}":
                    backups.append((int(match.group(1)), self.folder / name))
        files = [path for _, path in sorted(backups, reverse=True)]
        if self.log.exists():
            files.append(self.log)
        return files

    def clear(self, *, keep_log: bool) -> None:
        """Forget a previous run: its state always, its output unless ``keep_log``."""
        paths = [self.state, self.spec]
        if not keep_log:
            paths.extend(self.log_files())
        for path in paths:
            path.unlink(missing_ok=True)


class ExperimentFolder:
    """The folder of one experiment on one socket."""

    def __init__(self, root: Path, experiment: str) -> None:
        self.path = root / experiment
        self.experiment = experiment

    def process(self, key: str) -> ProcessFiles:
        return ProcessFiles(self.path, key)

    def ensure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def read_ports(self) -> dict[str, int]:
        data = read_json(self.path / PORTS_FILE)
        return _ports(data)

    def write_ports(self, ports: dict[str, int]) -> None:
        write_json(self.path / PORTS_FILE, ports)

    def remove(self, *, keep_logs: bool) -> None:
        """Remove specs, states and ports; the logs stay (for post-mortems) unless told otherwise."""
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if keep_logs and (entry.name.endswith(".log") or _BACKUP.search(entry.name)):
                continue
            if entry.is_file() or entry.is_symlink():
                entry.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # logs remain
            self.path.rmdir()


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or half-written."""
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read())
    except (FileNotFoundError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Atomic (rename), without fsync: these files are rebuilt from tmux after a crash."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, separators=(",", ":"))
    os.replace(tmp, path)


def parse_ports(raw: str) -> dict[str, int]:
    """The ``@symphony-ports`` session option (JSON) → {name: port}; junk → {}."""
    if not raw:
        return {}
    try:
        return _ports(json.loads(raw))
    except ValueError:
        return {}


def _ports(data: Any) -> dict[str, int]:
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and 0 < v < 65536}
