"""A fixed port another live experiment on the same tmux host holds: exit 2, one line, nothing changed."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

PORT = 18765
A = f"""\
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: a}}
spec:
  processes:
    - name: server
      command: [sleep, "300"]
      binds: {{x: {PORT}}}
"""
B = f"""\
apiVersion: symphony/v1
kind: Experiment
metadata: {{name: b}}
spec:
  processes:
    - name: web
      command: [sleep, "300"]
      exposes: {{y: {PORT}}}
"""


def has_session(socket: str, name: str) -> bool:
    return (
        subprocess.run(
            ["tmux", "-L", socket, "has-session", "-t", f"={name}"], capture_output=True
        ).returncode
        == 0
    )


def test_a_fixed_port_of_a_live_experiment_is_refused(
    symphony, tmux_socket: str, symphony_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.yaml").write_text(textwrap.dedent(A))
    (tmp_path / "b.yaml").write_text(textwrap.dedent(B))
    first = symphony("apply", "-f", str(tmp_path / "a.yaml"))
    assert first.returncode == 0, first.stderr

    second = symphony("apply", "-f", str(tmp_path / "b.yaml"))
    assert second.returncode == 2, (second.stdout, second.stderr)
    lines = second.stderr.splitlines()
    assert lines == [
        f"{tmp_path / 'b.yaml'}:6: experiment 'b': port {PORT} of 'y' is already used by 'x' "
        "of experiment 'a' on this host"
    ]
    assert "Traceback" not in second.stdout + second.stderr
    assert not has_session(tmux_socket, "b") and has_session(tmux_socket, "a")
    assert not (symphony_home / "tmux" / tmux_socket / "b").exists()
    listed = symphony("ls", "-o", "json")
    assert listed.returncode == 0 and '"b"' not in listed.stdout and '"a"' in listed.stdout
