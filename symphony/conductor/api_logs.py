"""``GET /deployments/{id}/logs``: a deployment's whole output, or a live stream with ``?follow=1``.

Nodes stream every job's output to the conductor, which keeps all of it on disk
(:mod:`symphony.conductor.log_store`, bounded per job by ``conductor.logs``), each line
with a sequence number that grows across restarts. Lines come in that order (arrival
order; each replica's lines in the order it wrote them). The plain answer is streamed as
it is read, so a long history never sits in memory. ``follow`` sends server-sent events
(``id:`` = the sequence number, so an ``EventSource`` that reconnects with
``Last-Event-ID`` misses nothing) and ends with an ``end`` event when the deployment is
deleted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, conductor_of
from symphony.conductor.controller import Conductor, NotFound

POLL_SEC = 0.2
KEEPALIVE_SEC = 15.0
BATCH = 500  # lines per chunk written; the event loop runs other work between chunks
FIELDS = ("ts", "stream", "line", "job_id", "node", "epoch", "seq")

router = APIRouter(prefix="/deployments", tags=["logs"], dependencies=[Depends(require_token)],
                   responses=ERROR_RESPONSES)


def _jobs(c: Conductor, dep_id: str, replica: int | None) -> dict[str, int]:
    """Job id -> replica of the deployment's jobs (only ``replica`` when given).
    Raises NotFound for an unknown deployment."""
    c.describe(dep_id)
    return {j.job_id: j.replica for j in c.store.list_jobs(dep_id) if replica is None or j.replica == replica}


def _lines(c: Conductor, jobs: dict[str, int], *, after: int, upto: int) -> Iterator[dict[str, Any]]:
    for entry in c.logs.between(list(jobs), after=after, upto=upto):
        view = {k: entry.get(k) for k in FIELDS}
        view["replica"] = jobs.get(str(entry.get("job_id")), 0)
        yield view


async def _chunks(lines: Iterator[dict[str, Any]], render: Any) -> AsyncIterator[str]:
    """Rendered lines, ``BATCH`` at a time, letting the event loop breathe between batches."""
    batch: list[str] = []
    for entry in lines:
        batch.append(render(entry))
        if len(batch) >= BATCH:
            yield "".join(batch)
            batch = []
            await asyncio.sleep(0)
    if batch:
        yield "".join(batch)


def _event(entry: dict[str, Any]) -> str:
    return f"id: {entry['seq']}\nevent: log\ndata: {json.dumps(entry)}\n\n"


async def _whole(c: Conductor, dep_id: str, jobs: dict[str, int], *, tail: int) -> AsyncIterator[str]:
    upto = c.logs.seq
    after = c.logs.start_of_tail(list(jobs), tail, upto=upto)
    yield '{"id": ' + json.dumps(dep_id) + ', "lines": ['
    first = True

    def render(entry: dict[str, Any]) -> str:
        nonlocal first
        text = ("" if first else ", ") + json.dumps(entry)
        first = False
        return text

    async for chunk in _chunks(_lines(c, jobs, after=after, upto=upto), render):
        yield chunk
    yield "]}"


async def _follow(request: Request, dep_id: str, *, replica: int | None, tail: int,
                  after: int | None) -> AsyncIterator[str]:
    c = conductor_of(request)
    try:
        jobs = _jobs(c, dep_id, replica)
    except NotFound:
        return
    last = c.logs.seq
    if after is None:
        after = c.logs.start_of_tail(list(jobs), tail, upto=last) if tail else 0
    yield "retry: 2000\n\n"
    async for chunk in _chunks(_lines(c, jobs, after=after, upto=last), _event):
        yield chunk
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(POLL_SEC)
        if await request.is_disconnected():
            return
        try:
            jobs = _jobs(c, dep_id, replica)  # replicas may come and go
        except NotFound:
            yield f"event: end\ndata: {json.dumps({'reason': f'deployment {dep_id} was deleted'})}\n\n"
            return
        if any(c.logs.last_seq(j) > last for j in jobs):
            upto = c.logs.seq
            async for chunk in _chunks(_lines(c, jobs, after=last, upto=upto), _event):
                yield chunk
            last = upto
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
    tail: int = Query(200, ge=0, description="the last N lines (0 = the whole output)"),
    follow: bool = Query(False, description="keep the response open and stream new lines (server-sent events)"),
    replica: int | None = Query(None, ge=0, description="only this replica"),
) -> Any:
    """A deployment's output, oldest first: ``{"id", "lines": [{"ts", "stream", "line",
    "job_id", "replica", "node", "epoch", "seq"}]}``."""
    c = conductor_of(request)
    try:
        jobs = _jobs(c, dep_id, replica)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=f"{exc}; GET /deployments lists them") from exc
    if not follow:
        return StreamingResponse(_whole(c, dep_id, jobs, tail=tail), media_type="application/json")
    resume = request.headers.get("last-event-id", "")
    after = int(resume) if resume.isdigit() else None
    return StreamingResponse(
        _follow(request, dep_id, replica=replica, tail=tail, after=after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
