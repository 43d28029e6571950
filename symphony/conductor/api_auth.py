"""The API token: made on first start, checked on every call but ``/healthz``.

Callers send ``Authorization: Bearer <token>``. The web UI cannot keep a secret in
JavaScript, so it trades the token once (``/ui?token=…``) for an HttpOnly,
SameSite=Strict cookie that :func:`require_token` accepts too; SameSite=Strict keeps
other sites from riding on it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import HTTPException, Request

TOKEN_FILE = "api-token"
COOKIE = "symphony_token"
UI_HEADER = "X-Symphony-UI"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def ensure_token(storage: Path) -> str:
    """Read ``<storage>/api-token``, creating it (mode 0600) on first start."""
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


def token_matches(request: Request, given: str) -> bool:
    expected: str = request.app.state.token
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def given_token(request: Request) -> str:
    """The bearer token of the request, else the UI's cookie."""
    token = bearer(request)
    return token if token is not None else request.cookies.get(COOKIE, "")


async def require_token(request: Request) -> None:
    """A dependency for every router but the health check.

    A change made with the cookie must carry the UI's ``X-Symphony-UI`` header: a page
    on another port of the same host is "same site" for the cookie, but a custom header
    makes its browser ask first (CORS), and the conductor never says yes.
    """
    if not token_matches(request, given_token(request)):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API token: send 'Authorization: Bearer <token>' "
            "with the token from the conductor's <storage>/api-token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if bearer(request) is None and request.method not in SAFE_METHODS and not request.headers.get(UI_HEADER):
        raise HTTPException(
            status_code=403,
            detail=f"a browser session may change things only from the Symphony UI (no {UI_HEADER} header); "
            "programs send 'Authorization: Bearer <token>'",
        )
