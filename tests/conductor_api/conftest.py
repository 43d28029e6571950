"""A real conductor (subprocess) with two real nodes on loopback, for the API and UI tests.

The process helpers are the conductor tests' own (``tests/conductor/conftest.py``),
loaded by path under another module name so both folders keep a plain ``conftest``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "conductor" / "conftest.py"
_spec = importlib.util.spec_from_file_location("symphony_conductor_test_helpers", _PATH)
assert _spec is not None and _spec.loader is not None
helpers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = helpers
_spec.loader.exec_module(helpers)

Cluster = helpers.Cluster
pid_alive = helpers.pid_alive
sleeper = helpers.sleeper
sse = helpers.sse
wait_for = helpers.wait_for

__all__ = ["Cluster", "pid_alive", "sleeper", "sse", "wait_for"]


@pytest.fixture(scope="session")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A conductor with n1 (groups g, cpu; A=10) and n2 (group g; A=10, B=4).

    Shared by tests that clean up what they create (each uses its own deployment names).
    """
    c = Cluster(tmp_path_factory.mktemp("api"))
    try:
        c.start_conductor()
        c.start_node("n1", groups=("g", "cpu"), caps={"A": 10})
        c.start_node("n2", groups=("g",), caps={"A": 10, "B": 4})
        yield c
    finally:
        c.close()
