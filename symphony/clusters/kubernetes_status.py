"""Pods as the API serves them (dicts) → Symphony's :class:`ObservedProcess`. Pure.

A Pod's phase says little about one container, so each container's state
decides: ``running`` → running; ``waiting`` with ``CrashLoopBackOff`` →
crash-loop; ``terminated`` → completed / exited, or back-off while the
restartPolicy will start it again; an unscheduled Pod → pending with the
scheduler's message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from symphony.clusters.kubernetes_render import (
    CLUSTER_HASH,
    EXPERIMENT_LABEL,
    GROUP_LABEL,
    SPEC_HASH,
    SPEC_HASHES,
)
from symphony.model import ObservedProcess, ProcessState

RESTARTS_ON = {"Always": {0, 1}, "OnFailure": {1}, "Never": set()}  # 0 = success, 1 = failure


def timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def observe_pod(
    pod: Mapping[str, Any],
    *,
    cluster: str,
    cluster_hash: str,
    scheduler_message: str = "",
) -> list[ObservedProcess]:
    """One :class:`ObservedProcess` per container of a Symphony Pod.

    A Pod rendered under other Cluster settings (``cluster_hash`` differs)
    reports an empty spec hash, so the plan updates it.
    """
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    group = labels.get(GROUP_LABEL)
    hashes: dict[str, str] = json.loads(annotations.get(SPEC_HASHES) or "{}")
    current = annotations.get(CLUSTER_HASH) == cluster_hash
    statuses = {c.get("name"): c for c in status.get("containerStatuses") or []}
    restart_policy = spec.get("restartPolicy", "Always")
    found = []
    for container in spec.get("containers") or []:
        name = container["name"]
        if name not in hashes and len(spec.get("containers") or []) == 1:
            hashes[name] = annotations.get(SPEC_HASH, "")
        state, fields = container_state(
            statuses.get(name), pod_status=status, restart_policy=restart_policy
        )
        if state is ProcessState.PENDING and not fields.get("reason"):
            fields["reason"] = scheduler_message or unscheduled_message(status)
        found.append(
            ObservedProcess(
                experiment=labels.get(EXPERIMENT_LABEL, ""),
                key=f"{group}/{name}" if group else name,
                spec_hash=hashes.get(name, "") if current else "",
                state=state,
                node=spec.get("nodeName") or "",
                cluster=cluster,
                **fields,
            )
        )
    return found


def container_state(
    container: Mapping[str, Any] | None,
    *,
    pod_status: Mapping[str, Any],
    restart_policy: str,
) -> tuple[ProcessState, dict[str, Any]]:
    """The Symphony state of one container, and the ObservedProcess fields that go with it."""
    phase = pod_status.get("phase", "Pending")
    if container is None:
        if phase == "Succeeded":
            return ProcessState.COMPLETED, {"exit_code": 0}
        if phase == "Failed":
            return ProcessState.EXITED, {
                "reason": pod_status.get("message") or pod_status.get("reason", "")
            }
        return ProcessState.PENDING, {}
    restarts = int(container.get("restartCount") or 0)
    fields: dict[str, Any] = {"restarts": restarts, "ready": bool(container.get("ready"))}
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated") or {}
    if "running" in state:
        fields["started_at"] = timestamp(state["running"].get("startedAt"))
        return ProcessState.RUNNING, fields
    if "terminated" in state:
        done = state["terminated"]
        code = int(done.get("exitCode", 0))
        fields["exit_code"] = code
        fields["reason"] = done.get("reason", "")
        if (1 if code else 0) in RESTARTS_ON.get(restart_policy, set()) and phase not in (
            "Succeeded",
            "Failed",
        ):
            return ProcessState.BACKOFF, fields
        return (ProcessState.COMPLETED if code == 0 else ProcessState.EXITED), fields
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    if reason == "CrashLoopBackOff":
        if last:
            fields["exit_code"] = int(last.get("exitCode", 0))
        fields["reason"] = waiting.get("message") or reason
        return ProcessState.CRASH_LOOP, fields
    if restarts and last:
        fields["exit_code"] = int(last.get("exitCode", 0))
        fields["reason"] = reason
        return ProcessState.BACKOFF, fields
    message = waiting.get("message", "")
    fields["reason"] = f"{reason}: {message}" if reason and message else reason
    return ProcessState.PENDING, fields


def unscheduled_message(pod_status: Mapping[str, Any]) -> str:
    for condition in pod_status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "")
    return ""


def needs_events(pod: Mapping[str, Any]) -> bool:
    """A Pod the scheduler has not placed: its events say why."""
    status = pod.get("status") or {}
    return status.get("phase", "Pending") == "Pending" and not (pod.get("spec") or {}).get(
        "nodeName"
    )


def scheduler_message(events: Sequence[Mapping[str, Any]]) -> str:
    """The newest FailedScheduling message among a Pod's events."""
    failed = [e for e in events if e.get("reason") == "FailedScheduling"]
    if not failed:
        return ""
    newest = max(
        failed,
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "",
    )
    return str(newest.get("message", ""))
