"""Edges a user hits: a bad environment, bad flags, empty input, clusters named by prefix."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

SLEEPER = """\
apiVersion: symphony/v1
kind: Experiment
metadata: {name: NAME}
spec:
  CLUSTER
  processes:
    - {name: p, command: 'exec sleep 600'}
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def sleeper(tmp_path: Path, name: str, cluster: str | None = None) -> Path:
    text = SLEEPER.replace("NAME", name).replace("CLUSTER", f"cluster: {cluster}" if cluster else "")
    return write(tmp_path, text, f"{name}.yaml")


def one_line_exit_2(result, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


def test_a_state_folder_that_is_a_file(symphony, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = symphony("status", env={"SYMPHONY_HOME": str(blocker / "home")})
    one_line_exit_2(result, "cannot use it as the state folder")


def test_a_bad_socket_name(symphony, tmp_path: Path) -> None:
    result = symphony("apply", "-f", str(sleeper(tmp_path, "a")), env={"SYMPHONY_TMUX_SOCKET": "bad/sock"})
    one_line_exit_2(result, "SYMPHONY_TMUX_SOCKET=bad/sock")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["logs", "p", "a", "--tail", "99999999999999999999"], "--tail"),
        (["apply", "-f", "X", "--wait", "--timeout", "-1"], "--timeout"),
        (["status", "-o"], "-o needs a value"),
        (["status", "-o", "xml"], "unknown output format"),
    ],
)
def test_bad_flags_are_usage_errors(symphony, tmp_path: Path, args: list[str], fragment: str) -> None:
    args = [str(sleeper(tmp_path, "a")) if a == "X" else a for a in args]
    result = symphony(*args)
    assert result.returncode == 2, result
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_output_with_equals(symphony) -> None:
    assert json.loads(symphony("status", "-o=json").stdout) == []


def test_empty_input_says_so(symphony, tmp_path: Path) -> None:
    one_line_exit_2(symphony("apply", "-f", str(write(tmp_path, "---\n"))), "no documents in")


def test_unknown_cluster_flag_names_the_flag(symphony, tmp_path: Path) -> None:
    result = symphony("apply", "-f", str(sleeper(tmp_path, "a")), "--cluster", "nosuch")
    one_line_exit_2(result, "--cluster nosuch: unknown cluster (known: local)")


def test_docker_deployment_on_local_is_refused(symphony, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        apiVersion: symphony/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          kind: docker
          config: {image: alpine, command: [hostname]}
        """,
    )
    result = symphony("apply", "-f", str(path))
    one_line_exit_2(result, f"{path}:3: Deployment 'web': kind: docker needs a conductor cluster")
    assert json.loads(symphony("status", "-o", "json").stdout) == []


def test_a_broken_remembered_cluster_does_not_take_local_down(symphony, symphony_home: Path, tmp_path: Path) -> None:
    (symphony_home / "clusters").mkdir()
    (symphony_home / "clusters" / "foo.yaml").write_text("{x")
    assert symphony("apply", "-f", str(sleeper(tmp_path, "a"))).returncode == 0
    result = symphony("status", "a", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)] == ["p"]
    assert result.stderr.count("warning: ignoring a remembered cluster") == 1


def test_a_command_that_cannot_start_fails_the_wait(symphony, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        apiVersion: symphony/v1
        kind: Experiment
        metadata: {name: typo}
        spec:
          processes: [{name: p, command: [no-such-program-here]}]
        """,
    )
    result = symphony("apply", "-f", str(path), "--wait", "--timeout", "30")
    assert result.returncode == 1
    assert "typo/p: exited: command not found: no-such-program-here" in result.stderr


def test_experiments_on_another_cluster_are_found_by_prefix(symphony, tmp_path: Path) -> None:
    side = f"side-{uuid.uuid4().hex[:6]}"
    cluster = write(
        tmp_path,
        f"""\
        apiVersion: symphony/v1
        kind: Cluster
        metadata: {{name: side}}
        spec: {{type: tmux, tmux: {{socket_name: {side}}}}}
        """,
        "cluster.yaml",
    )
    try:
        assert symphony("apply", "-f", str(cluster), "-f", str(sleeper(tmp_path, "faraway", "side")), "--wait").returncode == 0
        rows = json.loads(symphony("status", "far", "-o", "json").stdout)
        assert [(r["experiment"], r["cluster"]) for r in rows] == [("faraway", "side")]
        assert symphony("delete", "far", "-f").returncode == 0
        assert json.loads(symphony("status", "-o", "json", "--cluster", "side").stdout) == []
    finally:
        from symphony.clusters.tmux import shutdown_server

        shutdown_server(side)
