"""Fixtures for the Kubernetes cluster type: the API emulator, or a live cluster.

Scenario tests take ``kube`` and run twice when ``SYMPHONY_TEST_KUBECONFIG`` points
at a real cluster: once against the emulator (always), once live. Without it the
live run is skipped with that reason: no API server can be installed on the CI
machines.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kube_emulator import Emulator

from symphony.testing import symphony_home, wait_for  # noqa: F401

LIVE_ENV = "SYMPHONY_TEST_KUBECONFIG"
NAMESPACE = "symphony-test"


@dataclass
class Kube:
    """Where a scenario runs: a kubeconfig in KUBECONFIG, a namespace, maybe the emulator."""

    kubeconfig: Path
    namespace: str
    emulator: Emulator | None
    image: str = "python:3.11-slim"

    @property
    def live(self) -> bool:
        return self.emulator is None

    def cluster_manifest(self, name: str = "kube", **extra: object) -> str:
        fields = {"namespace": self.namespace, "image": self.image, **extra}
        body = "\n".join(f"    {k}: {v}" for k, v in fields.items())
        return (
            f"apiVersion: symphony/v1\nkind: Cluster\nmetadata: {{name: {name}}}\n"
            f"spec:\n  type: kubernetes\n  kubernetes:\n{body}\n"
        )


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(namespaces=("default", NAMESPACE))
    try:
        yield emu
    finally:
        emu.close()


@pytest.fixture
def emulated(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kube:
    config = emulator.kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    monkeypatch.setenv("KUBECONFIG", str(config))
    return Kube(config, NAMESPACE, emulator)


@pytest.fixture(params=["emulator", "live"])
def kube(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Kube]:
    if request.param == "emulator":
        yield request.getfixturevalue("emulated")
        return
    path = os.environ.get(LIVE_ENV)
    if not path:
        pytest.skip(f"live Kubernetes suite: set {LIVE_ENV} to a kubeconfig to run it")
    monkeypatch.setenv("KUBECONFIG", path)
    namespace = os.environ.get("SYMPHONY_TEST_NAMESPACE") or f"symphony-test-{uuid.uuid4().hex[:6]}"
    created = _ensure_namespace(path, namespace)
    try:
        yield Kube(Path(path), namespace, None)
    finally:
        if created:
            _delete_namespace(path, namespace)


def _ensure_namespace(kubeconfig: str, namespace: str) -> bool:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    try:
        api.create_namespace({"metadata": {"name": namespace}})
    except ApiException as exc:
        if exc.status != 409:
            raise
        return False
    return True


def _delete_namespace(kubeconfig: str, namespace: str) -> None:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    api.delete_namespace(namespace)
