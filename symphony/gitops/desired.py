"""From a snapshot to what should be live, one experiment at a time. Pure.

Documents are grouped by what they declare (a workload name — Experiments and
Deployments share one namespace — or a Cluster name) and each group is
validated on its own. A group with a problem is *blocked*: its last good
version stays desired and its error is reported, while every other group
converges. A problem that names no document (a file that cannot be read or
parsed at all) blocks what that file held last time. A group no longer in the
source is gone (and will be pruned by its owner).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from symphony.errors import ManifestError, Problem, UserError
from symphony.manifests import Document, check_cluster_refs, load_documents
from symphony.model import ClusterSpec, ManifestSet
from symphony.reconciler import workloads
from symphony.sources.base import Snapshot

CLUSTER = "Cluster"


@dataclass(frozen=True)
class Good:
    """A validated workload (one Experiment or one Deployment) and where it came from."""

    manifests: ManifestSet
    revision: str | None
    files: frozenset[str]


@dataclass(frozen=True)
class Desired:
    workloads: dict[str, Good]  # name -> good version (fresh, or the last good when blocked)
    clusters: dict[str, ClusterSpec]
    errors: dict[str, tuple[str, ...]]  # blocked workload name -> its problems
    cluster_errors: dict[str, tuple[str, ...]]
    source_errors: tuple[str, ...]  # problems that name nothing we know
    fresh: frozenset[str] = field(default=frozenset())  # names whose version is this snapshot's


def _identity(doc: Document) -> tuple[str, str] | None:
    data: Any = doc.data
    if not isinstance(data, dict):
        return None
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        return None
    return (CLUSTER if data.get("kind") == CLUSTER else "workload", name)


def _lines(problems: list[Problem] | tuple[Problem, ...]) -> tuple[str, ...]:
    return tuple(str(p) for p in problems)


def isolate(
    snapshot: Snapshot,
    *,
    last_good: Mapping[str, Good],
    last_clusters: Mapping[str, ClusterSpec] = {},
    known_clusters: Collection[str] = ("local",),
    cluster_override: str | None = None,
) -> Desired:
    groups: dict[tuple[str, str], list[Document]] = {}
    orphans: dict[str | None, list[Problem]] = {}  # file -> problems that name no document
    for doc in snapshot.documents:
        ident = _identity(doc)
        if ident is None:
            orphans.setdefault(doc.file, []).extend(
                load_problems([doc]) or [doc.problem((), "a manifest needs metadata.name")]
            )
        else:
            groups.setdefault(ident, []).append(doc)
    broken: dict[tuple[str, str], list[Problem]] = {}
    for item in snapshot.broken:
        if item.name:
            kind = CLUSTER if item.kind == CLUSTER else "workload"
            broken.setdefault((kind, item.name), []).extend(item.problems)
        else:
            orphans.setdefault(item.file, []).extend(item.problems)
    for problem in snapshot.problems:
        orphans.setdefault(problem.file, []).append(problem)

    clusters: dict[str, ClusterSpec] = {}
    cluster_errors: dict[str, tuple[str, ...]] = {}
    for name in sorted({n for k, n in (*groups, *broken) if k == CLUSTER}):
        docs = groups.get((CLUSTER, name), [])
        problems = list(broken.get((CLUSTER, name), ()))
        if not problems:
            try:
                clusters[name] = load_documents(docs).clusters[0]
                continue
            except ManifestError as exc:
                problems = list(exc.problems)
        cluster_errors[name] = _lines(problems)
        if name in last_clusters:
            clusters[name] = last_clusters[name]

    known = set(known_clusters) | set(clusters)
    chosen: dict[str, Good] = {}
    errors: dict[str, tuple[str, ...]] = {}
    fresh: set[str] = set()
    for name in sorted({n for k, n in (*groups, *broken) if k != CLUSTER}):
        docs = groups.get(("workload", name), [])
        problems = list(broken.get(("workload", name), ()))
        if not problems:
            manifests, problems = _validate(docs, known, cluster_override)
            if manifests is not None:
                files = frozenset(d.file for d in docs)
                chosen[name] = Good(manifests, snapshot.revision, files)
                fresh.add(name)
                continue
        errors[name] = _lines(problems)
        if name in last_good:
            chosen[name] = last_good[name]

    source_errors: list[str] = []
    for file, problems in orphans.items():
        held = [n for n, good in last_good.items() if file in good.files and n not in fresh]
        if not held:
            source_errors.extend(_lines(problems))
        for name in held:
            errors[name] = (*errors.get(name, ()), *_lines(problems))
            chosen[name] = last_good[name]
    return Desired(
        workloads=chosen,
        clusters=clusters,
        errors=errors,
        cluster_errors=cluster_errors,
        source_errors=tuple(source_errors),
        fresh=frozenset(fresh),
    )


def load_problems(docs: list[Document]) -> list[Problem]:
    try:
        load_documents(docs)
    except ManifestError as exc:
        return list(exc.problems)
    return []


def _validate(
    docs: list[Document], known: Collection[str], cluster_override: str | None
) -> tuple[ManifestSet | None, list[Problem]]:
    try:
        manifests = load_documents(docs, cluster_override=cluster_override)
        workloads(manifests)  # an Experiment and a Deployment may not share a name
    except UserError as exc:
        return None, list(exc.problems)
    problems = check_cluster_refs(manifests, known)
    return (None, problems) if problems else (manifests, [])
