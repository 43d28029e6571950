"""Expansion: defaults pushed down, replicas unrolled, workdir resolved."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.errors import ManifestError
from symphony.manifests import deployment_from_api, load_paths, load_text
from symphony.model import Endpoint, RestartType

EXAMPLE = """\
apiVersion: symphony/v1
kind: Experiment
metadata: {name: rl, labels: {team: rl}}
spec:
  env: {SEED: 1, DEBUG: true}
  processes:
    - name: learner
      command: [python, learner.py]
      args: [--lr, "3e-4"]
      env: {LOG_LEVEL: info}
      workdir: sub
      binds: [replay-server, parameter-server]
      exposes: {tensorboard: 6006}
      restart_policy: {type: on-failure, backoff_seconds: 5}
      capacity_requests: {A: 10}
      node_group: gpu
    - name: agent
      replicas: 3
      command: python agent.py
      args: [--env, half cheetah]
      connects: [replay-server, parameter-server]
  groups:
    - name: eval
      env: {GROUP: g}
      processes:
        - {name: evaluator, command: [python, eval.py], connects: [parameter-server]}
"""


def test_expansion(tmp_path: Path) -> None:
    (tmp_path / "rl.yaml").write_text(EXAMPLE)
    (experiment,) = load_paths([str(tmp_path / "rl.yaml")]).experiments
    assert [p.key for p in experiment.processes] == [
        "learner",
        "agent-0",
        "agent-1",
        "agent-2",
        "eval/evaluator",
    ]
    learner = experiment.process("learner")
    assert learner.command == ("python", "learner.py", "--lr", "3e-4")
    assert learner.env == {"SEED": "1", "DEBUG": "true", "LOG_LEVEL": "info"}
    assert learner.workdir == str(tmp_path / "sub")
    assert learner.binds == (Endpoint("replay-server"), Endpoint("parameter-server"))
    assert learner.exposes == (Endpoint("tensorboard", 6006, exposed=True),)
    assert learner.restart_policy.type is RestartType.ON_FAILURE
    assert learner.restart_policy.max_restarts == 0
    assert learner.capacity_requests == {"A": 10.0}
    assert learner.node_group == "gpu"
    agent = experiment.process("agent-2")
    assert (agent.replica, agent.replicas, agent.base_name) == (2, 3, "agent")
    assert agent.command == ("/bin/sh", "-c", "python agent.py --env 'half cheetah'")
    assert agent.restart_policy.type is RestartType.NEVER
    assert agent.workdir == str(tmp_path)
    evaluator = experiment.process("eval/evaluator")
    assert evaluator.group == "eval" and evaluator.env["GROUP"] == "g"
    assert experiment.labels == {"team": "rl"}
    assert experiment.cluster == "local"


def test_hash_depends_on_spec_not_on_document_order() -> None:
    a = load_text(EXAMPLE).experiments[0]
    reordered = EXAMPLE.replace(
        "      env: {LOG_LEVEL: info}\n      workdir: sub\n",
        "      workdir: sub\n      env: {LOG_LEVEL: info}\n",
    )
    b = load_text(reordered).experiments[0]
    assert [p.spec_hash() for p in a.processes] == [p.spec_hash() for p in b.processes]
    changed = load_text(EXAMPLE.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")).experiments[0]
    assert changed.process("learner").spec_hash() != a.process("learner").spec_hash()
    assert changed.process("agent-0").spec_hash() == a.process("agent-0").spec_hash()


def test_cluster_override() -> None:
    (experiment,) = load_text(EXAMPLE, cluster_override="edge").experiments
    assert experiment.cluster == "edge"
    assert {p.cluster for p in experiment.processes} == {"edge"}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"name": "web", "config": {"command": ["python3", "main.py"]}}, "web"),
        (
            {
                "node_group": "gpu-1",
                "capacity_requests": {"Analytic1": 1},
                "kind": "exec",
                "config": {
                    "image": "http://x/image.zip",
                    "env_name": "conda-env1",
                    "command": ["python3", "/home/main.py"],
                    "env": {"LOG_LEVEL": "info"},
                },
                "restart_policy": {"type": "on-failure", "backoff_seconds": 10},
            },
            "generated",
        ),
    ],
)
def test_deployment_from_api(body: dict, name: str) -> None:
    deployment = deployment_from_api(body, default_name="generated")
    assert deployment.name == name
    assert deployment.desired_state == "running"


def test_deployment_from_api_errors_name_the_field() -> None:
    with pytest.raises(ManifestError) as caught:
        deployment_from_api({"config": {"command": "x"}, "replicas": -1, "colour": "red"})
    text = "\n".join(caught.value.lines())
    assert "unknown field 'colour'" in text
    assert "replicas: -1 is less than the minimum 0" in text
    assert "missing required field 'name'" in text


_COMMANDS = st.one_of(
    st.text(alphabet="abc -", min_size=1, max_size=8).filter(str.strip),
    st.lists(st.text(alphabet="abc-", min_size=1, max_size=5), min_size=1, max_size=3),
)


@st.composite
def api_bodies(draw: st.DrawFn) -> dict[str, object]:
    """Valid ``POST /deployments`` bodies: exec needs a command, docker an image."""
    kind = draw(st.sampled_from(["exec", "docker"]))
    config: dict[str, object] = {}
    if kind == "exec" or draw(st.booleans()):
        config["command"] = draw(_COMMANDS)
    if kind == "docker" or draw(st.booleans()):
        config["image"] = draw(st.sampled_from(["busybox:1", "/tmp/job.tar.gz"]))
    if draw(st.booleans()):
        config["env"] = draw(st.dictionaries(st.sampled_from(["A", "B_1"]), st.text("xy", max_size=3)))
    body: dict[str, object] = {"name": "dep", "kind": kind, "config": config}
    if draw(st.booleans()):
        body["replicas"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        body["capacity_requests"] = draw(st.dictionaries(st.sampled_from(["A", "B"]), st.integers(1, 9)))
    if draw(st.booleans()):
        body["node_group"] = "g"
    if draw(st.booleans()):
        body["desired_state"] = draw(st.sampled_from(["running", "stopped"]))
    return body


@given(api_bodies())
def test_a_deployment_read_back_from_its_spec_is_the_same(body: dict[str, object]) -> None:
    """``GET`` shows ``to_spec()`` and ``PATCH`` re-reads it: every valid body must survive
    that round trip (a docker job without a command once came back as ``command: []``)."""
    deployment = deployment_from_api(body)
    again = deployment_from_api({"name": deployment.name, **deployment.to_spec()})
    assert again == deployment and again.spec_hash() == deployment.spec_hash()
