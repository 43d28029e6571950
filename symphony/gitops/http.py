"""``serve``'s small HTTP endpoint (stdlib ``http.server``; loopback by default).

- ``GET /status`` — JSON: every source and experiment (sync, health, revision, errors, history);
- ``GET /healthz`` — ``ok`` while the loop runs;
- ``POST /hooks/git`` — sync git sources now (``?source=ID`` for one). With a
  ``hook_secret_file`` the request needs ``Authorization: Bearer SECRET`` or a
  GitHub ``X-Hub-Signature-256`` of its body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from symphony.gitops.loop import Loop

MAX_BODY = 1 << 20


class StatusServer:
    def __init__(
        self,
        loop: Loop,
        status: Callable[[], dict[str, Any]],
        *,
        host: str = "127.0.0.1",
        port: int = 8090,
        secret: str | None = None,
    ) -> None:
        self.loop = loop
        handler = _handler(loop, status, secret)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="serve http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def authorized(secret: str | None, headers: Any, body: bytes) -> bool:
    if secret is None:
        return True
    bearer = headers.get("Authorization", "")
    if bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].strip(), secret):
        return True
    signature = headers.get("X-Hub-Signature-256", "")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(signature) and hmac.compare_digest(signature, expected)


def _handler(
    loop: Loop, status: Callable[[], dict[str, Any]], secret: str | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "symphony-serve"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the loop logs
            pass

        def _send(self, code: int, body: Any) -> None:
            data = (json.dumps(body, indent=1, default=str) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/healthz":
                self._send(200, {"status": "ok"})
            elif path == "/status":
                self._send(200, status())
            else:
                self._send(404, {"error": f"no such endpoint: GET {path}"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "body too large"})
                return
            body = self.rfile.read(length) if length else b""
            if url.path != "/hooks/git":
                self._send(404, {"error": f"no such endpoint: POST {url.path}"})
                return
            if not authorized(secret, self.headers, body):
                self._send(401, {"error": "missing or wrong hook secret"})
                return
            wanted = parse_qs(url.query).get("source", [None])[0]
            hit = loop.trigger(kind="git", source=wanted)
            if not hit:
                self._send(404, {"error": f"no git source{' ' + wanted if wanted else ''} to sync"})
                return
            self._send(202, {"syncing": hit})

    return Handler
