"""Bad input on a Kubernetes cluster: one clear line each, and nothing half-applied.

Also the command line end to end against the emulator (apply, status, logs,
delete), run as a real subprocess pointed at it through KUBECONFIG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kube_emulator import Emulator

from symphony.clusters.kubernetes import KubernetesCluster
from symphony.errors import OperationFailed, UserError
from symphony.manifests import load_text
from symphony.model import ManifestSet
from symphony.reconciler import Reconciler

from .conftest import NAMESPACE, Kube, wait_for

pytestmark = pytest.mark.timeout(120)

EXPERIMENT = """
apiVersion: symphony/v1
kind: Experiment
metadata: {name: bad}
spec:
  cluster: kube
  processes:
    - {name: server, command: [python, -c, "print(1)"], binds: [db]}
    - {name: client, command: [python, -c, "print(2)"], connects: [db]}
"""


def manifests(kube: Kube, **cluster: object) -> ManifestSet:
    return load_text("---\n".join((kube.cluster_manifest(**cluster), EXPERIMENT)), file="bad.yaml")


def apply(found: ManifestSet) -> None:
    reconciler = Reconciler()
    reconciler.apply(reconciler.plan(found))


def one_line(error: UserError) -> str:
    [line] = error.lines()
    return line


def test_no_kubeconfig(emulated: Kube, symphony_home, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UserError) as caught:
        apply(manifests(emulated))
    assert caught.value.exit_code == 2
    assert "no kubeconfig found" in one_line(caught.value)


def test_unknown_context(emulated: Kube, symphony_home) -> None:
    with pytest.raises(UserError) as caught:
        apply(manifests(emulated, context="nowhere"))
    line = one_line(caught.value)
    assert caught.value.exit_code == 2
    assert "context 'nowhere' is not in kubeconfig" in line and "(contexts: emulator)" in line


def test_forbidden_namespace_changes_nothing(emulated: Kube, symphony_home) -> None:
    assert emulated.emulator is not None
    emulated.emulator.forbidden.add(NAMESPACE)
    with pytest.raises(OperationFailed) as caught:
        apply(manifests(emulated))
    line = one_line(caught.value)
    assert caught.value.exit_code == 1
    assert f"not allowed to apply service bad-db in namespace '{NAMESPACE}' (403 Forbidden" in line
    assert emulated.emulator.writes() == []


def test_forbidden_pods_after_allowed_services_changes_nothing(
    emulated: Kube, symphony_home
) -> None:
    """The dry run covers every write: a refusal of the last object stops the first."""
    emulator = emulated.emulator
    assert emulator is not None
    original = emulator.apply

    def refuse_pods(plural: str, namespace: str, name: str, body, *, manager, dry_run):  # type: ignore[no-untyped-def]
        if plural == "pods":
            emulator.forbidden.add(namespace)
            try:
                emulator._check_namespace(namespace, "patch", plural, name)
            finally:
                emulator.forbidden.discard(namespace)
        return original(plural, namespace, name, body, manager=manager, dry_run=dry_run)

    emulator.apply = refuse_pods  # type: ignore[method-assign]
    with pytest.raises(OperationFailed, match="not allowed to apply pod"):
        apply(manifests(emulated))
    assert emulator.writes() == []


def test_missing_namespace(emulated: Kube, symphony_home) -> None:
    with pytest.raises(OperationFailed) as caught:
        apply(manifests(emulated, namespace="nowhere"))
    assert one_line(caught.value).endswith(
        "namespace 'nowhere' does not exist (create it, e.g. kubectl create namespace nowhere)"
    )


def test_capacity_without_mapping_changes_nothing(emulated: Kube, symphony_home) -> None:
    assert emulated.emulator is not None
    text = EXPERIMENT.replace("binds: [db]}", "binds: [db], capacity_requests: {A: 1}}")
    found = load_text("---\n".join((emulated.cluster_manifest(), text)), file="bad.yaml")
    with pytest.raises(UserError) as caught:
        apply(found)
    line = one_line(caught.value)
    assert caught.value.exit_code == 2
    assert line.startswith("bad.yaml:") and "capacity 'A'" in line
    assert emulated.emulator.writes() == []


def test_unreachable_api(symphony_home, tmp_path: Path, monkeypatch) -> None:
    emulator = Emulator()
    config = emulator.kubeconfig(tmp_path / "kubeconfig")
    emulator.close()  # nothing listens there any more
    monkeypatch.setenv("KUBECONFIG", str(config))
    found = load_text(Kube(config, "default", None).cluster_manifest())
    with pytest.raises(
        OperationFailed, match=r"cannot reach the Kubernetes API at http://127\.0\.0\.1"
    ):
        KubernetesCluster(found.clusters[0]).observe()


def test_pending_process_logs_say_why(emulated: Kube, symphony_home) -> None:
    found = load_text(
        "---\n".join(
            (
                emulated.cluster_manifest(capacity_resources="{A: cpu}"),
                EXPERIMENT.replace("binds: [db]}", "binds: [db], capacity_requests: {A: 999}}"),
            )
        )
    )
    apply(found)
    cluster = KubernetesCluster(found.clusters[0])
    with pytest.raises(OperationFailed, match="waiting to start"):
        list(cluster.logs("bad", "server"))


# --- the command line, end to end ---------------------------------------------------
def symphony(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symphony.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_cli_apply_status_logs_delete(emulated: Kube, symphony_home: Path, tmp_path: Path) -> None:
    assert emulated.emulator is not None
    files = tmp_path / "manifests"
    files.mkdir()
    (files / "cluster.yaml").write_text(emulated.cluster_manifest())
    (files / "exp.yaml").write_text(EXPERIMENT.replace("name: bad", "name: cli"))
    env = {"SYMPHONY_HOME": str(symphony_home), "KUBECONFIG": str(emulated.kubeconfig)}

    result = symphony("apply", "-f", str(files), env=env)
    assert result.returncode == 0, result.stderr

    def status() -> list[dict[str, object]]:
        out = symphony("status", "cli", "-o", "json", "--cluster", "kube", env=env)
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout))

    rows = wait_for(
        lambda: (r := status()) and all(row["state"] == "completed" for row in r) and r, timeout=60
    )
    assert sorted((row["name"], row["cluster"]) for row in rows) == [
        ("client", "kube"),
        ("server", "kube"),
    ]
    logs = symphony("logs", "client", "cli", "--cluster", "kube", env=env)
    assert logs.returncode == 0 and logs.stdout == "2\n", logs.stderr

    again = symphony("diff", "-f", str(files), env=env)
    assert again.returncode == 0, again.stdout + again.stderr

    deleted = symphony("delete", "cli", "-f", "--cluster", "kube", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert emulated.emulator.pods(NAMESPACE) == []
    assert emulated.emulator.services(NAMESPACE) == []


def test_cli_bad_context_is_one_line_without_traceback(
    emulated: Kube, symphony_home: Path, tmp_path: Path
) -> None:
    files = tmp_path / "manifests"
    files.mkdir()
    (files / "cluster.yaml").write_text(emulated.cluster_manifest(context="nowhere"))
    (files / "exp.yaml").write_text(EXPERIMENT)
    env = {"SYMPHONY_HOME": str(symphony_home), "KUBECONFIG": str(emulated.kubeconfig)}
    result = symphony("apply", "-f", str(files), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "context 'nowhere'" in lines[0], result.stderr
