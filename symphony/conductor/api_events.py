"""``GET /events``: what the conductor decided and observed, oldest first.

Events are stored with every change (created, placed, state, unschedulable,
node-lost, fenced …). Poll with ``?after=<last id>`` to get only newer ones.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, conductor_of

MAX_EVENTS = 1000

router = APIRouter(prefix="/events", tags=["events"], dependencies=[Depends(require_token)],
                   responses=ERROR_RESPONSES)


@router.get("")
async def list_events(
    request: Request,
    deployment: str | None = Query(None, description="only events of this deployment"),
    node: str | None = Query(None, description="only events about this node"),
    kind: str | None = Query(None, description="e.g. created, placed, state, unschedulable, node-lost"),
    after: int | None = Query(None, ge=0, le=2**62, description="only events with a larger id (for polling)"),
    limit: int = Query(100, ge=1, le=MAX_EVENTS),
) -> list[dict[str, Any]]:
    """``[{"id", "ts", "kind", "deployment_id", "job_id", "node_id", "message"}]``: the newest
    ``limit`` matching events, or with ``after`` the first ``limit`` after that id."""
    rows = conductor_of(request).store.list_events(
        deployment_id=deployment, node_id=node, kind=kind, after=after, limit=limit
    )
    return [asdict(r) for r in rows]
