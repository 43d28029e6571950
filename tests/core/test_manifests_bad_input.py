"""Every kind of bad manifest gets one clear line: FILE:LINE: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from symphony.errors import ManifestError
from symphony.manifests import load_paths

HEADER = "apiVersion: symphony/v1\nkind: Experiment\nmetadata: {name: exp}\nspec:\n"

CASES = [
    pytest.param(
        "apiVersion: symphony/v1\nkind: [unclosed\n", 2, "invalid YAML", id="invalid-yaml"
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      comand: [x]\n",
        7,
        "unknown field 'comand' (did you mean 'command'?)",
        id="unknown-field",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: [x]\n      replicas: two\n",
        8,
        "spec.processes[0].replicas: expected an integer",
        id="wrong-type",
    ),
    pytest.param(
        HEADER.replace("name: exp", "name: Bad_Name") + "  processes: []\n",
        3,
        "metadata.name: 'Bad_Name' is not a valid name",
        id="bad-name",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n    - name: a\n      command: y\n",
        8,
        "duplicate process name 'a'",
        id="duplicate-process",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - name: g\n      command: x\n  groups:\n    - name: g\n      processes: [{name: p, command: x}]\n",
        6,
        "same name as a group",
        id="group-process-clash",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n      connects: [nobody]\n",
        8,
        "connects to 'nobody', which no process binds or exposes",
        id="connects-without-binder",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - name: a\n      command: x\n      replicas: 2\n      binds: [svc]\n",
        9,
        "has replicas and may not bind",
        id="replicated-binder",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - name: a\n      command: x\n      binds: {svc: 8000}\n    - name: b\n      command: x\n      binds: {other: 8000}\n",
        11,
        "port 8000 of 'other' is already used by 'svc'",
        id="port-conflict",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n      env: {SYMPH_PROCESS: me}\n",
        8,
        "env 'SYMPH_PROCESS' may not override",
        id="symph-env-override",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - name: a\n      command: x\n      restart_policy: {type: sometimes}\n",
        8,
        "'sometimes' is not one of: never, on-failure, always",
        id="unknown-restart-policy",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - name: a\n      command: x\n      binds: [s]\n    - name: b\n      command: x\n      exposes: [s]\n",
        11,
        "'s' is already provided by 'a'",
        id="two-providers",
    ),
    pytest.param(
        "apiVersion: symphony/v2\nkind: Experiment\nmetadata: {name: exp}\nspec: {}\n",
        1,
        "apiVersion: 'symphony/v2' is not supported",
        id="bad-api-version",
    ),
    pytest.param(
        "apiVersion: symphony/v1\nkind: Job\nmetadata: {name: exp}\nspec: {}\n",
        2,
        "kind: 'Job' is not one of: Experiment, Deployment, Cluster",
        id="unknown-kind",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n      command: y\n",
        8,
        "duplicate field 'command'",
        id="duplicate-key",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: []\n",
        7,
        "spec.processes[0].command: must not be empty",
        id="empty-command",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n      binds: {svc: 70000}\n",
        8,
        "spec.processes[0].binds.svc: 70000 is greater than the maximum 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n      binds: [ps.v2]\n",
        8,
        "spec.processes[0].binds[0]: 'ps.v2' is not a valid name",
        id="bad-bound-name",
    ),
    pytest.param(
        HEADER + "  processes:\n    - name: a\n      command: x\n      replicas: 100000000\n",
        8,
        "replicas: 100000000 is greater than the maximum 10000",
        id="huge-replicas",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - {name: a, command: x, replicas: 6000}\n    - {name: b, command: x, replicas: 6000}\n",
        4,
        "would have 12000 processes; at most 10000",
        id="too-many-processes",
    ),
    pytest.param(
        "apiVersion: symphony/v1\nkind: Cluster\nmetadata: {name: local}\nspec: {type: conductor}\n",
        3,
        "'local' is the built-in tmux cluster",
        id="redefine-local",
    ),
    pytest.param(
        HEADER
        + "  processes:\n    - {name: a, command: x, binds: {p: 9000}}\n---\n"
        + HEADER.replace("name: exp", "name: other")
        + "  processes:\n    - {name: b, command: x, exposes: {q: 9000}}\n",
        13,
        "port 9000 of 'q' is already used by 'p' of experiment 'exp'",
        id="port-clash-across-experiments",
    ),
    pytest.param("- just\n- a list\n", 1, "a manifest must be a mapping", id="not-a-mapping"),
    pytest.param(
        "apiVersion: symphony/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  config: {command: [x]}\n  kind: vm\n",
        6,
        "'vm' is not one of: exec, docker",
        id="deployment-kind",
    ),
    pytest.param(
        "apiVersion: symphony/v1\nkind: Cluster\nmetadata: {name: c}\nspec: {type: slurm}\n",
        4,
        "'slurm' is not one of: tmux, kubernetes, conductor",
        id="cluster-type",
    ),
]


@pytest.mark.parametrize(("text", "line", "fragment"), CASES)
def test_bad_manifest_is_one_located_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_paths([str(path)])
    lines = caught.value.lines()
    assert any(fragment in item for item in lines), lines
    first = next(item for item in lines if fragment in item)
    assert first.startswith(f"{path}:{line}: "), first
    assert all("\n" not in item for item in lines)


def test_second_document_invalid_rejects_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: symphony/v1
            kind: Experiment
            metadata: {name: good}
            spec:
              processes: [{name: a, command: x}]
            ---
            apiVersion: symphony/v1
            kind: Experiment
            metadata: {name: bad}
            spec:
              processes: [{name: a, command: x, connects: [ghost]}]
            """
        )
    )
    with pytest.raises(ManifestError) as caught:
        load_paths([str(path)])
    assert caught.value.lines() == [
        f"{path}:11: connects to 'ghost', which no process binds or exposes (provided: none)"
    ]


def test_duplicate_experiment_across_files(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(HEADER + "  processes: [{name: p, command: x}]\n")
    with pytest.raises(ManifestError) as caught:
        load_paths([str(tmp_path)])
    (line,) = caught.value.lines()
    assert line.startswith(
        f"{tmp_path / 'b.yaml'}:3: duplicate Experiment 'exp' (also at {tmp_path / 'a.yaml'}:3)"
    )


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_paths([str(tmp_path / "nope.yaml")])
    assert caught.value.lines() == [f"{tmp_path / 'nope.yaml'}: no such file or folder"]


def test_every_problem_of_a_document_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(HEADER + "  processes:\n    - name: a\n      comand: x\n      replicas: 0\n")
    with pytest.raises(ManifestError) as caught:
        load_paths([str(path)])
    lines = caught.value.lines()
    assert len(lines) == 2  # the misspelling is one line ("did you mean"), not also "missing"
    assert "did you mean 'command'" in lines[0] and "replicas" in lines[1]
    assert [int(item.split(":")[1]) for item in lines] == sorted(
        int(item.split(":")[1]) for item in lines
    )
