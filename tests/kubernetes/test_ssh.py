"""``symphony ssh`` on Kubernetes: the user's terminal attached to a shell in the container.

The CLI runs on a real pseudo-terminal (it refuses to attach without one); the
emulator runs the container's shell on this machine with the container's
environment, so this covers the client side end to end: raw mode, the resize
message, stdin to the exec websocket, output back, and the remote exit code.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Kube

pytestmark = pytest.mark.timeout(120)

EXPERIMENT = """apiVersion: symphony/v1
kind: Experiment
metadata: {{name: {name}}}
spec:
  cluster: kube
  processes:
    - {{name: worker, command: [python, -c, "import time; time.sleep(600)"]}}
"""


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symphony.cli", *args],
        capture_output=True, text=True, env=env, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run_on_a_terminal(argv: list[str], *, env: dict[str, str], typed: bytes) -> tuple[int, bytes]:
    """Run ``argv`` with a pty as its terminal; once the remote shell answers, type ``typed``.

    Keys typed before the CLI switches the terminal to raw mode are flushed by it,
    so a probe command is typed until its output (not its echo) comes back.
    """
    probe, answer = b'echo "at""tached"\n', b"attached"  # the echo of the keys reads at""tached
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(argv[0], argv, env)
    output = b""
    attached = False
    next_probe = time.monotonic() + 0.5
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not attached and time.monotonic() >= next_probe:
                os.write(fd, probe)
                next_probe = time.monotonic() + 1.0
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not attached and answer in output:
                attached = True
                os.write(fd, typed)
        else:
            os.kill(pid, 9)
            pytest.fail(f"ssh did not finish; output so far: {output!r}")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output


@pytest.fixture
def running(kube: Kube, symphony_home: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(experiment name, CLI environment) of a one-process experiment applied and running."""
    name = f"ssh-{uuid.uuid4().hex[:6]}"
    files = tmp_path / "manifests"
    files.mkdir()
    (files / "cluster.yaml").write_text(kube.cluster_manifest())
    (files / "exp.yaml").write_text(EXPERIMENT.format(name=name))
    env = {**os.environ, "SYMPHONY_HOME": str(symphony_home), "KUBECONFIG": str(kube.kubeconfig)}
    applied = cli("apply", "-f", str(files), "--wait", "--timeout", "90", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    yield name, env
    deleted = cli("delete", name, "-f", "--cluster", "kube", env=env)
    assert deleted.returncode == 0, deleted.stderr


def test_ssh_attaches_a_shell_with_the_process_environment(running: tuple[str, dict[str, str]]) -> None:
    name, env = running
    code, output = run_on_a_terminal(
        [sys.executable, "-m", "symphony.cli", "ssh", "worker", name, "--cluster", "kube"],
        env=env,
        typed=b'echo "inside:$SYMPH_PROCESS:$SYMPH_EXPERIMENT"; exit 3\n',
    )
    assert f"inside:worker:{name}".encode() in output, output
    assert code == 3, output  # the shell's exit code is the command's


def test_ssh_without_a_terminal_is_one_line(running: tuple[str, dict[str, str]]) -> None:
    name, env = running
    done = cli("ssh", "worker", name, "--cluster", "kube", env=env)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "ssh needs a terminal" in done.stderr
