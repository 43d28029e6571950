"""Every benchmark still runs with its one command (``--quick``: one short round each).

The figures are not checked here (timed tests on a shared 2-core machine would be noise;
the README quotes medians of full runs); what is checked is that each script runs to the
end, exits 0 and prints its summary, so a change elsewhere cannot quietly break one
(the GitOps benchmark's watch half once timed out after a change to source ownership).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("args", "summary"),
    [
        (["scheduler.py", "--quick"], "symphony schedule -o json"),
        (["gitops.py", "--quick"], "saved file → running (watch)"),
        (["conductor.py", "--quick"], "submit → running"),
        (["launch_tmux.py", "--quick", "--tmuxp", "sh"], "symphony apply -f (whole CLI)"),
    ],
    ids=["scheduler", "gitops", "conductor", "launch_tmux"],
)
def test_the_benchmark_runs(args: list[str], summary: str, tmp_path: Path) -> None:
    env = {**os.environ, "SYMPHONY_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]],
        capture_output=True, text=True, timeout=540, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert summary in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
