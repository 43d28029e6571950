"""Which clusters exist: ``local`` always, plus Cluster manifests remembered by ``apply``.

Remembered clusters live as YAML under ``$SYMPHONY_HOME/clusters/NAME.yaml`` and are
loaded through the same manifest pipeline as everything else.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from symphony.errors import ManifestError, Problem, UserError
from symphony.home import state_home
from symphony.model import LOCAL, ClusterSpec


def _folder() -> Path:
    path = state_home() / "clusters"
    path.mkdir(parents=True, exist_ok=True)
    return path


def remembered() -> list[ClusterSpec]:
    """Every remembered cluster; a broken file is skipped with a warning, not fatal:
    one bad file must not take ``local`` down with it."""
    from symphony.manifests import load_paths

    found: list[ClusterSpec] = []
    for path in sorted(_folder().glob("*.yaml")):
        try:
            found.extend(load_paths([str(path)]).clusters)
        except UserError as exc:
            if str(path) not in _WARNED:
                _WARNED.add(str(path))
                print(f"warning: ignoring a remembered cluster: {exc.lines()[0]}", file=sys.stderr)
    return found


_WARNED: set[str] = set()


def all_clusters(extra: Iterable[ClusterSpec] = ()) -> dict[str, ClusterSpec]:
    """Name → spec; ``extra`` (given on the command line) wins over remembered ones."""
    found = {LOCAL.name: LOCAL}
    for spec in (*remembered(), *extra):
        found[spec.name] = spec
    return found


def resolve(name: str, extra: Sequence[ClusterSpec] = ()) -> ClusterSpec:
    clusters = all_clusters(extra)
    if name not in clusters:
        raise ManifestError(
            Problem(f"unknown cluster {name!r} (known: {', '.join(sorted(clusters))})")
        )
    return clusters[name]


def to_manifest(spec: ClusterSpec) -> dict[str, object]:
    """The Cluster manifest a user would write for ``spec`` (only its type's block)."""
    block: dict[str, object]
    if spec.type.value == "tmux":
        block = {"socket_name": spec.tmux.socket_name}
    elif spec.type.value == "kubernetes":
        k = spec.kubernetes
        block = {
            "context": k.context,
            "namespace": k.namespace,
            "image": k.image,
            "capacity_resources": dict(k.capacity_resources),
            "node_group_label": k.node_group_label,
            "service_type": k.service_type,
        }
    else:
        c = spec.conductor
        block = {"url": c.url, "token_file": c.token_file, "ca_file": c.ca_file}
    return {
        "apiVersion": "symphony/v1",
        "kind": "Cluster",
        "metadata": {"name": spec.name},
        "spec": {"type": spec.type.value, spec.type.value: block},
    }


def remember(spec: ClusterSpec) -> None:
    """Keep a Cluster manifest so later commands know the cluster by name."""
    text = yaml.safe_dump(to_manifest(spec), sort_keys=False)
    (_folder() / f"{spec.name}.yaml").write_text(text)


def forget(name: str) -> bool:
    path = _folder() / f"{name}.yaml"
    if path.exists():
        path.unlink()
        return True
    return False
