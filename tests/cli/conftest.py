"""Run the real ``symphony`` command line in a subprocess, isolated by SYMPHONY_HOME/SOCKET."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def symphony(tmux_socket: str, symphony_home: Path) -> Runner:
    """``symphony(*args)`` → CompletedProcess (text); never raises on a non-zero exit."""

    def run(
        *args: str,
        input: str | None = None,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "symphony.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return run
