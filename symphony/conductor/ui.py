"""The web UI at ``/ui``: a static page and a little JavaScript over the JSON API.

The token handshake (DESIGN §4, as Jupyter does it): ``/ui?token=…`` with the right
token answers the page and sets an HttpOnly, SameSite=Strict cookie that the API
accepts in place of the bearer header; the page then drops the token from the
address bar. Without a valid cookie, ``/ui`` shows a small sign-in form that sends
the token the same way. Static files come only from the ``ui/`` folder, by plain file
name and known extension, and need the cookie like the API.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from symphony.conductor.api_auth import COOKIE, given_token, require_token, token_matches

UI_DIR = Path(__file__).resolve().parent / "ui"
COOKIE_MAX_AGE = 30 * 24 * 3600
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")

APP_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
LOGIN_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
             "frame-ancestors 'none'")

router = APIRouter(tags=["ui"])


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def login_page(message: str = "", *, status: int = 200) -> HTMLResponse:
    note = f'<p class="err">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Symphony conductor: sign in</title>
<style>
body{{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f6f9;color:#1d2330;margin:0}}
main{{max-width:28rem;margin:12vh auto;background:#fff;border:1px solid #dde2ea;border-radius:10px;padding:2rem}}
h1{{font-size:1.3rem;margin:0 0 .5rem}} p{{color:#4a5468}} code{{background:#eef1f5;padding:0 .25rem;border-radius:3px}}
input{{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #c5ccd8;border-radius:6px;font:inherit}}
button{{margin-top:.8rem;padding:.5rem 1.1rem;border:0;border-radius:6px;background:#2f6fdf;color:#fff;font:inherit;cursor:pointer}}
.err{{color:#b3261e;font-weight:600}}
</style></head>
<body><main>
<h1>Symphony conductor</h1>
{note}
<p>Open the link the conductor printed when it started (<code>/ui?token=…</code>), or paste the
token from the conductor's <code>&lt;storage&gt;/api-token</code> file.</p>
<form method="get" action="/ui" autocomplete="off">
<label for="token">API token</label>
<input id="token" name="token" type="password" required autofocus>
<button type="submit">Sign in</button>
</form>
</main></body></html>"""
    return HTMLResponse(body, status_code=status, headers=_headers(LOGIN_CSP))


def _app_page(request: Request) -> HTMLResponse:
    page = (UI_DIR / "index.html").read_text()
    return HTMLResponse(page, headers=_headers(APP_CSP))


@router.get("/ui", include_in_schema=False)
async def ui(request: Request, token: str | None = None) -> Response:
    if token is not None:
        if not token_matches(request, token.strip()):
            return login_page("That token is not this conductor's. Check <storage>/api-token.", status=401)
        response = _app_page(request)
        response.set_cookie(COOKIE, token.strip(), max_age=COOKIE_MAX_AGE, path="/", httponly=True,
                            samesite="strict", secure=bool(request.app.state.secure_cookie))
        return response
    if token_matches(request, given_token(request)):
        return _app_page(request)
    return login_page()


@router.get("/ui/", include_in_schema=False)
async def ui_slash(request: Request, token: str | None = None) -> Response:
    return await ui(request, token)


@router.get("/ui/logout", include_in_schema=False)
async def logout() -> Response:
    response = login_page("Signed out.")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def static_file(name: str) -> Path | None:
    """The file ``ui/<name>`` when ``name`` is a plain file name there with a known
    extension; None for anything else (folders, dot files, ``..``, other folders)."""
    if not SAFE_NAME.match(name) or Path(name).suffix not in CONTENT_TYPES:
        return None
    root = UI_DIR.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


@router.get("/ui/static/{name:path}", include_in_schema=False, dependencies=[Depends(require_token)])
async def static(name: str) -> Response:
    path = static_file(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no UI file {name!r}")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=headers)
