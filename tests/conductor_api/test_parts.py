"""The API's pure parts: metrics text, histograms, error fields, static file names, schemas."""

from __future__ import annotations

import math

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.conductor import api_metrics
from symphony.conductor.api_common import api_schema, split_field
from symphony.conductor.sched_stats import Histogram, SchedulingStats
from symphony.conductor.ui import UI_DIR, static_file
from symphony.errors import UserError
from symphony.manifests import deployment_from_api

from .promtext import parse_metrics


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (3.0, "3"), (2.5, "2.5"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (1e-4, "0.0001")],
)
def test_numbers(value: float, text: str) -> None:
    assert api_metrics.number(value) == text


def test_label_values_are_escaped() -> None:
    fam = api_metrics.Family("x_total", "gauge", "help")
    fam.add(1, node='a"b\\c\nd')
    text = api_metrics.render([fam])
    assert 'x_total{node="a\\"b\\\\c\\nd"} 1' in text
    assert parse_metrics(text) == {'x_total{node="a\\"b\\\\c\\nd"}': 1.0}


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), max_size=50))
def test_histogram_is_cumulative_and_ends_with_the_count(values: list[float]) -> None:
    h = Histogram((0.1, 1.0, 10.0))
    for v in values:
        h.observe(v)
    cum = h.cumulative()
    counts = [n for _, n in cum]
    assert counts == sorted(counts) and cum[-1] == (math.inf, len(values))
    for bound, n in cum:
        assert n == sum(1 for v in values if v <= bound)
    assert h.total == pytest.approx(sum(values))


def test_histogram_rejects_unsorted_bounds() -> None:
    with pytest.raises(ValueError):
        Histogram((1.0, 0.5))


def test_scheduling_stats_measure_wait_until_placed() -> None:
    s = SchedulingStats()
    s.waiting("a-0", 10.0)
    s.waiting("a-0", 11.0)  # still the first time it started waiting
    s.waiting("b-0", 10.0)
    s.placed("a-0", 12.5)
    assert s.wait.count == 1 and s.wait.total == pytest.approx(2.5)
    s.keep_only(["c-0"])  # b-0 was deleted while pending
    assert s.waiting_since == {}
    s.placed("b-0", 13.0)  # unknown: not counted
    assert s.wait.count == 1


def test_metrics_families_from_plain_data() -> None:
    nodes = [
        {"node_id": "n1", "state": "ready", "capacities_total": {"A": 10}, "capacities_used": {"A": 4},
         "last_heartbeat_age": 0.25, "heartbeat": {"cpu": {"total_percent": 12.5}, "memory": {"used_bytes": "1024"}},
         "memory": {"total_bytes": "4096"}, "gpus": []},
        {"node_id": "n2", "state": "disconnected", "capacities_total": {"A": 10, "B": 2}, "capacities_used": {}},
        {"node_id": "n3", "state": "ready", "capacities_total": {"A": 5}, "capacities_used": {"A": 5}},
    ]
    deps = [{"state": "running", "jobs": [{"state": "running", "restarts": 2}, {"state": "pending", "restarts": 0}]}]
    text = api_metrics.render([*api_metrics.node_families(nodes), *api_metrics.workload_families(deps)])
    m = parse_metrics(text)
    assert m['symphony_nodes{state="ready"}'] == 2 and m['symphony_nodes{state="lost"}'] == 0
    assert m['symphony_capacity_total{class="A"}'] == 15  # ready nodes only
    assert m['symphony_capacity_used{class="A"}'] == 9
    assert 'symphony_capacity_total{class="B"}' not in m
    assert m['symphony_node_capacity_total{node="n2",class="B"}'] == 2
    assert m['symphony_node_up{node="n2"}'] == 0
    assert m['symphony_node_memory_used_bytes{node="n1"}'] == 1024
    assert m['symphony_jobs{state="running"}'] == 1 and m['symphony_jobs{state="pending"}'] == 1
    assert m["symphony_job_restarts"] == 2


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        ("config.command: expected a list", "config.command", "expected a list"),
        ("spec.config: missing required field 'command'", "config", "missing required field 'command'"),
        ("replicas: -1 is less than the minimum 0", "replicas", "-1 is less than the minimum 0"),
        ("capacity_requests.A-b: bad", "capacity_requests.A-b", "bad"),
        ("the body must be a JSON object", None, "the body must be a JSON object"),
        ("name: a deployment cannot be renamed", "name", "a deployment cannot be renamed"),
    ],
)
def test_error_messages_name_their_field(message: str, field: str | None, text: str) -> None:
    assert split_field(message) == (field, text)


@pytest.mark.parametrize("name", ["app.js", "app.css"])
def test_static_files_served(name: str) -> None:
    path = static_file(name)
    assert path is not None and path.parent == UI_DIR.resolve()


@pytest.mark.parametrize(
    "name",
    ["../http_api.py", "..", ".", "", "/etc/passwd", "ui/app.js", "..%2Fhttp_api.py", ".hidden.js",
     "index.html", "app.js/", "app.js\x00.css", "nope.js", "app.JS", "C:\\app.js", "app.js?x=1"],
)
def test_static_names_outside_or_unknown_are_refused(name: str) -> None:
    assert static_file(name) is None


def test_openapi_body_schema_is_the_deployment_schema_inlined() -> None:
    schema = api_schema("deployment")
    assert "$ref" not in repr(schema) and schema["required"] == ["config"]
    assert "required" not in api_schema("deployment", partial=True)
    bodies = [
        {"name": "ok", "config": {"command": ["true"]}},
        {"config": {"command": "echo hi"}, "capacity_requests": {"A": 1}, "kind": "docker"},
        {"name": "Bad_Name", "config": {"command": ["true"]}},
        {"name": "x", "config": {"command": []}},
        {"name": "x", "config": {"command": "x"}, "replicas": -1},
        {"name": "x", "config": {"command": "x"}, "restart_policy": {"type": "sometimes"}},
        {"name": "x", "config": {"command": "x"}, "bogus": 1},
        {"name": "x", "config": {"command": "x", "env": {"1BAD": "v"}}},
    ]
    for body in bodies:  # the OpenAPI document accepts exactly what the API accepts
        try:
            deployment_from_api(body, default_name="d")
            accepted = True
        except UserError:
            accepted = False
        assert jsonschema.Draft202012Validator(schema).is_valid(body) == accepted, body
