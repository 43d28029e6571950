"""Real git repositories in temp folders: a bare "remote" and a working clone that pushes to it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class GitRepo:
    """``work`` is a clone of the bare ``remote``; edits are committed in ``work`` and pushed."""

    def __init__(self, root: Path) -> None:
        self.remote = root / "remote.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--bare", "--initial-branch=main", str(self.remote), cwd=root)
        self.git("init", "--quiet", "--initial-branch=main", str(self.work), cwd=root)
        self.git("config", "user.name", "Symphony Test")
        self.git("config", "user.email", "test@example.invalid")
        self.git("config", "commit.gpgsign", "false")
        self.git("remote", "add", "origin", str(self.remote))

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd or self.work, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    def write(self, files: dict[str, str | None]) -> None:
        for name, text in files.items():
            path = self.work / name
            if text is None:
                self.git("rm", "--quiet", name)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                self.git("add", name)

    def commit(
        self, files: dict[str, str | None], message: str = "change", *, amend: bool = False
    ) -> str:
        """Commit ``files`` (None deletes), push (force when amending); return the new sha."""
        self.write(files)
        extra = ["--amend"] if amend else []
        self.git("commit", "--quiet", "--allow-empty", "-m", message, *extra)
        branch = self.git("rev-parse", "--abbrev-ref", "HEAD")
        self.git("push", "--quiet", "--force", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, *, create: bool = False) -> None:
        self.git("checkout", "--quiet", *(["-b"] if create else []), name)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "git")


@pytest.fixture
def daemons() -> Iterator[list[Any]]:
    """Long-running ``symphony`` commands a test starts (``Daemon``s), killed afterwards."""
    started: list[Any] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
