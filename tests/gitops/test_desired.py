"""Isolation is pure: a snapshot (+ the last good versions) → what to apply, what is blocked."""

from __future__ import annotations

import pytest

from symphony.gitops.desired import Desired, isolate
from symphony.sources.reading import FileText, build_snapshot, guess_identity, sections

from .helpers import dedent, experiment

A = experiment("a", {"p": "sleep 1"})
B = experiment("b", {"q": "sleep 2"})
A2 = experiment("a", {"p": "sleep 1", "r": "sleep 3"})
BAD_A = A.replace("command:", "comand:")  # schema error, name still readable


def run(files: dict[str, str], last: Desired | None = None, **kw: object) -> Desired:
    snap = build_snapshot([FileText(n, t, "/tmp") for n, t in files.items()])
    return isolate(
        snap,
        last_good=last.workloads if last else {},
        last_clusters=last.clusters if last else {},
        **kw,  # type: ignore[arg-type]
    )


def test_sections_keep_their_first_line() -> None:
    text = "a: 1\n---\nb: 2\n--- {c: 3}\n---\n"
    assert sections(text) == [(0, "a: 1\n"), (1, "---\nb: 2\n"), (3, "--- {c: 3}\n")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: Experiment\nmetadata: {name: rl, labels: {a: b}\n", ("Experiment", "rl")),
        ("kind: Cluster\nmetadata:\n  labels: {}\n  name: edge\nspec: [\n", ("Cluster", "edge")),
        ("kind: Experiment\nspec: {processes: [\n", ("Experiment", None)),
        ("{{{", (None, None)),
    ],
)
def test_guess_identity(text: str, expected: tuple[str | None, str | None]) -> None:
    assert guess_identity(text) == expected


def test_valid_documents_are_all_fresh() -> None:
    d = run({"a.yaml": A, "b.yaml": B})
    assert set(d.workloads) == {"a", "b"} and d.fresh == {"a", "b"} and not d.errors


def test_a_bad_document_blocks_only_its_experiment_and_keeps_its_last_good_version() -> None:
    first = run({"a.yaml": A, "b.yaml": B})
    second = run({"a.yaml": BAD_A, "b.yaml": experiment("b", {"q": "sleep 9"})}, first)
    assert second.workloads["a"] is first.workloads["a"]  # last good stays desired
    assert second.fresh == {"b"}
    line = second.errors["a"][0]
    assert line.startswith("a.yaml:6: spec.processes[0].comand: unknown field")


def test_a_bad_new_experiment_is_blocked_with_nothing_to_keep() -> None:
    d = run({"a.yaml": BAD_A, "b.yaml": B})
    assert set(d.workloads) == {"b"} and set(d.errors) == {"a"}


def test_yaml_error_in_one_section_leaves_the_others_of_the_same_file() -> None:
    broken = A.replace("processes:", "processes: [")
    text = B + "---\n" + broken + "---\n" + experiment("c", {"x": "true"})
    d = run({"all.yaml": text})
    assert set(d.workloads) == {"b", "c"}
    (line,) = d.errors["a"]
    assert line.startswith("all.yaml:") and "invalid YAML" in line


def test_an_unnamed_broken_file_blocks_what_it_held_last_time() -> None:
    first = run({"a.yaml": A, "b.yaml": B})
    second = run({"a.yaml": "{{{ not yaml", "b.yaml": B}, first)
    assert set(second.workloads) == {"a", "b"} and set(second.errors) == {"a"}
    third = run({"new.yaml": "{{{ not yaml", "b.yaml": B}, first)  # a's file is gone
    assert set(third.workloads) == {"b"} and third.source_errors and not third.errors


def test_a_removed_experiment_is_gone() -> None:
    first = run({"a.yaml": A, "b.yaml": B})
    assert set(run({"b.yaml": B}, first).workloads) == {"b"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1.yaml": A, "2.yaml": A2}, "duplicate Experiment 'a'"),
        (
            {
                "1.yaml": A,
                "2.yaml": dedent("""
                    apiVersion: symphony/v1
                    kind: Deployment
                    metadata: {name: a}
                    spec: {config: {command: [sleep, "1"]}}
                """),
            },
            "same name as an Experiment",
        ),
        ({"1.yaml": experiment("a", {"p": "x"}, cluster="nowhere")}, "unknown cluster 'nowhere'"),
        (
            {
                "1.yaml": A.replace(
                    "- {name: p, command: 'sleep 1'}", "- {name: p, command: x, connects: [db]}"
                )
            },
            "connects",
        ),
    ],
)
def test_group_level_rules_block_the_group(files: dict[str, str], message: str) -> None:
    d = run(files)
    assert "a" in d.errors and "a" not in d.workloads
    assert any(message in line for line in d.errors["a"]), d.errors


def test_a_source_cluster_counts_as_known_and_an_invalid_one_keeps_its_last_version() -> None:
    cluster = dedent("""
        apiVersion: symphony/v1
        kind: Cluster
        metadata: {name: other}
        spec: {type: tmux, tmux: {socket_name: other}}
    """)
    first = run({"c.yaml": cluster, "a.yaml": experiment("a", {"p": "x"}, cluster="other")})
    assert set(first.workloads) == {"a"} and set(first.clusters) == {"other"}
    second = run(
        {
            "c.yaml": cluster.replace("type: tmux", "type: nope"),
            "a.yaml": experiment("a", {"p": "y"}, cluster="other"),
        },
        first,
    )
    assert second.cluster_errors["other"] and second.clusters["other"] == first.clusters["other"]
    assert second.fresh == {"a"}


def test_cluster_override_applies_to_every_workload() -> None:
    d = run({"a.yaml": A}, known_clusters=("local", "edge"), cluster_override="edge")
    assert d.workloads["a"].manifests.experiments[0].cluster == "edge"
