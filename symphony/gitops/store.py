"""Per-source GitOps status, one JSON file per source under ``state_home()/gitops/status/``.

Written by the source's loop after every pass (atomically), read by ``symphony ls``
and by ``serve``'s ``/status``. One file per source: several ``watch``/``sync``
processes never write the same file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from symphony.home import state_home

HISTORY = 10  # reconciles kept per experiment
EVENTS = 50  # source-level events kept


def folder() -> Path:
    path = state_home() / "gitops" / "status"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write(source_id: str, data: dict[str, Any]) -> None:
    path = folder() / f"{source_id}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def read(source_id: str) -> dict[str, Any] | None:
    try:
        data = json.loads((folder() / f"{source_id}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_all() -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder().glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def experiments() -> dict[str, dict[str, Any]]:
    """Experiment name → its GitOps status (with ``source``), the newest writer winning."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for data in read_all():
        stamp = float(data.get("updated_at") or 0)
        source = (data.get("source") or {}).get("id", "")
        for name, status in (data.get("experiments") or {}).items():
            if name not in found or found[name][0] < stamp:
                found[name] = (stamp, {**status, "source": source})
    return {name: status for name, (_, status) in found.items()}
