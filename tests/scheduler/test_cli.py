"""`symphony schedule`: the dry run on example files, its outputs, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from symphony.cli import main

DATA = Path(__file__).parent / "data"
NODES = str(DATA / "nodes.yaml")
WORKLOADS = str(DATA / "workloads.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_is_exactly_the_documented_document(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "schedule", "--nodes", NODES, "--workloads", WORKLOADS, "-o", "json"
    )
    assert (code, err) == (0, "")
    gang = "gang 'big' needs 3 places, 2 fit"
    assert json.loads(out) == {
        "strategy": "binpack",
        "nodes_used": 3,
        "placements": [
            {"workload": "rl", "process": "learner", "node": "gpu-1"},
            {"workload": "rl", "process": "agent-0", "node": "cpu-1"},
            {"workload": "rl", "process": "agent-1", "node": "cpu-1"},
            {"workload": "rl", "process": "agent-2", "node": "cpu-1"},
            {"workload": "rl", "process": "eval/evaluator", "node": "gpu-2"},
            {"workload": "analytic", "process": "analytic-0", "node": "gpu-1"},
        ],
        "unschedulable": [
            {"workload": "big", "process": "trainer", "reason": f"{gang} (sampler-1 does not)"},
            {"workload": "big", "process": "sampler-0", "reason": f"{gang} (sampler-1 does not)"},
            {
                "workload": "big",
                "process": "sampler-1",
                "reason": f"{gang}: needs B=300; the most free B on any node of 'cpu' is 100",
            },
            {
                "workload": "analytic",
                "process": "analytic-1",
                "reason": "needs A=40; the most free A on any node of 'gpu' is 20",
            },
            {
                "workload": "analytic",
                "process": "analytic-2",
                "reason": "needs A=40; the most free A on any node of 'gpu' is 20",
            },
            {"workload": "tpu-job", "process": "tpu-job-0", "reason": "no node in group 'tpu'"},
        ],
    }
    assert out.splitlines()[3] == '  {"workload": "rl", "process": "learner", "node": "gpu-1"},'


def test_workloads_take_several_paths_and_global_options_go_anywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the same file twice would be a duplicate; a folder and a file name different documents
    code, out, _ = run(
        capsys,
        "-o",
        "yaml",
        "schedule",
        "--strategy",
        "spread",
        "--nodes",
        NODES,
        "--workloads",
        WORKLOADS,
    )
    assert code == 0
    spread = yaml.safe_load(out)
    assert spread["strategy"] == "spread"
    assert len(spread["placements"]) == 6
    code, out, _ = run(
        capsys,
        "schedule",
        "--nodes",
        NODES,
        "--workloads",
        str(DATA / "none.yaml"),
        WORKLOADS,
        "-o",
        "json",
    )
    assert code == 2  # the extra positional path is read too


def test_table_summarises_nodes_and_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schedule", "--nodes", NODES, "-w", WORKLOADS)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "strategy binpack: 6 placed, 6 unschedulable, 3 of 4 nodes used"
    assert lines[2].split() == ["NODE", "GROUPS", "PLACED", "A", "B"]
    assert lines[3].split() == ["gpu-1", "gpu", "2", "90/100", "20/200"]
    assert lines[4].split() == ["gpu-2", "gpu", "1", "80/100", "0/200"]  # 60 in outside use
    assert lines[6].split() == ["cpu-2", "(unschedulable)", "cpu", "0", "-", "0/400"]
    assert "analytic  1       2" in out
    assert "tpu-job/tpu-job-0: no node in group 'tpu'" in out


BAD_NODES = [
    ("- groups: [g]\n  capacities_total: {A: 1}\n", "nodes.yaml:1: node entry has no node_id"),
    (
        "- node_id: a\n  capacities_total:\n    A: 5\n    B: -3\n",
        "nodes.yaml:4: capacities_total.B must be a number >= 0, got -3",
    ),
    (
        "- node_id: a\n  capacities_used: {A: many}\n",
        "nodes.yaml:2: capacities_used.A must be a number, got 'many'",
    ),
    (
        "- node_id: a\n  capacity_total: {A: 1}\n",
        "nodes.yaml:2: unknown field 'capacity_total' in a node entry (did you mean 'capacities_total'?)",
    ),
    ("- node_id: a\n- node_id: a\n", "nodes.yaml:2: duplicate node_id 'a' (also at line 1)"),
    (
        "- node_id: a\n  groups: [g\n",
        "nodes.yaml:3: invalid YAML: ",
    ),
    (
        "node_id: a\n",
        "nodes.yaml:1: expected a YAML list of nodes (node_id, groups, capacities_total)",
    ),
    ("- just-a-name\n", "nodes.yaml:1: a node entry must be a mapping with node_id"),
    ("[]\n", "nodes.yaml:1: no nodes in the file"),
    (
        "- node_id: a\n  schedulable: maybe\n",
        "nodes.yaml:2: schedulable must be true or false, got 'maybe'",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_NODES)
def test_bad_nodes_file_is_one_clear_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("nodes.yaml").write_text(text)
    code, out, err = run(capsys, "schedule", "--nodes", "nodes.yaml", "--workloads", WORKLOADS)
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith(message)  # the YAML parser's own words follow "invalid YAML: "


def test_node_yaml_sections_and_a_nodes_mapping_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(
        "nodes:\n"
        "  - mode: node\n    node: {node_id: gpu-9, groups: [gpu], capacities_total: {A: 100, B: 100}, heartbeat_sec: 3}\n"
        "  - {node_id: cpu-9, groups: [cpu], capacities_total: {B: 1000}}\n"
    )
    code, out, _ = run(
        capsys, "schedule", "--nodes", str(nodes), "--workloads", WORKLOADS, "-o", "json"
    )
    assert code == 0
    assert {p["node"] for p in json.loads(out)["placements"]} == {"gpu-9", "cpu-9"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--nodes", NODES, "-w", WORKLOADS, "--strategy", "tight"],
            "--strategy: unknown strategy 'tight' (choose from binpack, spread)",
        ),
        (["--nodes", "missing.yaml", "-w", WORKLOADS], "missing.yaml: no such file"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "schedule", *argv)
    assert (code, out, err.splitlines()) == (2, "", [message])


def test_no_workloads_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "schedule", "--nodes", NODES)
    assert code == 2
    assert err.splitlines() == ["--workloads: give at least one manifest file or folder"]


def test_a_bad_manifest_is_reported_by_the_loader_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: symphony/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  capacity_requests: {A: -1}\n  config: {command: [x]}\n"
    )
    code, out, err = run(capsys, "schedule", "--nodes", NODES, "--workloads", str(bad))
    assert (code, out) == (2, "")
    assert err.startswith(f"{bad}:5:")
    assert "Traceback" not in err


@pytest.mark.timeout(60)
def test_the_real_command_line_prints_no_traceback(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("- node_id: a\n  capacities_total: {A: -1}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from symphony.cli import main; main(sys.argv[1:])",
            "schedule",
            "--nodes",
            str(nodes),
            "--workloads",
            WORKLOADS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 2
    assert done.stderr == f"{nodes}:2: capacities_total.A must be a number >= 0, got -1\n"
