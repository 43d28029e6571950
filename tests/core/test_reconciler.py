"""The reconciler sequences plan → apply per cluster; a recording cluster shows what it asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony.clusters.memory import MemoryCluster
from symphony.errors import ManifestError, OperationFailed
from symphony.manifests import load_text
from symphony.model import ClusterSpec, ObservedProcess, ProcessState
from symphony.reconciler import Reconciler, workloads

TWO = """\
apiVersion: symphony/v1
kind: Experiment
metadata: {name: a}
spec:
  processes: [{name: p, command: x}, {name: q, command: y, restart_policy: {type: always}}]
---
apiVersion: symphony/v1
kind: Experiment
metadata: {name: b}
spec:
  processes: [{name: p, command: x}]
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYMPHONY_HOME", str(tmp_path))
    return tmp_path


def recording() -> tuple[Reconciler, dict[str, MemoryCluster]]:
    made: dict[str, MemoryCluster] = {}

    def connect(spec: ClusterSpec) -> MemoryCluster:
        made[spec.name] = MemoryCluster(spec)
        return made[spec.name]

    return Reconciler(connect=connect), made


def test_apply_then_reapply_is_a_noop(home: Path) -> None:
    reconciler, made = recording()
    manifests = load_text(TWO)
    reconciler.apply(reconciler.plan(manifests))
    assert len(made["local"].applied) == 1
    plans = reconciler.plan(manifests)
    assert all(p.plan.empty for p in plans)
    reconciler.apply(plans)
    assert len(made["local"].applied) == 1  # nothing asked the second time


def test_prune_removes_experiments_absent_from_manifests(home: Path) -> None:
    reconciler, _made = recording()
    reconciler.apply(reconciler.plan(load_text(TWO)))
    only_a = load_text(TWO.split("---")[0])
    (plan,) = reconciler.plan(only_a)
    assert plan.plan.empty  # without prune, b stays
    (plan,) = reconciler.plan(only_a, prune=True)
    assert [(o.experiment, o.key) for o in plan.plan.delete] == [("b", "p")]


def test_unknown_cluster_is_a_located_error(home: Path) -> None:
    reconciler, made = recording()
    text = TWO.replace(
        "spec:\n  processes: [{name: p, command: x}]\n",
        "spec:\n  cluster: nowhere\n  processes: [{name: p, command: x}]\n",
    )
    with pytest.raises(ManifestError) as caught:
        reconciler.plan(load_text(text, file="m.yaml"))
    assert caught.value.lines() == [
        "m.yaml:11: spec.cluster: unknown cluster 'nowhere' (known: local)"
    ]
    assert made == {}  # nothing was even connected


def test_wait_reports_crash_loop(home: Path) -> None:
    reconciler, made = recording()
    manifests = load_text(TWO)
    plans = reconciler.plan(manifests)
    reconciler.apply(plans)
    cluster = made["local"]
    q = cluster.live[("a", "q")]
    cluster.live[("a", "q")] = ObservedProcess(
        q.experiment, q.key, q.spec_hash, ProcessState.CRASH_LOOP, restarts=4, reason="exit 1"
    )
    with pytest.raises(OperationFailed, match="a/q: crash-loop: exit 1"):
        reconciler.wait(plans, timeout=5)


def test_wait_times_out_with_the_pending_names(home: Path) -> None:
    now = [0.0]
    reconciler, _made = recording()
    reconciler.clock = lambda: now[0]
    reconciler.sleep = lambda s: now.__setitem__(0, now[0] + s)
    plans = reconciler.plan(load_text(TWO))  # planned but never applied: nothing runs
    with pytest.raises(OperationFailed, match=r"timed out after 3s waiting for: a/p, a/q, b/p"):
        reconciler.wait(plans, timeout=3)


def test_deployments_become_processes(home: Path) -> None:
    text = """\
apiVersion: symphony/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 2, config: {command: [serve]}}
"""
    (experiment,) = workloads(load_text(text))
    assert [p.key for p in experiment.processes] == ["web-0", "web-1"]
    stopped = load_text(text.replace("replicas: 2,", "replicas: 2, desired_state: stopped,"))
    assert workloads(stopped)[0].processes == ()


def test_deployment_and_experiment_names_must_differ(home: Path) -> None:
    text = (
        TWO.split("---")[0]
        + "---\napiVersion: symphony/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {config: {command: [x]}}\n"
    )
    with pytest.raises(ManifestError, match="same name as an Experiment"):
        workloads(load_text(text))
