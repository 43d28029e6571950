"""Pytest fixtures for testing against real Symphony components (a pytest plugin).

Registered as the ``symphony`` pytest11 entry point; before the package is
installed, load it with ``pytest_plugins = ["symphony.testing"]``. Like
libtmux's plugin, every test that asks for ``tmux_socket`` gets its own tmux
server on a unique socket, killed afterwards together with every process it
started. Light on imports: Symphony's modules load only when a fixture runs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from symphony.clusters.tmux import TmuxCluster

T = TypeVar("T")

__all__ = ["symphony_home", "tmux_cluster", "tmux_socket", "wait_for"]


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Fails the test with ``message`` (a string, or a callable giving the current
    situation) after ``timeout`` seconds. Generous timeouts keep tests stable on
    a loaded machine; fast predicates keep them quick.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout:g}s: {text}")
        time.sleep(interval)


@pytest.fixture
def symphony_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty ``SYMPHONY_HOME`` for this test."""
    home = tmp_path / "symphony-home"
    home.mkdir()
    monkeypatch.setenv("SYMPHONY_HOME", str(home))
    return home


@pytest.fixture
def tmux_socket(symphony_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique tmux socket name, set as ``SYMPHONY_TMUX_SOCKET``.

    Afterwards the server on it is killed, with its supervisors, their children
    and any child recorded in a state file under ``symphony_home``.
    """
    name = f"symphony-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SYMPHONY_TMUX_SOCKET", name)
    yield name
    from symphony.clusters.tmux import shutdown_server

    shutdown_server(name, state_root=symphony_home)


@pytest.fixture
def tmux_cluster(tmux_socket: str) -> TmuxCluster:
    """The ``local`` tmux cluster on this test's own socket and state folder."""
    from symphony.clusters.tmux import TmuxCluster
    from symphony.model import LOCAL

    return TmuxCluster(LOCAL)
