"""The HTTP side of experiments, for the CLI's ``conductor`` cluster type.

- ``POST /apply`` — one atomic change: ``{"experiments": [...], "deployments":
  [{"spec", "process_hashes"}], "delete": [names]}``; 422 with ``errors`` (an
  unschedulable experiment carries the scheduler's reason) and nothing changed;
- ``GET /processes[?experiment=NAME…]`` — every process of the experiments and of the
  deployments applied through the CLI, with the CLI's spec hash: what ``status`` shows;
- ``GET /experiments``, ``GET /experiments/{name}`` (processes and addresses),
  ``DELETE /experiments/{name}`` (an experiment, or a deployment applied through the CLI).

A process's output is the logs of its job: ``GET /deployments/{job_id}/logs`` (an
experiment's process runs as the one-job deployment ``<experiment>.<process>``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from symphony.conductor.api_auth import require_token
from symphony.conductor.api_common import ERROR_RESPONSES, error, invalid, read_json
from symphony.conductor.controller import Conductor
from symphony.conductor.experiments import ApplyError, Experiments


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
        return book.processes(experiment, stopped=stopped)

    @router.get("/experiments")
    async def list_experiments() -> list[dict[str, Any]]:
        return [book.describe(name) for name in book.names()]

    @router.get("/experiments/{name}", responses={404: {"description": "no such experiment"}})
    async def get_experiment(name: str) -> Any:
        try:
            return book.describe(name)
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

    return router
