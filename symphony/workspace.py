"""Small CLI conveniences kept under the state folder.

- the current experiment (``switch-experiment``);
- per applied experiment: its cluster, where it came from, and the spec hashes last
  applied, like kubectl's last-applied annotation, so ``ls`` can tell Synced from
  OutOfSync (a window closed by hand) without a source at hand.

Not a cache of live state: everything about processes is read back from clusters.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from symphony.home import state_home
from symphony.model import Experiment


@dataclass(frozen=True)
class AppliedRecord:
    cluster: str
    processes: dict[str, str] = field(default_factory=dict)  # key -> spec hash
    source: str = "cli"
    revision: str | None = None
    applied_at: float = 0.0


def _index_path() -> Path:
    return state_home() / "experiments.json"


def applied() -> dict[str, AppliedRecord]:
    try:
        data = json.loads(_index_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    out: dict[str, AppliedRecord] = {}
    for name, raw in data.items() if isinstance(data, dict) else ():
        try:
            out[str(name)] = AppliedRecord(**raw)
        except TypeError:
            continue
    return out


def record_applied(
    experiments: Iterable[Experiment],
    *,
    removed: Iterable[str] = (),
    source: str = "cli",
    revision: str | None = None,
) -> None:
    index = applied()
    now = time.time()
    for e in experiments:
        hashes = {p.key: p.spec_hash() for p in e.processes}
        index[e.name] = AppliedRecord(e.cluster, hashes, source, revision, now)
    for name in removed:
        index.pop(name, None)
    tmp = _index_path().with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({k: asdict(v) for k, v in sorted(index.items())}, indent=1))
    os.replace(tmp, _index_path())


def cluster_of(experiment: str) -> str | None:
    record = applied().get(experiment)
    return record.cluster if record else None


def current_experiment() -> str | None:
    try:
        name = (state_home() / "current-experiment").read_text().strip()
    except FileNotFoundError:
        return None
    return name or None


def set_current_experiment(name: str | None) -> None:
    path = state_home() / "current-experiment"
    if name is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(name + "\n")
