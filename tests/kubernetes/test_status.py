"""Pod phases and container states → Symphony states: a table, pure (no API)."""

from __future__ import annotations

from typing import Any

import pytest

from symphony.clusters.kubernetes_render import (
    CLUSTER_HASH,
    EXPERIMENT_LABEL,
    GROUP_LABEL,
    SPEC_HASH,
    SPEC_HASHES,
)
from symphony.clusters.kubernetes_status import (
    container_state,
    needs_events,
    observe_pod,
    scheduler_message,
)
from symphony.model import ProcessState

RUNNING = {"running": {"startedAt": "2024-05-01T10:00:00Z"}}


def status(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "c", "restartCount": 0, "ready": False, "state": state, **extra}


@pytest.mark.parametrize(
    ("container", "phase", "policy", "expected", "fields"),
    [
        (status(RUNNING, ready=True), "Running", "Always", ProcessState.RUNNING, {"ready": True}),
        (
            status({"terminated": {"exitCode": 0}}),
            "Succeeded",
            "Never",
            ProcessState.COMPLETED,
            {"exit_code": 0},
        ),
        (
            status({"terminated": {"exitCode": 3, "reason": "Error"}}),
            "Failed",
            "Never",
            ProcessState.EXITED,
            {"exit_code": 3},
        ),
        (
            status({"terminated": {"exitCode": 0}}),
            "Succeeded",
            "OnFailure",
            ProcessState.COMPLETED,
            {},
        ),
        # exited, and the kubelet is about to start it again
        (
            status({"terminated": {"exitCode": 1}}, restartCount=1),
            "Running",
            "OnFailure",
            ProcessState.BACKOFF,
            {"restarts": 1},
        ),
        (
            status({"terminated": {"exitCode": 0}}),
            "Running",
            "Always",
            ProcessState.BACKOFF,
            {},
        ),
        (
            status(
                {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
                restartCount=4,
                lastState={"terminated": {"exitCode": 2}},
            ),
            "Running",
            "Always",
            ProcessState.CRASH_LOOP,
            {"restarts": 4, "exit_code": 2, "reason": "back-off 40s restarting"},
        ),
        (
            status({"waiting": {"reason": "ContainerCreating"}}),
            "Pending",
            "Always",
            ProcessState.PENDING,
            {"reason": "ContainerCreating"},
        ),
        (
            status({"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}),
            "Pending",
            "Always",
            ProcessState.PENDING,
            {"reason": "ImagePullBackOff: no such image"},
        ),
        (None, "Pending", "Always", ProcessState.PENDING, {}),
        (None, "Succeeded", "Never", ProcessState.COMPLETED, {"exit_code": 0}),
        (None, "Failed", "Never", ProcessState.EXITED, {}),
    ],
)
def test_container_state_table(
    container: dict[str, Any] | None,
    phase: str,
    policy: str,
    expected: ProcessState,
    fields: dict[str, Any],
) -> None:
    state, found = container_state(container, pod_status={"phase": phase}, restart_policy=policy)
    assert state is expected
    for key, value in fields.items():
        assert found[key] == value


def pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "rl-eval-1234",
            "labels": {EXPERIMENT_LABEL: "rl", GROUP_LABEL: "eval"},
            "annotations": {
                SPEC_HASH: "g",
                SPEC_HASHES: '{"evaluator": "h1", "reporter": "h2"}',
                CLUSTER_HASH: "c1",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "evaluator"}, {"name": "reporter"}],
            **({"nodeName": "node-7"} if status.get("phase") != "Pending" else {}),
        },
        "status": status,
    }


def test_a_group_pod_is_one_process_per_container() -> None:
    found = observe_pod(
        pod(
            phase="Running",
            containerStatuses=[
                {"name": "evaluator", "restartCount": 2, "ready": True, "state": RUNNING},
                {"name": "reporter", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            ],
        ),
        cluster="kube",
        cluster_hash="c1",
    )
    assert [(o.key, o.spec_hash, o.state, o.restarts, o.node) for o in found] == [
        ("eval/evaluator", "h1", ProcessState.RUNNING, 2, "node-7"),
        ("eval/reporter", "h2", ProcessState.COMPLETED, 0, "node-7"),
    ]
    assert found[0].started_at is not None and found[0].ready


def test_other_cluster_settings_read_as_an_unknown_spec() -> None:
    found = observe_pod(pod(phase="Running"), cluster="kube", cluster_hash="c2")
    assert {o.spec_hash for o in found} == {""}  # so the plan updates them


def test_unscheduled_pod_is_pending_with_the_schedulers_message() -> None:
    unscheduled = pod(
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ],
    )
    assert needs_events(unscheduled)
    [first, _] = observe_pod(unscheduled, cluster="kube", cluster_hash="c1")
    assert first.state is ProcessState.PENDING
    assert first.reason == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    events = [
        {"reason": "Scheduled", "message": "ignored", "lastTimestamp": "2024-05-01T10:00:09Z"},
        {"reason": "FailedScheduling", "message": "old", "lastTimestamp": "2024-05-01T10:00:00Z"},
        {
            "reason": "FailedScheduling",
            "message": "newest",
            "lastTimestamp": "2024-05-01T10:00:05Z",
        },
    ]
    assert scheduler_message(events) == "newest"
    [first, _] = observe_pod(
        unscheduled, cluster="kube", cluster_hash="c1", scheduler_message="newest"
    )
    assert first.reason == "newest"
    assert not needs_events(pod(phase="Running"))
