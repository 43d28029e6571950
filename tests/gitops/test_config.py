"""``server.yaml``: defaults, relative paths, and the shipped example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symphony.errors import ManifestError
from symphony.gitops.config import load_config
from symphony.gitops.service import make_source
from symphony.sources import GitSource, WatchedFolder

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_parses_and_builds(symphony_home: Path) -> None:
    config = load_config(str(ROOT / "examples" / "gitops" / "server.yaml"))
    assert (config.host, config.port, config.resync) == ("127.0.0.1", 8090, 30.0)
    (watch,) = config.sources
    assert watch.paths == tuple(
        str(ROOT / "examples" / "gitops" / f"../../manifests/examples/{name}.yaml")
        for name in ("quickstart", "rl-groups", "deployment")
    )
    source = make_source(watch)
    assert isinstance(source, WatchedFolder) and source.id == "examples"


def test_the_example_serves_its_sources_once(tmux_socket: str, symphony_home: Path) -> None:
    """``serve -c examples/gitops/server.yaml --once`` applies every experiment it names."""
    done = subprocess.run(
        [sys.executable, "-m", "symphony.cli", "serve", "-c", str(ROOT / "examples/gitops/server.yaml"), "--once"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    applied = {line.split(": ")[1] for line in done.stdout.splitlines() if ": applied at " in line}
    assert applied == {"quickstart", "rl-groups", "heartbeat"}, done.stdout


def test_defaults_and_relative_paths(tmp_path: Path, symphony_home: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "ops")], check=True)
    (tmp_path / "server.yaml").write_text(
        "sources:\n"
        "  - {type: git, repo: ./ops, path: deploy, resync: 5}\n"
        "  - {type: git, repo: 'https://example.invalid/x.git', branch: dev, shallow: false}\n"
        "  - {type: files, paths: [a.yaml, b], adopt: true}\n"
    )
    config = load_config(str(tmp_path / "server.yaml"))
    local, remote, files = config.sources
    assert (config.host, config.port) == ("127.0.0.1", 8090)
    assert local.repo == str(tmp_path / "ops") and local.path == "deploy" and local.resync == 5
    assert remote.repo == "https://example.invalid/x.git" and not remote.shallow
    built = make_source(remote)
    assert isinstance(built, GitSource) and built.branch == "dev" and built.interval == 5.0
    assert files.paths == (str(tmp_path / "a.yaml"), str(tmp_path / "b"))
    assert files.adopt and not local.adopt  # adopt: take over what was applied by hand


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("sources:\n  - {type: git}\n", "server.yaml:2: sources[0].repo: required"),
        (
            "sources:\n  - {type: watch, name: Bad_Name, path: .}\n",
            "server.yaml:2: sources[0].name:",
        ),
        (
            "sources:\n  - {type: watch, path: ., resync: -1}\n",
            "server.yaml:2: sources[0].resync: must be a number",
        ),
        (
            "sources:\n  - {type: watch, path: ., allow_empty: 'yes'}\n",
            "server.yaml:2: sources[0].allow_empty: must be true or false",
        ),
        (
            "sources:\n  - {type: watch, path: .}\n  - {type: watch, path: ., adopt: 1}\n",
            "server.yaml:3: sources[1].adopt: must be true or false",
        ),
        (
            "resync: 3\nport: 1\nsources:\n  - {type: watch, path: .}\n",
            "server.yaml:2: unknown field 'port'",
        ),
        (
            "sources:\n  - {type: watch, name: x, path: a}\n  - {type: watch, name: x, path: b}\n",
            "server.yaml:2: sources[0].name: 'x' is used twice",
        ),
    ],
)
def test_mistakes_name_their_line(tmp_path: Path, text: str, line: str) -> None:
    (tmp_path / "server.yaml").write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_config(str(tmp_path / "server.yaml"))
    first = caught.value.lines()[0].replace(str(tmp_path) + "/", "")
    assert first.startswith(line), caught.value.lines()
