"""What every router of the conductor's API shares: the conductor, error bodies.

Every error is JSON ``{"detail": "<one line a person can act on>", "errors": [lines],
"fields": [{"field": "config.command", "message": …}]}`` (``fields`` only for 422s),
whether it comes from our own checks, FastAPI's parameter checks, or a bug (500,
logged with its traceback; the body says to look at the conductor's log).
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from symphony.conductor.controller import Conductor
from symphony.errors import UserError
from symphony.manifests.schema import SCHEMA_DIR

log = logging.getLogger("symphony.conductor")

_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.S)

# For OpenAPI ``responses=``: what the error statuses mean on every protected route.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong API token"},
    403: {"description": "a change sent with the UI's cookie but not from the UI"},
    422: {"description": "invalid parameters or body; `fields` names each offending field"},
}


def conductor_of(request: Request) -> Conductor:
    conductor: Conductor = request.app.state.conductor
    return conductor


def error(status: int, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "errors": [message]}, status_code=status, headers=headers)


def split_field(message: str) -> tuple[str | None, str]:
    """``"config.command: expected …"`` → ``("config.command", "expected …")``."""
    m = _FIELD.match(message)
    if m is None:
        return None, message
    field = m.group(1).removeprefix("spec.")
    return field, m.group(2)


def invalid(messages: list[str], *, status: int = 422) -> JSONResponse:
    fields = []
    for message in messages:
        field, text = split_field(message)
        fields.append({"field": field, "message": text})
    return JSONResponse({"detail": "; ".join(messages), "errors": messages, "fields": fields}, status_code=status)


def user_error(exc: UserError, *, status: int = 422) -> JSONResponse:
    return invalid([p.message for p in exc.problems], status=status)


async def read_json(request: Request) -> Any:
    """The body as JSON; ``ValueError`` with a readable message otherwise."""
    raw = await request.body()
    if not raw.strip():
        raise ValueError("the body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not valid JSON: {exc}") from exc


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            methods = allowed_methods(request)
            headers["Allow"] = ", ".join(methods)
            detail = f"{request.method} is not allowed here; use {' or '.join(methods)}"
        return error(exc.status_code, detail, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body", "header", "cookie")]
            where = ".".join(loc) or "request"
            messages.append(f"{where}: {e.get('msg', 'invalid value')}")
        return invalid(messages)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("HTTP %s %s failed", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the conductor's log has the details")


def _inline(name: str, *, partial: bool = False) -> dict[str, Any]:
    """``schemas/<name>.json`` with every ``$ref`` inlined, for OpenAPI request bodies.

    The JSON Schemas stay the single source of truth; OpenAPI only shows them.
    ``partial`` drops ``required`` at the top (a PATCH body).
    """
    docs = {}
    for path in SCHEMA_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        docs[doc["$id"]] = doc

    def resolve(node: Any, current: dict[str, Any]) -> Any:
        if isinstance(node, list):
            return [resolve(n, current) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            uri, _, pointer = node["$ref"].partition("#")
            doc = docs[uri] if uri else current
            target: Any = doc
            for part in pointer.strip("/").split("/"):
                if part:
                    target = target[part]
            return resolve(target, doc)
        return {k: resolve(v, current) for k, v in node.items()
                if k not in ("$schema", "$id", "$defs") and not k.startswith("x-")}

    root = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    schema: dict[str, Any] = resolve(root, root)
    if partial:
        schema.pop("required", None)
    return schema


@cache
def _schema_json(name: str, partial: bool) -> str:
    return json.dumps(_inline(name, partial=partial))


def api_schema(name: str, *, partial: bool = False) -> dict[str, Any]:
    """A fresh copy each call: FastAPI merges it into the OpenAPI document."""
    schema: dict[str, Any] = json.loads(_schema_json(name, partial))
    return schema
