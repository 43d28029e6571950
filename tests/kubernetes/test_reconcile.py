"""Reconciling against a Kubernetes API: create, no-op re-apply, update, prune, status, logs.

Runs against the emulator (real HTTP, the official client, a fake kubelet that
runs the containers' commands as local processes) and, with
SYMPHONY_TEST_KUBECONFIG set, against a live cluster with the same assertions.
"""

from __future__ import annotations

import uuid

import pytest

from symphony.clusters.kubernetes import KubernetesCluster
from symphony.clusters.kubernetes_render import (
    EXPERIMENT_LABEL,
    MANAGED_BY,
    PROCESS_LABEL,
    SPEC_HASH,
    service_name,
)
from symphony.manifests import load_text
from symphony.model import ManifestSet, ObservedProcess, ProcessState
from symphony.reconciler import ClusterPlan, Reconciler

from .conftest import Kube, wait_for

pytestmark = pytest.mark.timeout(120)

SLEEPER = "[python, -c, \"import time; print('up', flush=True); time.sleep(600)\"]"


def experiment(name: str, *, server_command: str = SLEEPER, extra: str = "") -> str:
    return f"""
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: kube
  processes:
    - name: server
      command: {server_command}
      binds: [db]
      restart_policy: {{type: always}}
    - name: client
      command: [python, -c, "import os; print('db at', os.environ['SYMPH_DB_ADDR'], flush=True)"]
      connects: [db]
{extra}
"""


def load(kube: Kube, *docs: str) -> ManifestSet:
    return load_text("---\n".join((kube.cluster_manifest(), *docs)), file="test.yaml")


def converge(manifests: ManifestSet, *, prune: bool = False) -> ClusterPlan:
    reconciler = Reconciler()
    [plan] = reconciler.plan(manifests, prune=prune, clusters=manifests.clusters)
    reconciler.apply([plan])
    return plan


def observe(kube: Kube, manifests: ManifestSet, name: str) -> dict[str, ObservedProcess]:
    cluster = KubernetesCluster(manifests.clusters[0])
    return {o.key: o for o in cluster.observe(experiments=[name])}


def states(kube: Kube, manifests: ManifestSet, name: str) -> dict[str, str]:
    return {k: str(o.state) for k, o in observe(kube, manifests, name).items()}


@pytest.fixture
def name() -> str:
    return f"exp-{uuid.uuid4().hex[:6]}"


def test_create_then_reapply_changes_nothing(kube: Kube, symphony_home, name: str) -> None:
    manifests = load(kube, experiment(name))
    plan = converge(manifests)
    assert sorted(p.key for p in plan.plan.create) == ["client", "server"]

    wait_for(
        lambda: states(kube, manifests, name) == {"server": "running", "client": "completed"},
        timeout=90 if kube.live else 20,
        message=lambda: str(states(kube, manifests, name)),
    )
    cluster = KubernetesCluster(manifests.clusters[0])
    pods = cluster.api.select("Pod", f"{EXPERIMENT_LABEL}={name}")
    services = cluster.api.select("Service", f"{EXPERIMENT_LABEL}={name}")
    assert {p["metadata"]["labels"][PROCESS_LABEL] for p in pods} == {"server", "client"}
    assert [s["metadata"]["name"] for s in services] == [service_name(name, "db")]
    for obj in (*pods, *services):
        assert obj["metadata"]["labels"][MANAGED_BY] == "symphony"
        assert obj["metadata"]["annotations"][SPEC_HASH]
    versions = {p["metadata"]["uid"]: p["metadata"]["resourceVersion"] for p in (*pods, *services)}

    if kube.emulator:
        kube.emulator.requests.clear()
    again = converge(manifests)
    assert again.plan.empty
    assert sorted(p.key for p in again.plan.unchanged) == ["client", "server"]
    if kube.emulator:
        assert kube.emulator.writes() == []
    after = cluster.api.select("Pod", f"{EXPERIMENT_LABEL}={name}") + cluster.api.select(
        "Service", f"{EXPERIMENT_LABEL}={name}"
    )
    assert {o["metadata"]["uid"]: o["metadata"]["resourceVersion"] for o in after} == versions


def test_update_replaces_only_the_changed_process(kube: Kube, symphony_home, name: str) -> None:
    manifests = load(kube, experiment(name))
    converge(manifests)
    cluster = KubernetesCluster(manifests.clusters[0])
    wait_for(lambda: states(kube, manifests, name).get("server") == "running", timeout=90)
    before = {
        p["metadata"]["labels"][PROCESS_LABEL]: p["metadata"]["uid"]
        for p in cluster.api.select("Pod", f"{EXPERIMENT_LABEL}={name}")
    }

    changed = load(
        kube,
        experiment(
            name,
            server_command="[python, -c, \"import time; print('v2', flush=True); time.sleep(600)\"]",
        ),
    )
    plan = converge(changed)
    assert [p.key for p in plan.plan.update] == ["server"]
    assert [p.key for p in plan.plan.unchanged] == ["client"]

    def current() -> dict[str, str]:
        return {
            p["metadata"]["labels"][PROCESS_LABEL]: p["metadata"]["uid"]
            for p in cluster._live("Pod", [name])
        }

    after = wait_for(lambda: (c := current()) and len(c) == 2 and c, timeout=60)
    assert after["client"] == before["client"]
    assert after["server"] != before["server"]
    wait_for(lambda: states(kube, changed, name).get("server") == "running", timeout=90)
    assert "v2\n" in wait_for(lambda: "".join(cluster.logs(name, "server")), timeout=60)
    assert converge(changed).plan.empty


def test_prune_deletes_only_what_symphony_owns(kube: Kube, symphony_home, name: str) -> None:
    manifests = load(kube, experiment(name))
    converge(manifests)
    cluster = KubernetesCluster(manifests.clusters[0])
    foreign = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-foreign", "labels": {EXPERIMENT_LABEL: name}},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
    }
    cluster.api.apply(foreign)  # not managed by symphony: never pruned

    # Removing a process from a desired experiment deletes it (and its Service) right away.
    only_client = load(
        kube,
        f"""
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: kube
  processes:
    - {{name: client, command: [python, -c, "print('alone')"]}}
""",
    )
    plan = converge(only_client)
    assert [o.key for o in plan.plan.delete] == ["server"]
    assert [p.key for p in plan.plan.update] == ["client"]  # its environment lost SYMPH_DB_*
    assert set(observe(kube, only_client, name)) == {"client"}
    assert cluster.api.get("Service", service_name(name, "db")) is None

    # --prune with no manifests for the experiment deletes the rest.
    plan = converge(ManifestSet(clusters=only_client.clusters), prune=True)
    assert [o.key for o in plan.plan.delete] == ["client"]
    assert observe(kube, only_client, name) == {}
    assert cluster._live("Service", [name]) == []
    assert cluster.api.get("Service", f"{name}-foreign") is not None
    cluster.api.delete("Service", f"{name}-foreign")


def test_status_maps_exit_codes_and_crash_loops(kube: Kube, symphony_home, name: str) -> None:
    manifests = load(
        kube,
        f"""
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: kube
  processes:
    - {{name: ok, command: [python, -c, "print('fine')"]}}
    - {{name: bad, command: [python, -c, "import sys; sys.exit(3)"]}}
    - name: looping
      command: [python, -c, "import sys; print('crash', flush=True); sys.exit(2)"]
      restart_policy: {{type: on-failure}}
""",
    )
    converge(manifests)

    def settled() -> dict[str, ObservedProcess] | None:
        found = observe(kube, manifests, name)
        ok = found.get("ok")
        bad = found.get("bad")
        looping = found.get("looping")
        if not (ok and bad and looping):
            return None
        done = ok.state is ProcessState.COMPLETED and bad.state is ProcessState.EXITED
        return found if done and looping.state is ProcessState.CRASH_LOOP else None

    found = wait_for(
        settled,
        timeout=180 if kube.live else 30,
        message=lambda: str(observe(kube, manifests, name)),
    )
    assert found["ok"].exit_code == 0
    assert found["bad"].exit_code == 3
    assert found["looping"].restarts >= 1
    assert found["looping"].exit_code == 2
    assert found["ok"].node


def test_unschedulable_is_pending_with_the_schedulers_message(
    kube: Kube, symphony_home, name: str
) -> None:
    manifests = load_text(
        "---\n".join(
            (
                kube.cluster_manifest(capacity_resources="{A: cpu}"),
                f"""
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: kube
  processes:
    - {{name: huge, command: [python, -c, "print(1)"], capacity_requests: {{A: 100000}}}}
""",
            )
        ),
        file="test.yaml",
    )
    converge(manifests)
    found = wait_for(
        lambda: (
            (o := observe(kube, manifests, name).get("huge"))
            and "Insufficient cpu" in o.reason
            and o
        ),
        timeout=60,
    )
    assert found.state is ProcessState.PENDING


def test_logs_whole_tail_and_follow(kube: Kube, symphony_home, name: str) -> None:
    manifests = load(
        kube,
        f"""
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: kube
  processes:
    - name: counter
      command: [python, -c, "import time\\nfor i in range(5):\\n    print('line', i, flush=True)\\n    time.sleep(0.3)"]
""",
    )
    converge(manifests)
    cluster = KubernetesCluster(manifests.clusters[0])
    wait_for(
        lambda: states(kube, manifests, name).get("counter") in ("running", "completed"), timeout=90
    )
    followed = list(cluster.logs(name, "counter", follow=True))
    assert followed == [f"line {i}\n" for i in range(5)]
    assert list(cluster.logs(name, "counter")) == followed
    assert list(cluster.logs(name, "counter", tail=2)) == followed[-2:]
