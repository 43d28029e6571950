"""Schemathesis against a real conductor: requests generated from ``/openapi.json``
(bodies from the JSON Schemas) never get a 5xx, and every answer matches the document.

The conductor has no nodes, so the deployments the run creates only wait: nothing runs
the generated commands or fetches the generated image URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from .conftest import Cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bare_conductor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("schemathesis"))
    try:
        c.start_conductor()
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def api_schema(bare_conductor: Cluster) -> Any:
    token = (Path(bare_conductor.storage) / "api-token").read_text().strip()
    schema = schemathesis.openapi.from_url(f"{bare_conductor.url}/openapi.json",
                                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
    schema.config.update(base_url=bare_conductor.url, headers={"Authorization": f"Bearer {token}"})
    return schema


# Routes of this folder's API are held to every check (status codes, content types and
# bodies as documented, valid data accepted, auth enforced); the experiment routes
# (tests/conductor_cluster) to the one every route must pass: no 5xx.
FULLY_CHECKED = ("/deployments", "/nodes", "/events", "/metrics", "/healthz")


def test_no_server_errors_and_answers_match_the_document(api_schema: Any) -> None:
    """Every operation, each with its own hypothesis run; failures are collected so that one
    run names every operation that fails. (Driven by hand rather than through schemathesis'
    pytest plugin, which depends on pytest internals that change between releases.)"""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            if case.query and str(case.query.get("follow", "")).lower() in ("true", "1", "yes", "on"):
                case.query["follow"] = False  # a followed log never ends; test_api follows logs itself
            if case.operation.path.startswith(FULLY_CHECKED):
                case.call_and_validate(timeout=10)
            else:
                case.call_and_validate(timeout=10, checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
