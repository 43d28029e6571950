"""The UI's token handshake, its cookie, safe static files, and HTTPS with the server certificate."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from symphony import certs

from .conftest import Cluster

pytestmark = pytest.mark.timeout(120)


def _token(c: Cluster) -> str:
    return (c.storage / "api-token").read_text().strip()


def test_token_url_sets_an_httponly_strict_cookie_that_the_api_accepts(two_nodes: Cluster) -> None:
    c = two_nodes
    browser = httpx.Client(base_url=c.url, timeout=10)
    login = browser.get("/ui")
    assert login.status_code == 200 and "API token" in login.text and "app.js" not in login.text
    assert browser.get("/nodes").status_code == 401

    wrong = browser.get("/ui", params={"token": "guess"})
    assert wrong.status_code == 401 and "not this conductor" in wrong.text
    assert "set-cookie" not in wrong.headers

    page = browser.get("/ui", params={"token": _token(c)})
    assert page.status_code == 200 and "/ui/static/app.js" in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("symphony_token=")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
    for header in ("content-security-policy", "x-frame-options", "referrer-policy"):
        assert header in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"

    # the cookie alone now authorizes the page, its files and the API
    assert "app.js" in browser.get("/ui").text
    assert browser.get("/nodes").status_code == 200
    js = browser.get("/ui/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert browser.get("/ui/static/app.css").headers["content-type"].startswith("text/css")

    out = browser.get("/ui/logout")
    assert "Signed out" in out.text and 'symphony_token=""' in out.headers["set-cookie"]
    assert browser.get("/nodes").status_code == 401


def test_the_cookie_changes_things_only_with_the_ui_header(two_nodes: Cluster) -> None:
    """A page on another port of 127.0.0.1 is "same site" for the cookie: its form or
    no-cors fetch (text/plain, no custom header) must not create or delete anything."""
    c = two_nodes
    session = httpx.Client(base_url=c.url, timeout=10, cookies={"symphony_token": _token(c)})
    body = b'{"name": "ui-csrf", "desired_state": "stopped", "config": {"command": "true"}}'
    forged = session.post("/deployments", content=body, headers={"content-type": "text/plain"})
    assert forged.status_code == 403 and "X-Symphony-UI" in forged.json()["detail"]
    assert c.http.get("/deployments/ui-csrf").status_code == 404
    made = session.post("/deployments", content=body, headers={"X-Symphony-UI": "1"})
    assert made.status_code == 201, made.text
    assert session.delete("/deployments/ui-csrf").status_code == 403
    assert session.get("/deployments/ui-csrf").status_code == 200  # reading needs no header
    assert session.delete("/deployments/ui-csrf", headers={"X-Symphony-UI": "1"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/ui/static/../http_api.py", "/ui/static/%2e%2e/http_api.py", "/ui/static/..%2fhttp_api.py",
     "/ui/static/%2e%2e%2f%2e%2e%2fcontroller.py", "/ui/static//etc/passwd", "/ui/static/index.html",
     "/ui/static/", "/ui/static/.", "/ui/static/nope.js", "/ui/static/app.js%00.css",
     "/ui/static/ui/app.js", "/ui/static/..%5chttp_api.py"],
)
def test_static_files_never_leave_the_ui_folder(two_nodes: Cluster, path: str) -> None:
    c = two_nodes
    resp = httpx.get(c.url + path, cookies={"symphony_token": _token(c)}, timeout=10, follow_redirects=True)
    assert resp.status_code == 404, (path, resp.status_code, resp.text[:200])
    assert "def " not in resp.text and "root:" not in resp.text


def test_https_with_the_conductors_certificate(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.config.write_text(c.config.read_text().replace(
        f"  http: {{listen: 127.0.0.1:{c.http_port}}}\n", f"  http: {{listen: 127.0.0.1:{c.http_port}, tls: true}}\n"))
    c.url = f"https://127.0.0.1:{c.http_port}"
    certs.ensure_conductor_certs(c.certs)  # as `symphony certs init` would; the conductor keeps them
    ca = str(c.certs / "ca.pem")
    c.http = httpx.Client(base_url=c.url, timeout=10, verify=ssl.create_default_context(cafile=ca))
    try:
        c.start_conductor()
        assert c.http.get("/nodes").status_code == 200
        assert f"UI https://127.0.0.1:{c.http_port}/ui?token=" in c.conductor.output()  # type: ignore[union-attr]
        page = c.http.get("/ui", params={"token": _token(c)})
        assert "secure" in {p.strip().lower() for p in page.headers["set-cookie"].split(";")}
        with pytest.raises(httpx.ConnectError):  # not trusted without the conductor's CA
            httpx.get(c.url + "/healthz", timeout=5)
        with pytest.raises(httpx.HTTPError):  # and no plain HTTP on that port
            httpx.get(f"http://127.0.0.1:{c.http_port}/healthz", timeout=5)
    finally:
        c.close()
