"""Every file in manifests/examples/ applies on a real tmux cluster and converges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from symphony.testing import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
FILES = sorted(p for p in EXAMPLES.glob("*.y*ml"))


def test_there_are_examples() -> None:
    assert any(p.name == "quickstart.yaml" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_applies_and_converges(symphony, path: Path) -> None:
    result = symphony("apply", "-f", str(path), "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = json.loads(symphony("status", "-o", "json").stdout)
    assert rows, "the example started no process"
    assert {r["phase"] for r in rows} <= {"running", "completed"}, rows
    again = symphony("diff", "-f", str(path))
    assert again.returncode == 0, again.stdout  # converged: nothing would change


def test_quickstart_processes_really_talk(symphony) -> None:
    result = symphony("apply", "-f", str(EXAMPLES / "quickstart.yaml"), "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr

    def replay_stored_steps() -> bool:
        out = symphony("logs", "replay", "quickstart").stdout
        return "stored" in out and "agent-0" in out and "agent-1" in out

    wait_for(replay_stored_steps, timeout=30, message="replay never heard from both agents")

    def learner_counts() -> bool:
        return "replay buffer holds" in symphony("logs", "learner", "quickstart").stdout

    wait_for(learner_counts, timeout=30, message="learner never read the replay buffer")
    url = symphony("visit", "dashboard", "quickstart", "--url-only").stdout.strip()
    assert url.startswith("http://127.0.0.1:")

    body = wait_for(lambda: _get(url), timeout=20, message=f"dashboard at {url} never answered")
    assert "steps in the replay buffer" in body


def _get(url: str) -> str | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None
