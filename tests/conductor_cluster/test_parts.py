"""The deciding parts of the conductor cluster type, as plain data: ports, the wire format,
where a process runs on its node, and what one ``POST /apply`` carries."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.clusters.conductor_deployments import NotNative, apply_body
from symphony.clusters.conductor_wire import (
    WireError,
    experiment_from_wire,
    experiment_to_wire,
    node_workdir,
)
from symphony.conductor.experiment_ports import Assigned, PortError, assign
from symphony.lowering import deployment_as_experiment
from symphony.manifests import load_text
from symphony.model import ProcessSpec, SourceRef
from symphony.plan import diff

SMALL = range(100, 110)

# ---------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("wanted", "current", "taken", "expected"),
    [
        # a name keeps its port while its binder stays on the same node
        ({"a": ("n1", None)}, {"a": Assigned("n1", 105)}, {}, {"a": Assigned("n1", 105)}),
        # a fixed port is used as it is
        ({"a": ("n1", 8080)}, {}, {}, {"a": Assigned("n1", 8080)}),
        # a fixed port that changed replaces the held one
        ({"a": ("n1", 8081)}, {"a": Assigned("n1", 8080)}, {}, {"a": Assigned("n1", 8081)}),
        # only one port is free on n1: it is the one chosen
        ({"a": ("n1", None)}, {}, {"n1": set(SMALL) - {107}}, {"a": Assigned("n1", 107)}),
        # ports taken on another node do not matter
        ({"a": ("n2", None)}, {"a": Assigned("n2", 101)}, {"n1": {101}}, {"a": Assigned("n2", 101)}),
    ],
)
def test_assign_table(wanted, current, taken, expected) -> None:  # type: ignore[no-untyped-def]
    assert assign("e", wanted, current, taken=taken, ports=SMALL) == expected


def test_a_binder_that_moves_gets_a_port_free_on_its_new_node() -> None:
    got = assign("e", {"a": ("n2", None)}, {"a": Assigned("n1", 105)}, taken={"n2": set(SMALL) - {103}}, ports=SMALL)
    assert got == {"a": Assigned("n2", 103)}


@pytest.mark.parametrize(
    ("wanted", "taken", "message"),
    [
        ({"a": ("n1", 8080)}, {"n1": {8080}}, "port 8080 is already taken on node n1"),
        ({"a": ("n1", 8080), "b": ("n1", 8080)}, {}, "port 8080 is already taken on node n1"),
        ({"a": ("n1", None)}, {"n1": set(SMALL)}, "no free port left in 100-109"),
    ],
)
def test_assign_refuses(wanted, taken, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PortError, match=message):
        assign("e", wanted, {}, taken=taken, ports=SMALL)


names = st.sampled_from(["a", "b", "c", "d", "e"])
nodes = st.sampled_from(["n1", "n2"])


@settings(max_examples=200, deadline=None)
@given(
    wanted=st.dictionaries(names, nodes, max_size=5),
    taken=st.dictionaries(nodes, st.sets(st.sampled_from(list(range(30000, 30008))), max_size=3)),
)
def test_assigned_ports_are_distinct_per_node_free_and_stable(wanted, taken) -> None:  # type: ignore[no-untyped-def]
    ports = range(30000, 30008)
    ask = {k: (n, None) for k, n in wanted.items()}
    got = assign("e", ask, {}, taken=taken, ports=ports)
    assert set(got) == set(wanted)
    for node in ("n1", "n2"):
        mine = [a.port for a in got.values() if a.node == node]
        assert len(mine) == len(set(mine))
        assert not set(mine) & set(taken.get(node, ()))
    assert assign("e", ask, got, taken=taken, ports=ports) == got  # re-applying keeps every port


# ---------------------------------------------------------------- the wire format

MANIFEST = """apiVersion: symphony/v1
kind: Experiment
metadata: {name: rl, labels: {team: rl}}
spec:
  env: {SEED: "1"}
  processes:
    - name: learner
      command: [python, learner.py]
      args: [--lr, "3e-4"]
      binds: {replay-server: 7000, parameter-server: null}
      exposes: [tensorboard]
      restart_policy: {type: on-failure, backoff_seconds: 2, max_restarts: 3}
      capacity_requests: {A: 2.5}
      node_group: gpu
      workdir: sub/dir
    - name: agent
      replicas: 3
      command: "python agent.py --env half-cheetah"
      connects: [replay-server, parameter-server]
  groups:
    - name: eval
      processes:
        - {name: evaluator, command: [python, eval.py], connects: [parameter-server], workdir: /opt/eval}
"""


def test_the_wire_format_keeps_every_spec_hash() -> None:
    experiment = load_text(MANIFEST, file="/work/rl/rl.yaml", base_dir="/work/rl").experiments[0]
    back, wires = experiment_from_wire(experiment_to_wire(experiment))
    assert [p.spec_hash() for p in back.processes] == [p.spec_hash() for p in experiment.processes]
    assert {k: w["spec_hash"] for k, w in wires.items()} == {p.key: p.spec_hash() for p in experiment.processes}
    assert back.labels == {"team": "rl"} and back.groups == ("eval",)
    assert {k: w["node_workdir"] for k, w in wires.items()} == {
        "learner": "sub/dir", "agent-0": "", "agent-1": "", "agent-2": "", "eval/evaluator": "/opt/eval"}


@pytest.mark.parametrize(
    ("workdir", "expected"),
    [
        ("/work/rl", ""),  # the default: the manifest's folder -> the job's folder
        ("/work/rl/data", "data"),  # below it -> the same place below the job's folder
        ("/work/other", "/work/other"),  # elsewhere -> that absolute path
        ("/opt", "/opt"),
        ("rel", "rel"),
        (".", ""),
    ],
)
def test_node_workdir(workdir: str, expected: str) -> None:
    p = ProcessSpec("e", "p", ("true",), workdir=workdir, source=SourceRef("/work/rl/x.yaml"))
    assert node_workdir(p) == expected


def test_node_workdir_of_stdin_manifests_is_relative_to_the_current_folder() -> None:
    p = ProcessSpec("e", "p", ("true",), workdir=os.getcwd(), source=SourceRef("<stdin>"))
    assert node_workdir(p) == ""


@pytest.mark.parametrize(
    "body",
    [None, {"name": "x"}, {"name": "x", "processes": [{"name": "p"}]},
     {"name": "x", "processes": [{"name": "p", "command": ["a"]}, {"name": "p", "command": ["b"]}]},
     {"name": "x", "processes": [{"name": "p", "command": ["a"], "restart_policy": {"type": "sometimes"}}]}],
)
def test_malformed_wire_bodies(body: object) -> None:
    with pytest.raises(WireError):
        experiment_from_wire(body)


# ---------------------------------------------------------------- POST /apply bodies

BOTH = MANIFEST + """---
apiVersion: symphony/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  config: {command: [python, web.py]}
"""


def test_apply_body_sends_touched_experiments_deployments_natively_and_deletes_the_rest() -> None:
    manifests = load_text(BOTH, file="/w/m.yaml", base_dir="/w")
    experiment, dep = manifests.experiments[0], manifests.deployments[0]
    lowered = deployment_as_experiment(dep)
    desired = [experiment, lowered]
    plan = diff(desired, [], prune=False)
    body = apply_body(plan, desired, [dep])
    assert [e["name"] for e in body["experiments"]] == ["rl"]
    (native,) = body["deployments"]
    assert native["spec"]["name"] == "web" and native["spec"]["replicas"] == 2
    assert native["process_hashes"] == {p.key: p.spec_hash() for p in lowered.processes}
    assert set(native["process_hashes"]) == {"web-0", "web-1"}
    assert body["delete"] == []

    # observed as applied: nothing is touched; a pruned name is deleted
    from symphony.model import ObservedProcess

    observed = [ObservedProcess(e.name, p.key, p.spec_hash()) for e in desired for p in e.processes]
    observed.append(ObservedProcess("old", "p", "h"))
    plan = diff(desired, observed, prune=True)
    assert apply_body(plan, desired, [dep]) == {"experiments": [], "deployments": [], "delete": ["old"]}


def test_a_lowered_deployment_without_its_deployment_is_refused() -> None:
    dep = load_text(BOTH, file="/w/m.yaml", base_dir="/w").deployments[0]
    lowered = deployment_as_experiment(dep)
    with pytest.raises(NotNative):
        apply_body(diff([lowered], []), [lowered], [])
