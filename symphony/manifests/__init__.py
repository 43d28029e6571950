"""Manifests: load (YAML with lines) → validate (schemas + rules) → expand (model).

Everything is checked before anything is returned: one invalid document makes
the whole load fail with every problem found, so that nothing is half-applied.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from symphony.errors import ManifestError, Problem
from symphony.manifests.expand import build_cluster, build_deployment, build_experiment
from symphony.manifests.loader import Document, parse_text, read_paths
from symphony.manifests.schema import KIND_SCHEMAS, dotted, schema_problems
from symphony.model import LOCAL_CLUSTER, ClusterSpec, Deployment, Experiment, ManifestSet

__all__ = [
    "Document",
    "check_cluster_refs",
    "deployment_from_api",
    "dotted",
    "load_documents",
    "load_paths",
    "load_text",
]


def load_paths(paths: Sequence[str], *, cluster_override: str | None = None) -> ManifestSet:
    """Files, folders and ``-`` → a validated :class:`ManifestSet`, or :class:`ManifestError`."""
    documents, problems = read_paths(paths)
    return _finish(documents, problems, cluster_override=cluster_override)


def load_text(
    text: str, *, file: str = "<memory>", base_dir: str = ".", cluster_override: str | None = None
) -> ManifestSet:
    documents, problems = parse_text(text, file=file, base_dir=base_dir)
    return _finish(documents, problems, cluster_override=cluster_override)


def load_documents(
    documents: Iterable[Document], *, cluster_override: str | None = None
) -> ManifestSet:
    return _finish(list(documents), [], cluster_override=cluster_override)


def _finish(
    documents: list[Document], problems: list[Problem], *, cluster_override: str | None
) -> ManifestSet:
    experiments: list[Experiment] = []
    deployments: list[Deployment] = []
    clusters: list[ClusterSpec] = []
    seen: dict[tuple[str, str], str] = {}
    for doc in documents:
        found = validate_document(doc)
        if found:
            problems.extend(found)
            continue
        kind, name = doc.data["kind"], doc.data["metadata"]["name"]
        where = f"{doc.file}:{doc.line_of(('metadata', 'name'))}"
        if (kind, name) in seen:
            problems.append(
                doc.problem(
                    ("metadata", "name"),
                    f"duplicate {kind} {name!r} (also at {seen[(kind, name)]})",
                )
            )
            continue
        seen[(kind, name)] = where
        if kind == "Experiment":
            experiment, found = build_experiment(doc, cluster_override=cluster_override)
            problems.extend(found)
            if experiment is not None:
                experiments.append(experiment)
        elif kind == "Deployment":
            deployment, found = build_deployment(
                doc, doc.data["spec"], name, cluster_override=cluster_override
            )
            problems.extend(found)
            if deployment is not None:
                deployments.append(deployment)
        elif name == LOCAL_CLUSTER:
            problems.append(
                doc.problem(
                    ("metadata", "name"),
                    "metadata.name: 'local' is the built-in tmux cluster and cannot be redefined "
                    "(choose another name; SYMPHONY_TMUX_SOCKET sets local's socket)",
                )
            )
        else:
            clusters.append(build_cluster(doc))
    problems.extend(fixed_port_clashes(experiments))
    if problems:
        raise ManifestError(problems)
    return ManifestSet(tuple(experiments), tuple(deployments), tuple(clusters))


def fixed_port_clashes(experiments: Iterable[Experiment]) -> list[Problem]:
    """A fixed port appears once per host: on one cluster, two experiments may not fix the
    same port (on tmux every process shares this machine; elsewhere it is merely confusing)."""
    problems: list[Problem] = []
    taken: dict[tuple[str, int], tuple[str, str]] = {}
    for experiment in experiments:
        for process in experiment.processes:
            for endpoint in process.endpoints:
                if endpoint.port is None:
                    continue
                key = (experiment.cluster, endpoint.port)
                other = taken.get(key)
                if other is not None and other[0] != experiment.name:
                    problems.append(
                        Problem(
                            f"port {endpoint.port} of {endpoint.name!r} is already used by "
                            f"{other[1]!r} of experiment {other[0]!r} on cluster {experiment.cluster!r}",
                            file=process.source.file,
                            line=process.source.line,
                        )
                    )
                taken.setdefault(key, (experiment.name, endpoint.name))
    return problems


def validate_document(doc: Document) -> list[Problem]:
    """Schema problems of one document: the envelope first, then its kind's spec."""
    if not isinstance(doc.data, dict):
        return [
            doc.problem((), "a manifest must be a mapping with apiVersion, kind, metadata and spec")
        ]
    problems = schema_problems(doc, doc.data, "manifest")
    schema = KIND_SCHEMAS.get(doc.data.get("kind"))  # type: ignore[arg-type]
    if schema is None or not isinstance(doc.data.get("spec"), dict):
        return problems
    problems += schema_problems(doc, doc.data["spec"], schema, prefix=("spec",))
    if doc.data["kind"] == "Deployment" and "name" in doc.data["spec"]:
        problems.append(
            doc.problem(
                ("spec", "name"), "spec.name: unknown field 'name' (the name is metadata.name)"
            )
        )
    return problems


def check_cluster_refs(manifests: ManifestSet, known: Collection[str]) -> list[Problem]:
    """Every experiment or deployment must name a cluster that exists."""
    names = set(known) | {c.name for c in manifests.clusters}
    problems: list[Problem] = []
    items: list[Experiment | Deployment] = [*manifests.experiments, *manifests.deployments]
    for item in items:
        if item.cluster not in names:
            ref = item.source.at("spec.cluster")
            problems.append(
                Problem(
                    f"spec.cluster: unknown cluster {item.cluster!r} (known: {', '.join(sorted(names))})",
                    file=ref.file,
                    line=ref.line,
                )
            )
    return problems


def deployment_from_api(body: Mapping[str, Any], *, default_name: str | None = None) -> Deployment:
    """A Deployment from an HTTP ``POST /deployments`` body.

    The body is a Deployment manifest's ``spec`` plus ``name``; the seed's body
    (no ``name``) is accepted as it is, named ``default_name``.
    """
    if not isinstance(body, Mapping):
        raise ManifestError([Problem("the body must be a JSON object", file="<request>", line=1)])
    data = dict(body)
    name = data.get("name") or default_name
    doc = Document(file="<request>", data={"spec": data})
    problems = schema_problems(doc, data, "deployment", prefix=())
    if name is None:
        problems.append(Problem("name: missing required field 'name'", file="<request>", line=1))
    if problems:
        raise ManifestError(problems)
    spec = {k: v for k, v in data.items() if k != "name"}
    deployment, found = build_deployment(doc, spec, str(name))
    if found or deployment is None:
        raise ManifestError(found)
    return deployment
