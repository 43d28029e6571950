"""The ``serve`` endpoint over real HTTP on loopback, with a loop on recording clusters."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony.gitops.http import StatusServer, authorized
from symphony.gitops.loop import Loop
from symphony.gitops.report import status_document
from symphony.gitops.runner import SourceRunner

from .helpers import MemorySource, experiment, recording

SECRET = "hunter2"


@pytest.fixture
def served(symphony_home: Path) -> Iterator[tuple[str, Loop]]:
    source = MemorySource({"a.yaml": experiment("a", {"p": "sleep 1"})}, id="ops")
    reconciler, _made = recording()
    runner = SourceRunner(source, reconciler=reconciler)
    loop = Loop([runner])
    loop.step()
    server = StatusServer(
        loop, lambda: status_document([runner], reconciler), host="127.0.0.1", port=0, secret=SECRET
    )
    server.start()
    yield f"http://{server.address}", loop
    server.stop()


def call(url: str, **kw: Any) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, **kw), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_status_and_healthz(served: tuple[str, Loop]) -> None:
    base, _loop = served
    assert call(base + "/healthz") == (200, {"status": "ok"})
    code, body = call(base + "/status")
    assert code == 200
    (exp,) = body["experiments"]
    assert exp["name"] == "a" and exp["source"] == "ops" and exp["sync"] == "Synced"
    assert exp["health"] == "Healthy" and exp["processes"] == 1
    assert exp["last_reconcile"]["result"] == "applied" and exp["revision"]
    assert body["sources"][0]["id"] == "ops" and body["sources"][0]["errors"] == []
    assert call(base + "/other")[0] == 404


def test_hook_needs_the_secret_as_bearer_or_github_signature(served: tuple[str, Loop]) -> None:
    base, loop = served
    body = b'{"ref": "refs/heads/main"}'
    assert call(base + "/hooks/git", method="POST", data=body)[0] == 401
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    code, answer = call(
        base + "/hooks/git", method="POST", data=body, headers={"X-Hub-Signature-256": signature}
    )
    assert (code, answer) == (202, {"syncing": ["ops"]}) and loop.next_delay() == 0
    code, _ = call(
        base + "/hooks/git?source=nope",
        method="POST",
        data=body,
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert code == 404


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({}, False),
        ({"Authorization": "Bearer wrong"}, False),
        ({"Authorization": f"Bearer {SECRET}"}, True),
        ({"X-Hub-Signature-256": "sha256=00"}, False),
    ],
)
def test_authorized(headers: dict[str, str], ok: bool) -> None:
    assert authorized(SECRET, headers, b"x") is ok
    assert authorized(None, headers, b"x")
