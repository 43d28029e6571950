"""GitSource against real repositories: commits, amends with force-push, deletions, branches."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony.errors import OperationFailed
from symphony.sources import GitSource

from .conftest import GitRepo
from .helpers import experiment

A = experiment("a", {"p": "sleep 1"})
B = experiment("b", {"q": "sleep 2"})


def names(source: GitSource) -> list[str]:
    return sorted(d.data["metadata"]["name"] for d in source.snapshot().documents)


def make(repo: GitRepo, tmp_path: Path, **kw: object) -> GitSource:
    return GitSource(str(repo.remote), checkout=tmp_path / "checkout", **kw)  # type: ignore[arg-type]


def test_follows_commits_amends_force_pushes_and_deletions(
    repo: GitRepo, tmp_path: Path, symphony_home: Path
) -> None:
    first = repo.commit({"a.yaml": A, "b.yaml": B}, "two")
    source = make(repo, tmp_path)
    assert source.poll() and source.branch == "main"  # the remote's HEAD
    snap = source.snapshot()
    assert snap.revision == first and names(source) == ["a", "b"]
    assert not source.poll()  # nothing new
    assert (tmp_path / "checkout" / ".git" / "shallow").exists()

    amended = repo.commit({"b.yaml": experiment("b", {"q": "sleep 3"})}, "two, fixed", amend=True)
    assert source.poll() and source.snapshot().revision == amended != first
    assert "sleep 3" in (tmp_path / "checkout" / "b.yaml").read_text()

    repo.commit({"a.yaml": None}, "a goes")
    assert source.poll() and names(source) == ["b"]
    assert not (tmp_path / "checkout" / "a.yaml").exists()


def test_reads_only_visible_yaml_under_the_path(
    repo: GitRepo, tmp_path: Path, symphony_home: Path
) -> None:
    repo.commit(
        {
            "deploy/a.yaml": A,
            "deploy/nested/b.yml": B,
            "deploy/.hidden/c.yaml": experiment("c", {"x": "true"}),
            "deploy/notes.txt": "not a manifest",
            "other/d.yaml": experiment("d", {"x": "true"}),
            "deploy/bad.yaml": "kind: Experiment\nmetadata: {name: e}\nspec: [\n",
        }
    )
    source = make(repo, tmp_path, path="deploy/")
    source.poll()
    snap = source.snapshot()
    assert sorted(d.data["metadata"]["name"] for d in snap.documents) == ["a", "b"]
    (bad,) = snap.broken
    assert bad.name == "e" and str(bad.problems[0]).startswith("deploy/bad.yaml:")
    doc = next(d for d in snap.documents if d.file == "deploy/nested/b.yml")
    assert doc.base_dir == str(tmp_path / "checkout" / "deploy" / "nested")  # workdirs resolve here


def test_switching_branch_reads_the_other_branch(
    repo: GitRepo, tmp_path: Path, symphony_home: Path
) -> None:
    repo.commit({"a.yaml": A})
    repo.branch("feature", create=True)
    feature = repo.commit({"a.yaml": None, "b.yaml": B}, "feature")
    main = make(repo, tmp_path)
    main.poll()
    assert names(main) == ["a"]
    main.close()
    switched = make(repo, tmp_path, branch="feature")  # same checkout folder, same source id
    assert switched.id == main.id
    assert switched.poll() and switched.snapshot().revision == feature and names(switched) == ["b"]


def test_full_history_when_not_shallow(repo: GitRepo, tmp_path: Path, symphony_home: Path) -> None:
    repo.commit({"a.yaml": A})
    repo.commit({"b.yaml": B})
    source = make(repo, tmp_path, shallow=False)
    source.poll()
    assert names(source) == ["a", "b"]
    assert not (tmp_path / "checkout" / ".git" / "shallow").exists()


def test_a_missing_path_yields_an_empty_snapshot_with_a_problem(
    repo: GitRepo, tmp_path: Path, symphony_home: Path
) -> None:
    repo.commit({"a.yaml": A})
    source = make(repo, tmp_path, path="nope")
    source.poll()
    snap = source.snapshot()
    assert snap.empty and "nope: no such folder in main@" in str(snap.problems[0])


@pytest.mark.parametrize(
    ("branch", "message"), [("main", "does not appear to be a git repository"), ("gone", "")]
)
def test_unreachable_repository_or_branch_is_one_clear_line(
    repo: GitRepo, tmp_path: Path, symphony_home: Path, branch: str, message: str
) -> None:
    repo.commit({"a.yaml": A})
    target = str(tmp_path / "missing") if message else str(repo.remote)
    source = GitSource(target, branch=branch, checkout=tmp_path / "checkout")
    with pytest.raises(OperationFailed) as caught:
        source.poll()
    (line,) = caught.value.lines()
    assert line.startswith(f"git fetch {target}: ") and (message in line) and "\n" not in line
    if not message:
        assert "gone" in line
