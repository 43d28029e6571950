"""``symphony render -f PATH… --cluster NAME``: the Kubernetes objects, without a cluster."""

from __future__ import annotations

import sys

import click

from symphony.commands.options import paths_option
from symphony.errors import UserError
from symphony.model import ClusterSpec, ClusterType, ManifestSet


@click.command()
@paths_option
@click.pass_context
def render(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Print the objects a Kubernetes cluster would get, as multi-document YAML.

    Nothing is contacted. The cluster is --cluster NAME (remembered, or a Cluster
    manifest among the -f files), else the only kubernetes Cluster manifest given,
    else the one cluster the manifests name.
    """
    import yaml

    from symphony.cli import globals_of
    from symphony.clusters.kubernetes_render import render as render_objects
    from symphony.lowering import deployment_as_experiment
    from symphony.manifests import load_paths

    given = globals_of(ctx).cluster
    manifests = load_paths(list(paths))
    cluster = _choose(manifests, given)
    manifests = load_paths(list(paths), cluster_override=cluster.name)
    experiments = [
        *manifests.experiments,
        *(deployment_as_experiment(d) for d in manifests.deployments),
    ]
    if not experiments:
        raise UserError(f"{', '.join(paths)}: no Experiment or Deployment to render")
    objects = render_objects(experiments, cluster)
    yaml.safe_dump_all(objects, sys.stdout, sort_keys=False, explicit_start=True)


def _choose(manifests: ManifestSet, given: str | None) -> ClusterSpec:
    from symphony import known_clusters

    if given:
        spec = known_clusters.resolve(given, manifests.clusters)
    else:
        kube = [c for c in manifests.clusters if c.type is ClusterType.KUBERNETES]
        named = {e.cluster for e in manifests.experiments} | {
            d.cluster for d in manifests.deployments
        }
        if len(kube) == 1:
            spec = kube[0]
        elif len(named) == 1:
            spec = known_clusters.resolve(named.pop(), manifests.clusters)
        else:
            raise UserError(
                "render: name the cluster with --cluster NAME (a cluster of type kubernetes)"
            )
    if spec.type is not ClusterType.KUBERNETES:
        raise UserError(
            f"render prints Kubernetes objects, but cluster {spec.name!r} is of type {spec.type}"
        )
    return spec
