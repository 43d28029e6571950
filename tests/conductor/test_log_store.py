"""The durable log parts on real files: the conductor's LogStore and the node's OutputReader.

The LogStore keeps every line once (by the node's output position), numbers lines so
the numbers keep growing across a restart, recovers from a torn last line, rotates
within its disk cap and reads by sequence number without loading a file. The
OutputReader gives every line of a copy's output a position that survives the
supervisor's rotation and an agent restart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.conductor import log_store
from symphony.conductor.config import load_conductor_settings
from symphony.conductor.log_store import LogStore
from symphony.errors import UserError
from symphony.node.output import OutputReader
from symphony.supervision import LogWriter


def _entries(lines: list[str], start: int = 0) -> list[tuple[float, str, str, int]]:
    out, end = [], start
    for line in lines:
        end += len(line.encode()) + 1
        out.append((1.0, "output", line, end))
    return out


def _all(store: LogStore, job: str) -> list[dict]:
    return list(store.between([job], after=0, upto=store.seq))


# ---------------------------------------------------------------------- LogStore
def test_duplicates_are_dropped_by_position_and_a_new_output_starts_over(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    batch = _entries([f"line {i}" for i in range(10)])
    assert store.append("j-0", batch[:6], node="n1", epoch=1, output_id="a") == 6
    assert store.append("j-0", batch[3:], node="n1", epoch=1, output_id="a") == 4  # 3..5 sent again
    assert [e["line"] for e in _all(store, "j-0")] == [f"line {i}" for i in range(10)]
    assert store.cursor("j-0") == ("a", batch[-1][3])
    # a new copy of the job: its positions start again at 0 and are all kept
    assert store.append("j-0", _entries(["again"]), node="n2", epoch=2, output_id="b") == 1
    assert store.cursor("j-0") == ("b", 6)
    seqs = [e["seq"] for e in _all(store, "j-0")]
    assert seqs == list(range(1, 12))


def test_restart_recovers_cursor_and_sequence_and_cuts_a_torn_line(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append("a-0", _entries(["x", "y"]), node="n", epoch=1, output_id="o")
    store.append("b-0", _entries(["z"]), node="n", epoch=1, output_id="p")
    with store.path("a-0").open("ab") as fh:  # killed in the middle of a write
        fh.write(b'{"seq":4,"ts":1,"line":"hal')
    again = LogStore(tmp_path)
    assert again.seq == 3 and again.cursor("a-0") == ("o", 4) and again.cursor("b-0") == ("p", 2)
    assert [e["line"] for e in _all(again, "a-0")] == ["x", "y"]
    again.append("a-0", _entries(["x", "y", "w"]), node="n", epoch=1, output_id="o")
    assert [(e["seq"], e["line"]) for e in _all(again, "a-0")] == [(1, "x"), (2, "y"), (4, "w")]


def test_rotation_keeps_the_disk_cap_and_reads_still_work(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, backups=2)
    end = 0
    for i in range(60):
        batch = _entries([f"{i}-{k}-" + "x" * 60 for k in range(10)], start=end)
        end = batch[-1][3]
        store.append("big-0", batch, node="n", epoch=1, output_id="o")
    files = store.files("big-0")
    assert len(files) == 3 and all(p.stat().st_size <= 4096 for p in files)
    kept = _all(store, "big-0")
    seqs = [e["seq"] for e in kept]
    assert seqs == list(range(seqs[0], 601)) and seqs[0] > 1  # the newest, contiguous; the oldest dropped
    assert store.cursor("big-0") == ("o", end)
    again = LogStore(tmp_path, max_bytes=4096, backups=2)
    assert again.seq == 600 and again.cursor("big-0") == ("o", end)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8), after=st.integers(0, 200),
       tail=st.integers(0, 250))
def test_between_and_tail_match_a_plain_list(tmp_path_factory: pytest.TempPathFactory, sizes: list[int],
                                             after: int, tail: int) -> None:
    """Bisection over files of two interleaved jobs gives exactly what a list would."""
    store = LogStore(tmp_path_factory.mktemp("ls"), max_bytes=2048, backups=50)
    ends = {"a-0": 0, "a-1": 0}
    for n, size in enumerate(sizes):
        job = "a-0" if n % 2 else "a-1"
        batch = _entries([f"{job} {n} {k}" for k in range(size)], start=ends[job])
        ends[job] = batch[-1][3]
        store.append(job, batch, node="n", epoch=1, output_id="o")
    everything = list(store.between(["a-0", "a-1"], after=0, upto=store.seq))
    assert [e["seq"] for e in everything] == list(range(1, sum(sizes) + 1))
    assert [e["seq"] for e in store.between(["a-0", "a-1"], after=after, upto=store.seq)] == [
        e["seq"] for e in everything if e["seq"] > after]
    want = [e["seq"] for e in everything][-tail:] if tail else [e["seq"] for e in everything]
    for heap_max in (log_store.TAIL_HEAP_MAX, 3):  # remembering the newest, or counting
        with mock.patch.object(log_store, "TAIL_HEAP_MAX", heap_max):
            start = store.start_of_tail(["a-0", "a-1"], tail, upto=store.seq)
        assert [e["seq"] for e in store.between(["a-0", "a-1"], after=start, upto=store.seq)] == want


def test_a_reader_keeps_its_place_while_files_rotate_under_it(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=3000, backups=100)
    end = 0

    def write(n: int) -> None:
        nonlocal end
        batch = _entries([f"{i}" + "." * 40 for i in range(n)], start=end)
        end = batch[-1][3]
        store.append("r-0", batch, node="n", epoch=1, output_id="o")

    write(100)
    upto = store.seq
    with mock.patch.object(log_store, "READ_BLOCK", 500):
        reader = store.between(["r-0"], after=0, upto=upto)
        first = [next(reader)["seq"] for _ in range(30)]
        write(300)  # several rotations: the file being read is renamed twice over
        rest = [e["seq"] for e in reader]
    assert first + rest == list(range(1, upto + 1))
    # when the cap drops the file being read (a new file may even get its inode), reading goes
    # on at the oldest line still kept, and never out of order
    small = LogStore(tmp_path / "small", max_bytes=3000, backups=2)
    store, end = small, 0
    write(40)
    upto = small.seq
    with mock.patch.object(log_store, "READ_BLOCK", 500):
        reader = small.between(["r-0"], after=0, upto=upto)
        assert [next(reader)["seq"] for _ in range(5)] == [1, 2, 3, 4, 5]
        for _ in range(10):
            write(30)
        rest = [e["seq"] for e in reader]
    assert rest == sorted(set(rest)) and all(5 < seq <= upto for seq in rest)


def test_delete_and_keep_only_remove_files(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=200, backups=3)
    for job in ("keep-0", "gone-0", "gone-1"):
        store.append(job, _entries([job + "." * 80] * 6), node="n", epoch=1, output_id="o")
    assert len(store.files("gone-0")) > 1
    store.delete("gone-0")
    assert store.files("gone-0") == [] and store.cursor("gone-0") is None
    assert store.keep_only(["keep-0"]) == ["gone-1"]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in store.files("keep-0"))


def test_odd_job_ids_stay_inside_the_folder(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs")
    for job in ("..", "a/b", ".hidden", "ü-0"):
        store.append(job, _entries(["hi"]), node="n", epoch=1, output_id="o")
    assert len(os.listdir(tmp_path / "logs")) == 4 and os.listdir(tmp_path) == ["logs"]
    again = LogStore(tmp_path / "logs")
    assert set(again.jobs) == {"..", "a/b", ".hidden", "ü-0"}


# ---------------------------------------------------------------------- OutputReader
def _reader(path: Path, chunk: int = 1 << 16) -> OutputReader:
    return OutputReader(path, backups=3, max_file_bytes=300, chunk=chunk)


def _drain(reader: OutputReader) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    while batch := reader.read():
        out.extend(batch)
    return out


def test_positions_survive_rotation_agent_restart_and_resume(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    writer = LogWriter(str(log), max_bytes=300, backups=3)  # the supervisor's own writer
    reader = _reader(log, chunk=64)
    lines = [f"line {i:03d} " + "y" * (i % 17) for i in range(100)]
    got: list[tuple[str, int]] = []
    for i, line in enumerate(lines):
        writer.write((line + "\n").encode())
        if i % 7 == 0:
            got.extend(_drain(reader))
    got.extend(_drain(reader))
    assert [t for t, _ in got] == lines
    total = sum(len(line) + 1 for line in lines)
    assert got[-1][1] == total and [e for _, e in got] == sorted({e for _, e in got})
    assert log.with_name("output.log.1").exists()  # it did rotate
    # a restarted agent numbers the same lines the same way, and resumes at a position
    again = _reader(log, chunk=64)
    again.seek(got[-5][1])
    assert _drain(again) == got[-4:]
    # a position already rotated away on the node resumes at the oldest line still there
    again.seek(0)
    oldest = _drain(again)
    assert oldest == got[-len(oldest):] and len(oldest) < len(got)
    writer.write(b"after restart\n")
    assert _drain(again) == [("after restart", total + 14)]
    writer.close()


def test_new_only_and_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_bytes(b"old\n")
    reader = _reader(log)
    reader.seek_end()
    with log.open("ab") as fh:
        fh.write(b"half")
    assert reader.read() == []
    with log.open("ab") as fh:
        fh.write(b" done\r\nnext\n")
    assert _drain(reader) == [("half done", 15), ("next", 20)]
    assert json.loads((tmp_path / "output.pos.json").read_text())["files"][0][1] == 0


# ---------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("logs", "expected"),
    [("{max_bytes: 1000, backups: 0}", (1000, 0)), ("{}", (64 * 1024 * 1024, 3)),
     ("{max_bytes: -1}", "conductor.logs.max_bytes: must be >= 0"),
     ("{backups: two}", "conductor.logs.backups: expected int, got str"),
     ("{keep: 3}", "conductor.logs.keep: unknown field")],
)
def test_conductor_logs_settings(tmp_path: Path, logs: str, expected: tuple[int, int] | str) -> None:
    config = tmp_path / "conductor.yaml"
    config.write_text(f"mode: conductor\nconductor:\n  logs: {logs}\n")
    if isinstance(expected, tuple):
        s = load_conductor_settings(config)
        assert (s.logs_max_bytes, s.logs_backups) == expected
        return
    with pytest.raises(UserError) as err:
        load_conductor_settings(config)
    assert expected in str(err.value.lines()[0]) and err.value.exit_code == 2
