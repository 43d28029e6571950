"""``GET /deployments/{id}/logs``: recent output, or a live stream with ``?follow=1``.

Nodes stream every job's output to the conductor, which keeps the last
:data:`~symphony.conductor.controller.LOG_LINES_KEPT` lines per replica in memory,
each with a conductor-wide sequence number. ``follow`` sends them as server-sent
events (``id:`` = that number, so an ``EventSource`` that reconnects with
``Last-Event-ID`` misses nothing still kept) and ends with an ``end`` event when the
deployment is deleted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, conductor_of
from symphony.conductor.controller import Conductor, NotFound

POLL_SEC = 0.2
KEEPALIVE_SEC = 15.0

router = APIRouter(prefix="/deployments", tags=["logs"], dependencies=[Depends(require_token)],
                   responses=ERROR_RESPONSES)


def entries(c: Conductor, dep_id: str, *, replica: int | None = None, after: int = 0) -> list[dict[str, Any]]:
    """Kept lines of the deployment's replicas newer than sequence number ``after``,
    in arrival order. Raises NotFound for an unknown deployment."""
    c.describe(dep_id)
    out: list[dict[str, Any]] = []
    for job in c.store.list_jobs(dep_id):
        if replica is not None and job.replica != replica:
            continue
        for entry in reversed(c.logs.get(job.job_id, ())):
            if entry.get("seq", 0) <= after:
                break
            out.append({**entry, "replica": job.replica})
    out.sort(key=lambda e: e.get("seq", 0))
    return out


def _tail(lines: list[dict[str, Any]], tail: int) -> list[dict[str, Any]]:
    return lines[-tail:] if tail else lines


def _event(entry: dict[str, Any]) -> str:
    return f"id: {entry.get('seq', 0)}\nevent: log\ndata: {json.dumps(entry)}\n\n"


async def _follow(request: Request, dep_id: str, *, replica: int | None, tail: int,
                  after: int | None) -> AsyncIterator[str]:
    c = conductor_of(request)
    try:
        first = entries(c, dep_id, replica=replica, after=after or 0)
    except NotFound:
        return
    if after is None:
        first = _tail(first, tail)
    last = max((e.get("seq", 0) for e in first), default=after or 0)
    yield "retry: 2000\n\n"
    for entry in first:
        yield _event(entry)
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(POLL_SEC)
        if await request.is_disconnected():
            return
        try:
            new = entries(c, dep_id, replica=replica, after=last)
        except NotFound:
            yield f"event: end\ndata: {json.dumps({'reason': f'deployment {dep_id} was deleted'})}\n\n"
            return
        for entry in new:
            last = max(last, entry.get("seq", 0))
            yield _event(entry)
        if new:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE_SEC:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"


@router.get(
    "/{dep_id}/logs",
    responses={
        200: {"description": "JSON `{id, lines}`, or with `follow=1` a `text/event-stream` of `log` events",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        404: {"description": "no such deployment"},
    },
)
async def deployment_logs(
    dep_id: str,
    request: Request,
    tail: int = Query(200, ge=0, description="the last N lines (0 = every line kept)"),
    follow: bool = Query(False, description="keep the response open and stream new lines (server-sent events)"),
    replica: int | None = Query(None, ge=0, description="only this replica"),
) -> Any:
    """A deployment's recent output, newest last: ``{"id", "lines": [{"ts", "stream", "line",
    "job_id", "replica", "node", "seq"}]}``."""
    c = conductor_of(request)
    try:
        lines = entries(c, dep_id, replica=replica)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=f"{exc}; GET /deployments lists them") from exc
    if not follow:
        lines.sort(key=lambda e: (e["ts"], e.get("seq", 0)))
        return {"id": dep_id, "lines": _tail(lines, tail)}
    resume = request.headers.get("last-event-id", "")
    after = int(resume) if resume.isdigit() else None
    return StreamingResponse(
        _follow(request, dep_id, replica=replica, tail=tail, after=after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
