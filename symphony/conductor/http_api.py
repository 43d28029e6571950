"""The conductor's HTTP API (FastAPI), served in the conductor's own event loop.

:func:`create_app` builds the app from routers so later work can add its own
(``app.include_router``) behind the same bearer-token dependency, :func:`require_token`.

Deployments are shown as ``{"id", "name", <spec fields>, "spec_hash", "created_at",
"updated_at", "state", "jobs": [{"job_id", "replica", "node", "host", "epoch",
"state", "pid", "restarts", "exit_code", "started_at", "stopped_at", "reason"}]}``.
Every route is ``async``: the conductor's state lives on the event loop's thread and
FastAPI would run plain functions in a thread pool.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from symphony.conductor.controller import Conductor, Conflict, NotFound
from symphony.errors import UserError
from symphony.manifests import deployment_from_api
from symphony.model import Deployment

TOKEN_FILE = "api-token"


def ensure_token(storage: Path) -> str:
    """Read ``<storage>/api-token``, creating it (mode 0600) on first start."""
    import os

    path = storage / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    storage.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def parse_deployment(body: Any) -> Deployment:
    """Validate a POST/PATCH body into a Deployment (one message per problem)."""
    default = f"dep-{secrets.token_hex(4)}"
    return deployment_from_api(body, default_name=default)


async def require_token(request: Request) -> None:
    """Every route but /healthz: ``Authorization: Bearer <token>`` (or the UI's cookie)."""
    expected: str = request.app.state.token
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get("symphony_token", "")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def conductor_of(request: Request) -> Conductor:
    conductor: Conductor = request.app.state.conductor
    return conductor


def _problem(exc: UserError, status: int = 422) -> JSONResponse:
    messages = [p.message for p in exc.problems]
    return JSONResponse({"detail": "; ".join(messages), "errors": messages}, status_code=status)


health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    c = conductor_of(request)
    return {"ok": True, "nodes": len(c.registry.live())}


deployments = APIRouter(prefix="/deployments", tags=["deployments"], dependencies=[Depends(require_token)])


@deployments.post("", status_code=201)
async def create_deployment(request: Request) -> Any:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": "the body must be JSON", "errors": ["the body must be JSON"]}, status_code=400)
    try:
        dep = parse_deployment(body)
        return conductor_of(request).create_deployment(dep)
    except UserError as exc:
        return _problem(exc)
    except Conflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@deployments.get("")
async def list_deployments(request: Request) -> list[dict[str, Any]]:
    return conductor_of(request).list_deployments()


@deployments.get("/{dep_id}")
async def get_deployment(dep_id: str, request: Request) -> dict[str, Any]:
    try:
        return conductor_of(request).describe(dep_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@deployments.get("/{dep_id}/logs")
async def deployment_logs(dep_id: str, request: Request, tail: int = 200) -> dict[str, Any]:
    """Recent output lines the nodes streamed (kept in memory, newest last)."""
    try:
        return {"id": dep_id, "lines": conductor_of(request).recent_logs(dep_id, tail=tail)}
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@deployments.patch("/{dep_id}")
async def patch_deployment(dep_id: str, request: Request) -> Any:
    """Merge the body's fields into the deployment's spec (e.g. ``{"desired_state": "stopped"}``)."""
    c = conductor_of(request)
    try:
        current = c.describe(dep_id)
        body = await request.json()
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ValueError:
        return JSONResponse({"detail": "the body must be JSON", "errors": ["the body must be JSON"]}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"detail": "the body must be a JSON object"}, status_code=422)
    if body.get("name", dep_id) != dep_id:
        return JSONResponse({"detail": "name: a deployment cannot be renamed"}, status_code=422)
    spec_keys = ("cluster", "node_group", "replicas", "capacity_requests", "kind", "config",
                 "restart_policy", "desired_state")
    merged = {k: current[k] for k in spec_keys if k in current}
    merged.update({k: v for k, v in body.items() if k != "name"})
    merged["name"] = dep_id
    try:
        return c.update_deployment(parse_deployment(merged))
    except UserError as exc:
        return _problem(exc)


@deployments.delete("/{dep_id}")
async def delete_deployment(dep_id: str, request: Request) -> dict[str, Any]:
    try:
        conductor_of(request).delete_deployment(dep_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return {"deleted": dep_id}


nodes = APIRouter(prefix="/nodes", tags=["nodes"], dependencies=[Depends(require_token)])


@nodes.get("")
async def list_nodes(request: Request) -> list[dict[str, Any]]:
    return conductor_of(request).list_nodes()


def create_app(conductor: Conductor, *, token: str) -> FastAPI:
    app = FastAPI(title="Symphony conductor", version="1")
    app.state.conductor = conductor
    app.state.token = token
    app.include_router(health)
    app.include_router(deployments)
    app.include_router(nodes)
    return app
