"""logs --since: the supervisor's time index picks where newer output starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony.clusters.tmux_logs import read_history, since_offset
from symphony.supervision import LogWriter


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[float]]:
    """A log written by the real LogWriter at chosen times: 'a' at 100, 'b' at 100.4, 'c' at 110."""
    import symphony.supervision as sv

    now = [100.0]
    monkeypatch.setattr(sv.time, "time", lambda: now[0])
    path = tmp_path / "p.log"
    writer = LogWriter(str(path))
    for when, text in ((100.0, b"a\n"), (100.4, b"b\n"), (110.0, b"c\n"), (125.0, b"d\n")):
        now[0] = when
        writer.write(text)
    writer.close()
    return path, now


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (50.0, b"a\nb\nc\nd\n"),  # everything is newer
        (100.2, b"a\nb\nc\nd\n"),  # within the first second: shown a second early, never lost
        (105.0, b"c\nd\n"),
        (110.0, b"c\nd\n"),
        (111.0, b"d\n"),
        (124.5, b"d\n"),
        (200.0, b""),
    ],
)
def test_since_cutoffs(log: tuple[Path, list[float]], cutoff: float, expected: bytes) -> None:
    path, _ = log
    assert b"".join(read_history([path], since=200.0 - cutoff, now=200.0)) == expected


def test_since_with_tail(log: tuple[Path, list[float]]) -> None:
    path, _ = log
    assert b"".join(read_history([path], since=100.0, now=205.0, tail=1)) == b"d\n"


def test_file_without_index_is_judged_by_mtime(tmp_path: Path) -> None:
    path = tmp_path / "old.log"
    path.write_bytes(b"x\n")
    import os

    os.utime(path, (1000.0, 1000.0))
    assert since_offset(path, 999.0) == 0
    assert since_offset(path, 1001.0) is None
