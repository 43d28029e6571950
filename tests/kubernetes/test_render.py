"""The pure mapping (experiments → Kubernetes objects) and ``symphony render``.

Every rendered object of every example manifest, and of this folder's own test
manifests, validates strictly against the official Kubernetes OpenAPI schemas
of the oldest and the newest version kubernetes-validate ships.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes_validate.utils import all_versions

from symphony.clusters import kubernetes_render as render
from symphony.errors import UserError
from symphony.lowering import deployment_as_experiment
from symphony.manifests import load_paths, load_text
from symphony.model import (
    ClusterSpec,
    ClusterType,
    Endpoint,
    Experiment,
    KubernetesConfig,
    ProcessSpec,
    RestartPolicy,
    RestartType,
)

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.y*ml"))
VERSIONS = all_versions()
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def cluster(**kube: Any) -> ClusterSpec:
    config = KubernetesConfig(**{"namespace": "ns", **kube})
    return ClusterSpec(name="kube", type=ClusterType.KUBERNETES, kubernetes=config)


def proc(name: str, **fields: Any) -> ProcessSpec:
    return ProcessSpec(
        experiment=fields.pop("experiment", "exp"),
        name=name,
        command=("run",),
        cluster="kube",
        **fields,
    )


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def env_of(pod: dict[str, Any], container: int = 0) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][container]["env"]}


# --- schema validation of every example ------------------------------------------
def example_objects(path: Path) -> list[dict[str, Any]]:
    manifests = load_paths([str(path)], cluster_override="kube")
    experiments = [*manifests.experiments, *map(deployment_as_experiment, manifests.deployments)]
    classes = {c for e in experiments for p in e.processes for c in p.capacity_requests}
    spec = cluster(capacity_resources={c: f"example.com/{c.lower()}" for c in classes})
    return render.render(experiments, spec)


MANIFESTS = [*EXAMPLES, DATA / "rl.yaml"]


@pytest.mark.parametrize("version", [VERSIONS[0], VERSIONS[-1]])
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_rendered_object_validates_strictly(path: Path, version: str) -> None:
    objects = example_objects(path)
    assert objects, f"{path} rendered nothing"
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 2, "manifests/examples/ should hold the examples"


# --- the mapping -------------------------------------------------------------------
def rl() -> tuple[list[dict[str, Any]], Experiment]:
    manifests = load_paths([str(DATA / "rl.yaml")])
    [experiment] = manifests.experiments
    spec = cluster(
        capacity_resources={"A": "nvidia.com/gpu", "CPU": "cpu"}, service_type="NodePort"
    )
    return render.render([experiment], spec), experiment


def test_pods_services_labels_and_annotations() -> None:
    objects, experiment = rl()
    pods, services = by_kind(objects, "Pod"), by_kind(objects, "Service")
    # learner, agent-0..2 (replicas are separate Pods), and one Pod for group eval
    assert sorted(p["metadata"]["labels"][render.PROCESS_LABEL] for p in pods) == [
        "agent-0", "agent-1", "agent-2", "eval", "learner",
    ]  # fmt: skip
    [group] = [p for p in pods if p["metadata"]["labels"][render.PROCESS_LABEL] == "eval"]
    assert [c["name"] for c in group["spec"]["containers"]] == ["evaluator", "reporter"]
    assert group["metadata"]["labels"][render.GROUP_LABEL] == "eval"
    assert json.loads(group["metadata"]["annotations"][render.SPEC_HASHES]) == {
        "evaluator": experiment.process("eval/evaluator").spec_hash(),
        "reporter": experiment.process("eval/reporter").spec_hash(),
    }
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "ns"
        assert meta["labels"][render.MANAGED_BY] == "symphony"
        assert meta["labels"][render.EXPERIMENT_LABEL] == "rl"
        assert meta["labels"][render.PROCESS_LABEL]
        assert meta["annotations"][render.SPEC_HASH]
        assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63
    types = {s["metadata"]["labels"][render.ENDPOINT_LABEL]: s["spec"]["type"] for s in services}
    assert types == {
        "replay-server": "ClusterIP",
        "parameter-server": "ClusterIP",
        "tensorboard": "NodePort",
        "metrics": "ClusterIP",
    }
    [metrics] = [s for s in services if s["metadata"]["name"] == "rl-metrics"]
    assert metrics["spec"]["selector"][render.PROCESS_LABEL] == "eval"


def test_every_process_gets_every_symph_variable() -> None:
    objects, _ = rl()
    services = {
        s["metadata"]["labels"][render.ENDPOINT_LABEL]: s for s in by_kind(objects, "Service")
    }
    for pod in by_kind(objects, "Pod"):
        for index, container in enumerate(pod["spec"]["containers"]):
            env = env_of(pod, index)
            for name, service in services.items():
                key = name.upper().replace("-", "_")
                port = service["spec"]["ports"][0]["port"]
                assert env[f"SYMPH_{key}_HOST"] == f"{service['metadata']['name']}.ns.svc"
                assert env[f"SYMPH_{key}_PORT"] == str(port)
                assert env[f"SYMPH_{key}_ADDR"] == f"{service['metadata']['name']}.ns.svc:{port}"
            assert env["SYMPH_EXPERIMENT"] == "rl"
            assert env["SYMPH_PROCESS"] == container["name"]
            assert env["SYMPH_CLUSTER"] == "kube"
            assert env["SEED"] == "1"
    agent = next(
        p for p in by_kind(objects, "Pod") if p["spec"]["containers"][0]["name"] == "agent-2"
    )
    assert env_of(agent)["SYMPH_REPLICA"] == "2"
    assert env_of(agent)["SYMPH_PROCESS_GROUP"] == ""
    [group] = [p for p in by_kind(objects, "Pod") if len(p["spec"]["containers"]) == 2]
    assert env_of(group, 1)["SYMPH_PROCESS_GROUP"] == "eval"


def test_the_container_listens_on_the_service_port() -> None:
    objects, _ = rl()
    learner = next(
        p for p in by_kind(objects, "Pod") if p["spec"]["containers"][0]["name"] == "learner"
    )
    ports = {p["containerPort"] for p in learner["spec"]["containers"][0]["ports"]}
    served = {
        s["spec"]["ports"][0]["targetPort"]
        for s in by_kind(objects, "Service")
        if s["spec"]["selector"][render.PROCESS_LABEL] == "learner"
    }
    assert ports == served and 6006 in ports


def test_capacity_node_group_and_restart_policy() -> None:
    objects, _ = rl()
    learner = next(
        p for p in by_kind(objects, "Pod") if p["spec"]["containers"][0]["name"] == "learner"
    )
    resources = learner["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"nvidia.com/gpu": "1", "cpu": "500m"},
        "limits": {"nvidia.com/gpu": "1", "cpu": "500m"},
    }
    assert learner["spec"]["nodeSelector"] == {"symphony/group": "gpu"}
    assert learner["spec"]["restartPolicy"] == "OnFailure"
    assert learner["spec"]["containers"][0]["image"] == "python:3.11-slim"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (RestartType.NEVER, "Never"),
        (RestartType.ON_FAILURE, "OnFailure"),
        (RestartType.ALWAYS, "Always"),
    ],
)
def test_restart_policy_table(policy: RestartType, expected: str) -> None:
    experiment = Experiment(
        "exp", (proc("p", restart_policy=RestartPolicy(policy)),), cluster="kube"
    )
    [pod] = render.render([experiment], cluster())
    assert pod["spec"]["restartPolicy"] == expected


@pytest.mark.parametrize(
    ("value", "quantity"), [(1.0, "1"), (10, "10"), (0.5, "500m"), (2.25, "2250m"), (0.001, "1m")]
)
def test_quantity(value: float, quantity: str) -> None:
    assert render.quantity(value) == quantity


def test_rendering_is_deterministic_and_names_follow_the_spec() -> None:
    first, _ = rl()
    second, _ = rl()
    assert first == second
    experiment = Experiment("exp", (proc("p"),), cluster="kube")
    changed = Experiment("exp", (proc("p", env={"X": "1"}),), cluster="kube")
    [a] = render.render([experiment], cluster())
    [b] = render.render([changed], cluster())
    assert a["metadata"]["name"] != b["metadata"]["name"]  # a new Pod, created before the old goes
    [c] = render.render([experiment], cluster(image="other:1"))
    assert (
        c["metadata"]["annotations"][render.CLUSTER_HASH]
        != a["metadata"]["annotations"][render.CLUSTER_HASH]
    )


def test_assigned_ports_are_stable_when_other_pods_gain_names() -> None:
    one = Experiment("exp", (proc("a", binds=(Endpoint("alpha"),)),), cluster="kube")
    two = Experiment(
        "exp",
        (proc("a", binds=(Endpoint("alpha"),)), proc("b", binds=(Endpoint("beta"),))),
        cluster="kube",
    )
    assert render.assigned_ports(one)["alpha"] == render.assigned_ports(two)["alpha"]


names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(experiment=names, process=names, endpoint=names)
def test_object_names_are_valid_for_any_valid_input(
    experiment: str, process: str, endpoint: str
) -> None:
    spec = Experiment(
        experiment,
        (proc(process, experiment=experiment, binds=(Endpoint(endpoint),)),),
        cluster="kube",
    )
    objects = render.render([spec], cluster())
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and DNS_LABEL.match(name), name
    [service] = by_kind(objects, "Service")
    assert DNS_1035.match(service["metadata"]["name"])
    ports = render.assigned_ports(spec)
    assert all(1 <= p <= 65535 for p in ports.values())


@settings(max_examples=40, deadline=None)
@given(count=st.integers(min_value=2, max_value=12))
def test_ports_inside_one_pod_never_collide(count: int) -> None:
    endpoints = tuple(Endpoint(f"n{i}") for i in range(count))
    experiment = Experiment("exp", (proc("g", group="grp", binds=endpoints),), cluster="kube")
    ports = render.assigned_ports(experiment)
    assert len(set(ports.values())) == count


# --- what this cluster cannot run: found before anything is written ------------------
def test_capacity_without_mapping_is_one_line_with_file_and_line() -> None:
    manifests = load_paths([str(DATA / "rl.yaml")])
    with pytest.raises(UserError) as caught:
        render.render(list(manifests.experiments), cluster(capacity_resources={"CPU": "cpu"}))
    [line] = caught.value.lines()
    assert line.startswith(f"{DATA / 'rl.yaml'}:")
    assert "capacity 'A'" in line and "capacity_resources" in line


def test_group_with_two_restart_policies_is_refused() -> None:
    experiment = Experiment(
        "exp",
        (
            proc("a", group="g", restart_policy=RestartPolicy(RestartType.ALWAYS)),
            proc("b", group="g"),
        ),
        cluster="kube",
        groups=("g",),
    )
    with pytest.raises(UserError, match="one restartPolicy"):
        render.render([experiment], cluster())


# --- the command ---------------------------------------------------------------------
def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\nfrom symphony.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code or 0\nelse:\n    code = 0\n"
        "print('KUBERNETES-IMPORTED' if 'kubernetes' in sys.modules else '', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "SYMPHONY_HOME": str(home), "KUBECONFIG": str(home / "none")}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )


def test_render_command_prints_valid_yaml_without_a_cluster(tmp_path: Path) -> None:
    result = run_cli("render", "-f", str(DATA), home=tmp_path)
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert {d["kind"] for d in documents} == {"Pod", "Service"}
    assert len(by_kind(documents, "Pod")) == 5
    for document in documents:
        kubernetes_validate.validate(document, VERSIONS[-1], strict=True)
    assert "KUBERNETES-IMPORTED" not in result.stderr  # the client is not even imported


def test_render_with_cluster_flag_overrides_the_manifests_cluster(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(
        (DATA / "cluster.yaml")
        .read_text()
        .replace("name: kube", "name: other")
        .replace("symphony-test", "elsewhere")
    )
    result = run_cli(
        "render", "-f", str(DATA), "-f", str(other), "--cluster", "other", home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert {d["metadata"]["namespace"] for d in documents} == {"elsewhere"}
    pod = by_kind(documents, "Pod")[0]
    assert env_of(pod)["SYMPH_CLUSTER"] == "other"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "local"], "cluster 'local' is of type tmux"),
        (["--cluster", "nope"], "unknown cluster 'nope'"),
    ],
)
def test_render_bad_cluster_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("render", "-f", str(DATA / "rl.yaml"), *args, home=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_render_without_a_kubernetes_cluster_asks_for_one(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text((DATA / "rl.yaml").read_text().replace("cluster: kube", "cluster: local"))
    result = run_cli("render", "-f", str(plain), home=tmp_path)
    assert result.returncode == 2
    assert "cluster 'local' is of type tmux" in result.stderr


def test_unused_helpers_stay_consistent() -> None:
    # The selector the adapter lists with matches what render puts on objects.
    assert render.managed_selector() == "app.kubernetes.io/managed-by=symphony"
    assert render.managed_selector(["b", "a"]).endswith("symphony/experiment in (a,b)")
    experiment = load_text(
        "apiVersion: symphony/v1\nkind: Experiment\nmetadata: {name: e}\nspec:\n"
        "  processes: [{name: p, command: [x]}]\n"
    ).experiments[0]
    assert render.units(replace(experiment, name="e"))[0].name == "p"
