"""``GET /metrics``: the conductor in the Prometheus text format (version 0.0.4).

Nodes by state; capacity used/total per class over the ready nodes, and per node;
node CPU, memory and heartbeat age; deployments and jobs by state; how long jobs wait
to be placed and how long a placement decision takes (histograms). Rendering is a
pure function of plain data (:func:`render`), so it is tested without a server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, conductor_of
from symphony.conductor.sched_stats import Histogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NODE_STATES = ("ready", "disconnected", "lost")
JOB_STATES = ("pending", "assigned", "starting", "running", "backoff", "crash-loop", "exited",
              "completed", "failed", "stopped", "unknown")

router = APIRouter(tags=["metrics"], dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape(str(v))}"' for k, v in pairs.items()) + "}"


@dataclass
class Family:
    name: str
    kind: str  # gauge | counter | histogram
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **lbls: str) -> None:
        self.samples.append((suffix, lbls, value))

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for suffix, lbls, value in self.samples:
            yield f"{self.name}{suffix}{labels(lbls)} {number(value)}"


def histogram(name: str, help_text: str, h: Histogram) -> Family:
    fam = Family(name, "histogram", help_text)
    for bound, count in h.cumulative():
        fam.add(count, "_bucket", le=number(bound))
    fam.add(h.total, "_sum")
    fam.add(h.count, "_count")
    return fam


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def node_families(nodes: list[dict[str, Any]]) -> list[Family]:
    by_state = Family("symphony_nodes", "gauge", "Nodes the conductor knows, by state.")
    counts = Counter(n["state"] for n in nodes)
    for state in (*NODE_STATES, *sorted(set(counts) - set(NODE_STATES))):
        by_state.add(counts.get(state, 0), state=state)
    total = Family("symphony_capacity_total", "gauge", "Capacity units of the ready nodes, per class.")
    used = Family("symphony_capacity_used", "gauge", "Capacity units reserved on the ready nodes, per class.")
    sums_total: dict[str, float] = {}
    sums_used: dict[str, float] = {}
    up = Family("symphony_node_up", "gauge", "1 when the node is connected and heartbeating.")
    node_total = Family("symphony_node_capacity_total", "gauge", "Capacity units a node declares, per class.")
    node_used = Family("symphony_node_capacity_used", "gauge", "Capacity units reserved on a node, per class.")
    age = Family("symphony_node_heartbeat_age_seconds", "gauge", "Seconds since the node was last heard from.")
    cpu = Family("symphony_node_cpu_percent", "gauge", "CPU use of the node, from its last heartbeat.")
    mem = Family("symphony_node_memory_used_bytes", "gauge", "Memory in use on the node, from its last heartbeat.")
    mem_total = Family("symphony_node_memory_total_bytes", "gauge", "Memory of the node.")
    gpus = Family("symphony_node_gpus", "gauge", "GPUs the node reported.")
    for n in nodes:
        node = n["node_id"]
        up.add(1 if n["state"] == "ready" else 0, node=node)
        caps_total = {c: float(v) for c, v in (n.get("capacities_total") or {}).items()}
        caps_used = {c: float(v) for c, v in (n.get("capacities_used") or {}).items()}
        for cls in sorted(caps_total):
            node_total.add(caps_total[cls], node=node, **{"class": cls})
            node_used.add(caps_used.get(cls, 0.0), node=node, **{"class": cls})
            if n["state"] == "ready":
                sums_total[cls] = sums_total.get(cls, 0.0) + caps_total[cls]
                sums_used[cls] = sums_used.get(cls, 0.0) + caps_used.get(cls, 0.0)
        if n.get("last_heartbeat_age") is not None:
            age.add(float(n["last_heartbeat_age"]), node=node)
        hb = n.get("heartbeat") or {}
        if (pct := _num((hb.get("cpu") or {}).get("total_percent"))) is not None:
            cpu.add(pct, node=node)
        if (b := _num((hb.get("memory") or {}).get("used_bytes"))) is not None:
            mem.add(b, node=node)
        if (b := _num((n.get("memory") or {}).get("total_bytes"))) is not None:
            mem_total.add(b, node=node)
        gpus.add(len(n.get("gpus") or ()), node=node)
    for cls in sorted(sums_total):
        total.add(sums_total[cls], **{"class": cls})
        used.add(sums_used[cls], **{"class": cls})
    return [by_state, total, used, up, node_total, node_used, age, cpu, mem, mem_total, gpus]


def workload_families(deployments: list[dict[str, Any]]) -> list[Family]:
    deps = Family("symphony_deployments", "gauge", "Deployments by current state.")
    dep_counts = Counter(d["state"] for d in deployments)
    for state, n in sorted(dep_counts.items()):
        deps.add(n, state=state)
    jobs = Family("symphony_jobs", "gauge", "Deployment replicas (jobs) by state.")
    job_counts = Counter(j["state"] for d in deployments for j in d["jobs"])
    for state in (*JOB_STATES, *sorted(set(job_counts) - set(JOB_STATES))):
        jobs.add(job_counts.get(state, 0), state=state)
    restarts = Family("symphony_job_restarts", "gauge", "Restarts of the current job copies, summed.")
    restarts.add(sum(int(j.get("restarts") or 0) for d in deployments for j in d["jobs"]))
    return [deps, jobs, restarts]


def render(families: Iterable[Family]) -> str:
    return "\n".join(line for fam in families for line in fam.lines()) + "\n"


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format; scrape with ``authorization: {credentials: <token>}``."""
    c = conductor_of(request)
    stats = c.sched_stats
    families = [
        *node_families(c.list_nodes()),
        *workload_families(c.list_deployments()),
        histogram("symphony_scheduling_latency_seconds",
                  "Seconds a job waited from wanting a node to being placed.", stats.wait),
        histogram("symphony_scheduling_decision_seconds",
                  "Seconds one placement decision took.", stats.decision),
        Family("symphony_jobs_waiting_for_placement", "gauge",
               "Jobs that want a node and have none yet.", [("", {}, float(len(stats.waiting_since)))]),
    ]
    return PlainTextResponse(render(families), media_type=CONTENT_TYPE)
