"""A git repository (GitPython): fetch a branch, check it out, read manifests from the commit.

The checkout lives under ``state_home()/gitops/git/<source id>/`` and stays at
one path, so processes whose ``workdir`` is in the repository keep the same
spec (and keep running) across commits. Manifests are read from the commit's
tree rather than the working copy, so files processes write there never count
as manifests. Fetches are shallow (``--depth 1``) by default and force-pushes
are followed (``+refs/heads/B:refs/remotes/origin/B``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from symphony.errors import OperationFailed, Problem
from symphony.home import state_home
from symphony.manifests.loader import YAML_SUFFIXES
from symphony.sources.base import Snapshot, source_id
from symphony.sources.reading import FileText, build_snapshot


class GitSource:
    kind = "git"

    def __init__(
        self,
        repo: str,
        *,
        branch: str | None = None,
        path: str = ".",
        interval: float = 5.0,
        shallow: bool = True,
        name: str | None = None,
        checkout: Path | None = None,
    ) -> None:
        self.repo = repo
        self.url = _url(repo, shallow=shallow)
        self.branch = branch
        self.path = _clean_subpath(path)
        self.interval = interval
        self.shallow = shallow
        self.target = repo
        # the branch is a setting, not an identity: switching it must prune what left
        self.id = name or source_id(self.kind, repo, extra=f"{_identity(repo)}\0{self.path}")
        self.checkout = checkout or state_home() / "gitops" / "git" / self.id
        self.fetched: str | None = None  # newest commit of the branch we know
        self.checked_out: str | None = None
        self.commit_time: float | None = None
        self._repo: Any = None

    # ---------------------------------------------------------------- git

    def _git(self) -> Any:
        import git

        if self._repo is None:
            self.checkout.mkdir(parents=True, exist_ok=True)
            if (self.checkout / ".git").is_dir():
                repo = git.Repo(self.checkout)
            else:
                repo = git.Repo.init(self.checkout)
            if "origin" in [r.name for r in repo.remotes]:
                repo.remotes.origin.set_url(self.url)
            else:
                repo.create_remote("origin", self.url)
            self._repo = repo
        return self._repo

    def _run(self, *args: str) -> str:
        import git

        try:
            return str(self._git().git.execute(["git", *args]))
        except git.GitCommandError as exc:
            raise OperationFailed(
                f"git {args[0]} {self.repo}: {_first_error(exc.stderr)}"
            ) from None

    def default_branch(self) -> str:
        out = self._run("ls-remote", "--symref", "origin", "HEAD")
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line[len("ref: refs/heads/") : -len("\tHEAD")]
        raise OperationFailed(
            f"git {self.repo}: no default branch (an empty repository?); pass a branch"
        )

    def fetch(self) -> str:
        """Fetch the branch; return its newest commit."""
        if self.branch is None:
            self.branch = self.default_branch()
        ref = f"refs/remotes/origin/{self.branch}"
        depth = ["--depth=1"] if self.shallow else []
        self._run(
            "fetch", "--quiet", "--no-tags", "--force", *depth, "origin",
            f"+refs/heads/{self.branch}:{ref}",
        )  # fmt: skip
        self.fetched = self._run("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
        return self.fetched

    # ---------------------------------------------------------------- Source

    def poll(self) -> bool:
        return self.fetch() != self.checked_out

    def snapshot(self) -> Snapshot:
        sha = self.fetched or self.fetch()
        if sha != self.checked_out:
            self._run("checkout", "--quiet", "--force", "--detach", sha)
            self.checked_out = sha
        commit = self._git().commit(sha)
        self.commit_time = float(commit.committed_date)
        try:
            tree = commit.tree if self.path == "." else commit.tree / self.path
        except KeyError:
            return Snapshot(
                revision=sha,
                problems=(Problem(f"{self.path}: no such folder in {self.branch}@{sha[:12]}"),),
            )
        texts: list[FileText] = []
        problems: list[Problem] = []
        blobs = [tree] if tree.type == "blob" else tree.traverse()
        for item in blobs:
            if item.type != "blob" or not item.path.endswith(YAML_SUFFIXES):
                continue
            relative = PurePosixPath(item.path)
            if tree.type == "tree" and tree.path:
                relative = relative.relative_to(tree.path)
            if any(part.startswith(".") for part in relative.parts):
                continue
            try:
                text = item.data_stream.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(f"cannot read: {exc}", file=item.path, line=1))
                continue
            folder = self.checkout / PurePosixPath(item.path).parent
            texts.append(FileText(item.path, text, str(folder)))
        return build_snapshot(texts, revision=sha, problems=problems)

    def start(self, wake: Callable[[], None]) -> None:
        """Nothing to start: commits are found by :meth:`poll` (or a webhook)."""

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.kind,
            "repo": self.repo,
            "branch": self.branch,
            "path": self.path,
            "interval": self.interval,
            "shallow": self.shallow,
            "fetched": self.fetched,
            "checked_out": self.checked_out,
        }


def local_repository_problem(repo: str) -> str | None:
    """Why a local ``repo`` path can never be fetched, or ``None`` (a URL always passes).

    Checked before the loop starts: a typo in a path is bad input (exit 2), while a
    URL that does not answer may come back, so the loop keeps retrying that one.
    """
    if not _is_local(repo):
        return None
    path = Path(os.path.abspath(os.path.expanduser(repo)))
    if not path.exists():
        return f"{repo}: no such folder"
    candidates = (path, path / ".git", path.with_name(path.name + ".git"))
    if any((c / "HEAD").is_file() and (c / "objects").is_dir() for c in candidates):
        return None
    if (path / ".git").is_file():  # a worktree or submodule: "gitdir: …"
        return None
    return f"{repo}: not a git repository"


def _identity(repo: str) -> str:
    return os.path.abspath(os.path.expanduser(repo)) if _is_local(repo) else repo


def _is_local(repo: str) -> bool:
    return "://" not in repo and not (":" in repo and "@" in repo.split(":", 1)[0])


def _url(repo: str, *, shallow: bool) -> str:
    """A local path becomes ``file://`` so that ``--depth`` is honoured."""
    if not _is_local(repo):
        return repo
    path = os.path.abspath(os.path.expanduser(repo))
    return f"file://{path}" if shallow else path


def _clean_subpath(path: str) -> str:
    parts = [p for p in PurePosixPath(path or ".").parts if p not in ("", ".")]
    if any(p == ".." for p in parts) or PurePosixPath(path or ".").is_absolute():
        raise OperationFailed(f"--path {path}: must be a folder inside the repository")
    return "/".join(parts) or "."


def _first_error(text: str | None) -> str:
    """The first ``fatal:``/``error:`` line of git's stderr (the cause, not the advice)."""
    lines = [
        line.strip().removeprefix("stderr: ").strip("'").strip()
        for line in (text or "").splitlines()
    ]
    lines = [line for line in lines if line]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line.removeprefix(prefix)
    return lines[0] if lines else "failed"
