"""The conductor's HTTP API (FastAPI), served in the conductor's own event loop.

:func:`create_app` builds the app from routers so later work can add its own
(``app.include_router``) behind the same bearer-token dependency, :func:`require_token`.
Routers: deployments (here), logs (``api_logs``), nodes, events, metrics, the web UI.

Deployments are shown as ``{"id", "name", <spec fields>, "spec_hash", "created_at",
"updated_at", "state", "reason", "jobs": [{"job_id", "replica", "node", "host", "epoch",
"state", "pid", "restarts", "exit_code", "started_at", "stopped_at", "reason"}]}``;
``reason`` says why a deployment that should run does not (yet).
Every route is ``async``: the conductor's state lives on the event loop's thread and
FastAPI would run plain functions in a thread pool.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from symphony.conductor import api_events, api_logs, api_metrics, api_nodes, experiments_api, ui
from symphony.conductor.api_auth import TOKEN_FILE, ensure_token, require_token
from symphony.conductor.api_common import (
    ERROR_RESPONSES,
    api_schema,
    conductor_of,
    error,
    install_error_handlers,
    invalid,
    read_json,
    user_error,
)
from symphony.conductor.controller import Conductor, Conflict, NotFound
from symphony.errors import UserError
from symphony.manifests import deployment_from_api
from symphony.model import Deployment

__all__ = ["TOKEN_FILE", "conductor_of", "create_app", "ensure_token", "parse_deployment", "require_token"]

SPEC_KEYS = ("cluster", "node_group", "replicas", "capacity_requests", "kind", "config",
             "restart_policy", "desired_state")


# Each replica is a stored job the conductor places one by one: a typo like 100000 must
# be refused, not freeze the conductor while it writes the rows.
MAX_REPLICAS = 1000


def parse_deployment(body: Any) -> Deployment:
    """Validate a POST/PATCH body into a Deployment (one message per problem)."""
    default = f"dep-{secrets.token_hex(4)}"
    dep = deployment_from_api(body, default_name=default)
    if dep.replicas > MAX_REPLICAS:
        raise UserError(f"replicas: {dep.replicas} is more than the {MAX_REPLICAS} a deployment may have")
    return dep


def view(dep: dict[str, Any]) -> dict[str, Any]:
    """A deployment as the API shows it: the controller's picture plus a top-level reason."""
    reason = ""
    if dep.get("state") not in ("running", "completed"):
        reason = next((j["reason"] for j in dep.get("jobs", []) if j.get("reason")), "")
    return {**dep, "reason": reason}


health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness, without a token: is the conductor up, how many nodes are connected."""
    c = conductor_of(request)
    return {"ok": True, "nodes": len(c.registry.live())}


deployments = APIRouter(prefix="/deployments", tags=["deployments"], dependencies=[Depends(require_token)],
                        responses=ERROR_RESPONSES)



def body_schema(*, partial: bool = False) -> dict[str, Any]:
    """The request body in OpenAPI: ``schemas/deployment.json`` (refs inlined)."""
    schema = api_schema("deployment", partial=partial)
    schema["properties"]["replicas"]["maximum"] = MAX_REPLICAS
    if partial:  # the path names it; a body may repeat the same name, never another
        del schema["properties"]["name"]
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_BODY = body_schema()
_PATCH_BODY = body_schema(partial=True)


@deployments.post("", status_code=201, openapi_extra={"requestBody": _BODY},
                  responses={400: {"description": "the body is not JSON"},
                             409: {"description": "a deployment with this name exists"}})
async def create_deployment(request: Request) -> Any:
    """Create a deployment: a Deployment manifest's ``spec`` plus ``name`` (the seed's body,
    without a name, is accepted as it is and gets a generated one)."""
    try:
        body = await read_json(request)
    except ValueError as exc:
        return error(400, str(exc))
    try:
        dep = parse_deployment(body)
    except UserError as exc:
        return user_error(exc)
    refused = unschedulable(conductor_of(request), dep)
    if refused is not None:
        return refused
    try:
        return JSONResponse(view(conductor_of(request).create_deployment(dep)), status_code=201)
    except Conflict as exc:
        return error(409, f"{exc}; choose another name, or PATCH /deployments/{dep.name} to change it")


@deployments.get("")
async def list_deployments(
    request: Request,
    state: str | None = Query(None, description="current state, e.g. running, pending, stopped"),
    desired_state: Literal["running", "stopped"] | None = None,
    node: str | None = Query(None, description="only deployments with a replica on this node"),
    node_group: str | None = None,
    kind: Literal["exec", "docker"] | None = None,
    q: str | None = Query(None, description="part of the name"),
) -> list[dict[str, Any]]:
    out = []
    for dep in conductor_of(request).list_deployments():
        if state is not None and dep["state"] != state:
            continue
        if desired_state is not None and dep.get("desired_state", "running") != desired_state:
            continue
        if node is not None and not any(j["node"] == node for j in dep["jobs"]):
            continue
        if node_group is not None and dep.get("node_group") != node_group:
            continue
        if kind is not None and dep.get("kind", "exec") != kind:
            continue
        if q is not None and q not in dep["id"]:
            continue
        out.append(view(dep))
    return out


@deployments.get("/{dep_id}", responses={404: {"description": "no such deployment"}})
async def get_deployment(dep_id: str, request: Request) -> dict[str, Any]:
    try:
        return view(conductor_of(request).describe(dep_id))
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=f"{exc}; GET /deployments lists them") from exc


@deployments.patch("/{dep_id}", openapi_extra={"requestBody": _PATCH_BODY},
                   responses={400: {"description": "the body is not JSON"},
                              404: {"description": "no such deployment"}})
async def patch_deployment(dep_id: str, request: Request) -> Any:
    """Replace the top-level spec fields the body names (e.g. ``{"desired_state": "stopped"}``);
    the others stay. Nothing changes when the result is invalid."""
    c = conductor_of(request)
    try:
        current = c.describe(dep_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=f"{exc}; GET /deployments lists them") from exc
    try:
        body = await read_json(request)
    except ValueError as exc:
        return error(400, str(exc))
    if not isinstance(body, dict):
        return user_error(UserError("the body must be a JSON object of spec fields"))
    if body.get("name", dep_id) != dep_id:
        return user_error(UserError("name: a deployment cannot be renamed; create a new one and delete this"))
    merged = {k: current[k] for k in SPEC_KEYS if k in current}
    merged.update({k: v for k, v in body.items() if k != "name"})
    merged["name"] = dep_id
    try:
        dep = parse_deployment(merged)
    except UserError as exc:
        return user_error(exc)
    refused = unschedulable(c, dep)
    if refused is not None:
        return refused
    return view(c.update_deployment(dep))


def unschedulable(c: Conductor, dep: Deployment) -> JSONResponse | None:
    """422 with the scheduler's reason when no known node could ever hold a replica.

    Work that does not fit *now* waits as pending (capacity frees up); work that no
    node could hold even idle is refused, so nothing is half-applied. With no node
    known yet (a first start, nodes still connecting) everything is accepted.
    """
    if dep.desired_state == "stopped":
        return None
    reason = c.placer.never_fits(dep.capacity_requests, node_group=dep.node_group, workload=dep.name)
    if reason is None:
        return None
    where = "node_group" if "group" in reason and reason.startswith("no ") else "capacity_requests"
    return invalid([f"{where}: deployment {dep.name} is unschedulable: {reason}"])


@deployments.delete("/{dep_id}", responses={404: {"description": "no such deployment"}})
async def delete_deployment(dep_id: str, request: Request) -> dict[str, Any]:
    """Stop every replica and forget the deployment."""
    try:
        conductor_of(request).delete_deployment(dep_id)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=f"{exc}; GET /deployments lists them") from exc
    return {"deleted": dep_id}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, with the bearer scheme declared on every protected route."""
    if app.openapi_schema is None:
        schema = app.openapi()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "the token in the conductor's <storage>/api-token"}}
        for path, operations in schema.get("paths", {}).items():
            if path == "/healthz":
                continue
            for op in operations.values():
                op["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(conductor: Conductor, *, token: str, secure_cookie: bool = False) -> FastAPI:
    app = FastAPI(title="Symphony conductor", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.conductor = conductor
    app.state.token = token
    app.state.secure_cookie = secure_cookie
    install_error_handlers(app)
    app.include_router(health)
    app.include_router(deployments)
    app.include_router(api_logs.router)
    app.include_router(api_nodes.router)
    app.include_router(api_events.router)
    app.include_router(api_metrics.router)
    app.include_router(ui.router)
    app.include_router(experiments_api.router_for(conductor))  # experiments, /apply, /processes

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    async def openapi() -> dict[str, Any]:
        return _openapi(app)

    return app
