"""The checks CI runs besides the tests: ruff, mypy (strict on the pure core), import-linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "symphony", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = run(sys.executable, "-m", "mypy", "symphony")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    result = run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["symphony.cli", "symphony.commands.status"])
def test_cli_imports_stay_light(name: str) -> None:
    """`symphony status` must not pay for gRPC, FastAPI or Kubernetes."""
    code = (
        f"import sys, {name}; "
        "heavy = sorted(m for m in ('grpc', 'fastapi', 'kubernetes', 'uvicorn') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
