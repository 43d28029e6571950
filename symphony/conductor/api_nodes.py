"""``GET /nodes`` and ``GET /nodes/{id}``: what each node is, holds and reports.

A node is ``{"node_id", "groups", "capacities_total", "capacities_used", "state"
(ready | disconnected | lost), "heartbeat_sec", "last_heartbeat_age", "connected_at",
"advertise_address", "hostname", "agent_version", "cpu", "memory", "gpus",
"storage_mounts", "heartbeat": <the last heartbeat's usage figures or null>}``;
``GET /nodes/{id}`` adds ``jobs``, the replicas placed there.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, conductor_of

router = APIRouter(prefix="/nodes", tags=["nodes"], dependencies=[Depends(require_token)],
                   responses=ERROR_RESPONSES)


@router.get("")
async def list_nodes(
    request: Request,
    group: str | None = Query(None, description="only nodes in this group"),
    state: Literal["ready", "disconnected", "lost"] | None = None,
) -> list[dict[str, Any]]:
    nodes = conductor_of(request).list_nodes()
    return [n for n in nodes
            if (group is None or group in n.get("groups", ())) and (state is None or n["state"] == state)]


@router.get("/{node_id}", responses={404: {"description": "no such node"}})
async def get_node(node_id: str, request: Request) -> dict[str, Any]:
    c = conductor_of(request)
    node = next((n for n in c.list_nodes() if n["node_id"] == node_id), None)
    if node is None:
        raise HTTPException(status_code=404, detail=f"no node {node_id!r}; GET /nodes lists them")
    jobs = [{**job, "deployment_id": dep["id"]}
            for dep in c.list_deployments() for job in dep["jobs"] if job["node"] == node_id]
    return {**node, "jobs": jobs}
