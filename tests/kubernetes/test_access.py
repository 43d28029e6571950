"""exec, scp (tar over exec) and visit (ingress, node port, port-forward) through the API.

The emulator speaks the exec and port-forward websocket protocols (channel v4)
and runs the command on this machine, so these cover the client side end to
end; ``ssh`` (a raw terminal) is covered only by the live suite's manual use.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from pathlib import Path

import pytest

from symphony.clusters.kubernetes import KubernetesCluster
from symphony.clusters.kubernetes_access import split_remote
from symphony.clusters.kubernetes_render import service_name
from symphony.errors import UserError
from symphony.manifests import load_text
from symphony.model import ManifestSet
from symphony.reconciler import Reconciler

from .conftest import Kube, wait_for

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    kube: Kube, name: str, body: str, **cluster: object
) -> tuple[ManifestSet, KubernetesCluster]:
    manifests = load_text(
        "---\n".join(
            (
                kube.cluster_manifest(**cluster),
                f"apiVersion: symphony/v1\nkind: Experiment\nmetadata: {{name: {name}}}\n"
                f"spec:\n  cluster: kube\n  processes:\n{body}",
            )
        ),
        file="test.yaml",
    )
    reconciler = Reconciler()
    plans = reconciler.plan(manifests)
    reconciler.apply(plans)
    adapter = KubernetesCluster(manifests.clusters[0])
    wait_for(
        lambda: (
            all(o.state.value == "running" for o in adapter.observe(experiments=[name]))
            and adapter.observe(experiments=[name])
        ),
        timeout=90,
    )
    return manifests, adapter


SLEEP = '[python, -c, "import time; time.sleep(600)"]'


def test_exec_runs_in_the_container_with_its_environment(
    kube: Kube, symphony_home, capfdbinary
) -> None:
    name = f"x-{uuid.uuid4().hex[:6]}"
    _, cluster = start(kube, name, f"    - {{name: worker, command: {SLEEP}}}\n")
    code = cluster.exec(
        name, "worker", ["sh", "-c", 'echo "I am $SYMPH_PROCESS"; echo oops >&2; exit 4']
    )
    out, err = capfdbinary.readouterr()
    assert code == 4
    assert out == b"I am worker\n"
    assert err == b"oops\n"
    assert cluster.exec(name, "worker", ["true"]) == 0


def test_scp_round_trip_through_tar(kube: Kube, symphony_home, tmp_path: Path) -> None:
    name = f"cp-{uuid.uuid4().hex[:6]}"
    _, cluster = start(kube, name, f"    - {{name: worker, command: {SLEEP}}}\n")
    source = tmp_path / "payload"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 300)
    remote = f"/tmp/symphony-scp-{uuid.uuid4().hex[:6]}/copy"
    cluster.scp(str(source), f"worker:{remote}", experiment=name)
    back = tmp_path / "back"
    cluster.scp(f"worker:{remote}", str(back), experiment=name)
    assert (back / "a.txt").read_text() == "alpha\n"
    assert (back / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 300
    single = tmp_path / "single.txt"
    cluster.scp(f"worker:{remote}/a.txt", str(single), experiment=name)
    assert single.read_text() == "alpha\n"
    cluster.exec(name, "worker", ["rm", "-rf", remote.rsplit("/", 1)[0]])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("learner:/tmp/x", ("learner", "/tmp/x")),
        ("eval/evaluator:/data", ("eval/evaluator", "/data")),
        ("learner:", ("learner", ".")),
        ("./learner:/x", None),
        ("/abs/path", None),
        ("C:/windows", None),
        ("plain.txt", None),
    ],
)
def test_split_remote(text: str, expected: tuple[str, str] | None) -> None:
    assert split_remote(text) == expected


def test_scp_needs_exactly_one_remote_side(emulated: Kube, symphony_home) -> None:
    cluster = KubernetesCluster(load_text(emulated.cluster_manifest()).clusters[0])
    with pytest.raises(UserError, match="exactly one side"):
        cluster.scp("a.txt", "b.txt", experiment="x")


def test_visit_port_forwards_when_there_is_no_ingress(kube: Kube, symphony_home) -> None:
    name = f"web-{uuid.uuid4().hex[:6]}"
    port = free_port()
    _, cluster = start(
        kube,
        name,
        f"    - name: web\n      command: [python, -m, http.server, '{port}']\n"
        f"      exposes: {{site: {port}}}\n",
    )
    url = cluster.url(name, "site")
    assert url.startswith("http://127.0.0.1:")

    def fetch() -> bytes | None:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                return response.read()
        except OSError:
            return None

    assert b"Directory listing" in wait_for(fetch, timeout=60)
    for forward in cluster._forwards:
        forward.close()


def test_visit_uses_the_load_balancer_ingress_or_a_node_port(emulated: Kube, symphony_home) -> None:
    assert emulated.emulator is not None
    name = f"lb-{uuid.uuid4().hex[:6]}"
    _, cluster = start(
        emulated, name, f"    - {{name: web, command: {SLEEP}, exposes: {{site: 8080}}}}\n"
    )
    emulated.emulator.set_ingress(emulated.namespace, service_name(name, "site"), "203.0.113.7")
    assert cluster.url(name, "site") == "http://203.0.113.7:8080"
    assert cluster.url(name, "si") == "http://203.0.113.7:8080"  # a unique prefix

    other = f"np-{uuid.uuid4().hex[:6]}"
    _, cluster = start(
        emulated,
        other,
        f"    - {{name: web, command: {SLEEP}, exposes: {{site: 8080}}}}\n",
        service_type="NodePort",
    )
    service = cluster.api.get("Service", service_name(other, "site"))
    assert service is not None
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert cluster.url(other, "site") == f"http://127.0.0.1:{node_port}"
    with pytest.raises(UserError, match=r"has no bound or exposed name 'nope' \(available: site\)"):
        cluster.url(other, "nope")
