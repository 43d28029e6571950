"""Experiments and Deployments become requests: one gang per experiment, replicas one by one."""

from __future__ import annotations

import pytest

from symphony.errors import ManifestError
from symphony.manifests import load_text
from symphony.scheduler import Request, manifest_requests

MANIFESTS = """
apiVersion: symphony/v1
kind: Experiment
metadata: {name: rl}
spec:
  processes:
    - {name: learner, command: [l], capacity_requests: {A: 10}, node_group: gpu}
    - {name: agent, replicas: 2, command: [a], capacity_requests: {B: 1}}
  groups:
    - name: eval
      processes:
        - {name: evaluator, command: [e]}
---
apiVersion: symphony/v1
kind: Deployment
metadata: {name: analytic}
spec:
  node_group: gpu-1
  replicas: 3
  capacity_requests: {Analytic1: 1}
  config: {command: [python3, main.py]}
---
apiVersion: symphony/v1
kind: Deployment
metadata: {name: paused}
spec:
  desired_state: stopped
  config: {command: [python3, main.py]}
"""


def test_manifests_expand_to_requests() -> None:
    requests = manifest_requests(load_text(MANIFESTS, file="m.yaml"))
    assert requests == [
        Request("rl", "learner", {"A": 10}, "gpu", gang="rl"),
        Request("rl", "agent-0", {"B": 1}, None, gang="rl"),
        Request("rl", "agent-1", {"B": 1}, None, gang="rl"),
        Request("rl", "eval/evaluator", {}, None, gang="rl"),
        Request("analytic", "analytic-0", {"Analytic1": 1}, "gpu-1"),
        Request("analytic", "analytic-1", {"Analytic1": 1}, "gpu-1"),
        Request("analytic", "analytic-2", {"Analytic1": 1}, "gpu-1"),
    ]


def test_an_experiment_and_a_deployment_may_not_share_a_name() -> None:
    text = MANIFESTS.replace("name: analytic}", "name: rl}")
    with pytest.raises(ManifestError) as caught:
        manifest_requests(load_text(text, file="m.yaml"))
    [line] = caught.value.lines()
    assert line.startswith("m.yaml:")
    assert "Deployment 'rl' has the name of an Experiment (m.yaml:" in line
