"""The benchmark runs end to end in quick mode (the full figures are in the README)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(120)
def test_benchmark_quick_mode_runs_every_part() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scheduler.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for part in ("1. ", "2. ", "3. ", "4. "):
        assert f"\n{part}" in out
    assert "vs plain first-fit-decreasing" in out
    assert "symphony schedule -o json" in out
