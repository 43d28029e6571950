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

from symphony import workspace
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


def retire(source_id: str) -> None:
    """A source removed from its config: what it owns may be taken over."""
    data = read(source_id)
    if data is not None:
        write(source_id, {**data, "retired": True, "running": False})


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
    """Experiment name → the GitOps status ``ls`` shows, with ``source``.

    The owner's status (the source the workspace record names) wins, else the newest.
    A conflict another source reports about the current owner is shown on the owner's
    row, when the owner's own status has no error of its own: it names both sources.
    """
    records = workspace.applied()
    found: dict[str, tuple[bool, float, dict[str, Any]]] = {}
    conflicts: dict[str, dict[str, Any]] = {}
    for data in read_all():
        if data.get("retired"):
            continue
        stamp = float(data.get("updated_at") or 0)
        source = (data.get("source") or {}).get("id", "")
        for name, status in (data.get("experiments") or {}).items():
            owner = status.get("owner")
            record = records.get(name)
            if owner and owner != source:  # a conflict: about the owner's experiment
                if record is not None and record.source == owner and name not in conflicts:
                    conflicts[name] = {**status, "source": owner, "reported_by": source}
                continue
            mine = record is not None and record.source == source
            if name not in found or (mine, stamp) > found[name][:2]:
                found[name] = (mine, stamp, {**status, "source": source})
    shown = {name: status for name, (_, _, status) in found.items()}
    for name, conflict in conflicts.items():
        current = shown.get(name)
        if current is None or current["source"] != conflict["source"] or not current.get("error"):
            shown[name] = {**(current or {}), **_conflict_fields(conflict)}
    return shown


def _conflict_fields(conflict: dict[str, Any]) -> dict[str, Any]:
    return {
        key: conflict.get(key)
        for key in ("source", "error", "errors", "owner", "reported_by", "cluster")
        if conflict.get(key) is not None
    }
