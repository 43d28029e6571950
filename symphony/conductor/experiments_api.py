"""The HTTP side of experiments, for the CLI's ``conductor`` cluster type.

- ``POST /apply`` — one atomic change: ``{"experiments": [...], "deployments":
  [{"spec", "process_hashes"}], "delete": [names]}``; 422 with ``errors`` (an
  unschedulable experiment carries the scheduler's reason) and nothing changed;
- ``GET /processes[?experiment=NAME…]`` — every process of the experiments and of the
  deployments applied through the CLI, with the CLI's spec hash: what ``status`` shows;
- ``GET /experiments``, ``GET /experiments/{name}`` (processes and addresses),
  ``DELETE /experiments/{name}`` (an experiment, or a deployment applied through the CLI);
- ``POST /jobs/{job_id}/exec`` — run a command beside a job on its node (``symphony exec``).

A process's output is the logs of its job: ``GET /deployments/{job_id}/logs`` (an
experiment's process runs as the one-job deployment ``<experiment>.<process>``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from symphony.conductor import experiment_views as views
from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, error, invalid, read_json
from symphony.conductor.controller import Conductor
from symphony.conductor.experiment_requests import ApplyError
from symphony.conductor.experiments import Experiments
from symphony.proto import protocol_pb2 as pb

DEFAULT_EXEC_TIMEOUT = 60.0


def router_for(conductor: Conductor) -> APIRouter:
    """The routes, bound to one :class:`Experiments` (made now, so its placement hook is in
    place before any node connects)."""
    book = Experiments(conductor)
    router = APIRouter(tags=["experiments"], dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)

    @router.post("/apply", responses={422: {"description": "invalid, unschedulable or clashing; nothing changed"}})
    async def apply(request: Request) -> Any:
        """Create, update and delete experiments and deployments together, or not at all."""
        try:
            body = await read_json(request)
        except ValueError as exc:
            return error(400, str(exc))
        try:
            return book.apply(body)
        except ApplyError as exc:
            return invalid(exc.errors)

    @router.get("/processes")
    async def processes(
        experiment: Annotated[list[str] | None, Query(description="only these (repeatable)")] = None,
        stopped: Annotated[bool, Query(description="also the jobs of stopped deployments")] = False,
    ) -> Any:
        """``[{"experiment", "key", "kind", "job_id", "spec_hash", "node", "host", "state", "pid",
        "restarts", "exit_code", "started_at", "reason", …}]``."""
        return views.processes(book, experiment, stopped=stopped)

    @router.get("/experiments")
    async def list_experiments() -> list[dict[str, Any]]:
        return [views.describe(book, name) for name in book.names()]

    @router.get("/experiments/{name}", responses={404: {"description": "no such experiment"}})
    async def get_experiment(name: str) -> Any:
        try:
            return views.describe(book, name)
        except KeyError:
            return error(404, f"no experiment {name!r}; GET /experiments lists them")

    @router.delete("/experiments/{name}", responses={404: {"description": "nothing of that name"}})
    async def delete_experiment(name: str) -> Any:
        try:
            kind = book.delete(name)
        except KeyError:
            return JSONResponse({"detail": f"no experiment or applied deployment {name!r}",
                                 "errors": [f"no experiment or applied deployment {name!r}"]}, status_code=404)
        book.conductor.schedule_pending()  # what waited for that capacity
        return {"deleted": name, "kind": kind}

    @router.post("/jobs/{job_id}/exec", responses={
        404: {"description": "no such job"}, 409: {"description": "the job is not placed on a connected node"},
        504: {"description": "the node did not answer in time"}})
    async def exec_in_job(job_id: str, request: Request) -> Any:
        """Run ``{"argv": [...], "timeout_sec": 60}`` beside a job, with its environment and folder;
        answers ``{"exit_code", "output", "error", "node"}`` when the command has ended."""
        try:
            body = await read_json(request)
        except ValueError as exc:
            return error(400, str(exc))
        argv = body.get("argv") if isinstance(body, dict) else None
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            return invalid(["argv: a non-empty list of strings"])
        timeout = body.get("timeout_sec", DEFAULT_EXEC_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
            return invalid(["timeout_sec: a number of seconds between 0 and 3600"])
        c = book.conductor
        job = c.store.get_job(job_id)
        if job is None:
            return error(404, f"no job {job_id!r}")
        session = c.registry.get(job.node_id or "")
        if session is None:
            where = f"node {job.node_id} is not connected" if job.node_id else "it is not placed on a node"
            return error(409, f"cannot exec in {job_id}: {where}")
        request_id = uuid.uuid4().hex
        answer: asyncio.Future[pb.ExecResult] = asyncio.get_running_loop().create_future()

        def answered(result: pb.ExecResult) -> None:
            if not answer.done():
                answer.set_result(result)

        c.exec_waiters[request_id] = answered
        session.send(pb.ConductorToNode(exec_request=pb.ExecRequest(
            request_id=request_id, job_id=job_id, argv=argv, timeout_sec=float(timeout))))
        try:
            result = await asyncio.wait_for(answer, float(timeout) + 10.0)
        except TimeoutError:
            return error(504, f"node {job.node_id} did not answer within {float(timeout) + 10:g}s")
        finally:
            c.exec_waiters.pop(request_id, None)
        return {"exit_code": result.exit_code, "output": result.output.decode("utf-8", "replace"),
                "error": result.error, "node": job.node_id}

    return router
