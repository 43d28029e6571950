"""The conductor's copy of every job's output: append-only files, one per job.

``<storage>/logs/<job>.log`` holds JSON lines ``{"seq", "ts", "stream", "line",
"job_id", "node", "epoch", "output", "end"}``. ``seq`` orders every line the conductor
has (all jobs) and keeps growing across restarts: it is recovered from the files'
last lines. ``output`` and ``end`` are the node's output id and the line's position in
it (:mod:`symphony.node.output`): a line at or before the position held is already
here and is dropped, and a reconnecting node is told that position to resume from.

Nothing but a few numbers per job lives in memory: reads go to the files (seq grows
along each file, so a start is found by bisection), a block at a time per job, with no
file held open between blocks (a deployment's replicas are merged by seq).

Disk is bounded per job: a file that would grow past ``max_bytes`` is rotated to
``<job>.log.1`` … ``<job>.log.<backups>`` and the oldest dropped, as the supervisor
does with a process's output; a job holds at most ``(1 + backups) * max_bytes``.

Everything runs on the conductor's event loop thread (writers and readers alike).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_BACKUPS = 3
BLOCK = 64 * 1024
READ_BLOCK = 32 * 1024  # what one reader holds of a job at a time
TAIL_HEAP_MAX = 100_000  # a longer tail is found by counting instead of remembering
SEQ_ROOM = 24  # bytes of a line's '{"seq":N,' prefix and newline, at most
_SEQ = re.compile(rb'^\{"seq":(\d+),')


@dataclass
class JobLog:
    """What the conductor holds of one job, in memory."""

    last_seq: int = 0  # the newest line's seq (0: none)
    output_id: str = ""  # the output the newest line came from
    end: int = 0  # how far into that output we hold
    size: int = 0  # bytes in the current file


Entry = tuple[float, str, str, int]  # (ts, stream, line, end position)


class LogStore:
    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.backups = backups
        self.seq = 0  # the last seq handed out
        self.jobs: dict[str, JobLog] = {}
        root.mkdir(parents=True, exist_ok=True)
        self._load()

    # ------------------------------------------------------------------ layout
    def path(self, job_id: str) -> Path:
        """``<job>.log``; the name is the job id quoted so it is one plain file name."""
        return self.root / (quote(job_id, safe="").replace(".", "%2E") + ".log")

    def files(self, job_id: str) -> list[Path]:
        """The job's files that exist, oldest first."""
        current = self.path(job_id)
        names = [current.with_name(f"{current.name}.{i}") for i in range(self.backups, 0, -1)] + [current]
        return [p for p in names if p.exists()]

    def _load(self) -> None:
        """Recover every job's state and the highest seq from the files' last lines."""
        jobs = {unquote(p.name.split(".log", 1)[0]) for p in self.root.iterdir() if ".log" in p.name}
        for job_id in jobs:
            state = JobLog()
            current = self.path(job_id)
            if current.exists():
                state.size = _repair(current)
            for path in reversed(self.files(job_id)):
                last = _last_record(path)
                if last is not None:
                    state.last_seq, state.output_id, state.end = int(last["seq"]), str(last.get("output", "")), int(
                        last.get("end", 0))
                    break
            self.jobs[job_id] = state
            self.seq = max(self.seq, state.last_seq)

    # ------------------------------------------------------------------ writing
    def cursor(self, job_id: str) -> tuple[str, int] | None:
        """``(output id, end position)`` of the newest line held, or None."""
        state = self.jobs.get(job_id)
        return (state.output_id, state.end) if state is not None and state.last_seq else None

    def append(self, job_id: str, entries: Iterable[Entry], *, node: str, epoch: int, output_id: str) -> int:
        """Keep the entries not held yet (by output position); return how many were kept."""
        state = self.jobs.setdefault(job_id, JobLog())
        buf: list[bytes] = []
        pending = 0
        kept = 0
        output, end_held = state.output_id, state.end
        for ts, stream, line, end in entries:
            if output_id and output_id == output and end and end <= end_held:
                continue  # sent again after a reconnect: we have it
            rest = json.dumps({"ts": ts, "stream": stream, "line": line, "job_id": job_id, "node": node,
                               "epoch": epoch, "output": output_id, "end": end},
                              ensure_ascii=False, separators=(",", ":"))[1:].encode("utf-8")
            size = len(rest) + SEQ_ROOM
            if self.max_bytes and state.size + pending + size > self.max_bytes and state.size + pending:
                kept += self._write(job_id, state, buf, output, end_held)
                buf, pending = [], 0
                self._rotate(job_id, state)
            buf.append(rest)
            pending += size
            output, end_held = output_id, end
        return kept + self._write(job_id, state, buf, output, end_held)

    def _write(self, job_id: str, state: JobLog, buf: list[bytes], output_id: str, end: int) -> int:
        """Append whole lines, then count them as held (a failed write holds nothing new)."""
        if not buf:
            return 0
        data = b"".join(b'{"seq":%d,%s\n' % (self.seq + n, rest) for n, rest in enumerate(buf, 1))
        fd = os.open(self.path(job_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, state.size)  # no half-written lines (e.g. the disk is full)
            raise
        finally:
            os.close(fd)
        self.seq += len(buf)
        state.size += len(data)
        state.last_seq, state.output_id, state.end = self.seq, output_id, end
        return len(buf)

    def _rotate(self, job_id: str, state: JobLog) -> None:
        current = self.path(job_id)
        if self.backups <= 0:
            current.unlink(missing_ok=True)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = current.with_name(f"{current.name}.{i}")
                if older.exists():
                    os.replace(older, current.with_name(f"{current.name}.{i + 1}"))
            if current.exists():
                os.replace(current, current.with_name(f"{current.name}.1"))
        state.size = 0

    def delete(self, job_id: str) -> None:
        """Forget a job's output (its deployment was deleted)."""
        self.jobs.pop(job_id, None)
        current = self.path(job_id)
        for i in range(max(self.backups, 0) + 8, -1, -1):  # also what a larger backups setting left
            (current if i == 0 else current.with_name(f"{current.name}.{i}")).unlink(missing_ok=True)

    def keep_only(self, job_ids: Iterable[str]) -> list[str]:
        """Delete the output of every job not named (e.g. deleted while we were down)."""
        keep = set(job_ids)
        gone = [j for j in self.jobs if j not in keep]
        for job_id in gone:
            self.delete(job_id)
        return gone

    # ------------------------------------------------------------------ reading
    def last_seq(self, job_id: str) -> int:
        state = self.jobs.get(job_id)
        return state.last_seq if state is not None else 0

    def between(self, job_ids: list[str], *, after: int, upto: int) -> Iterator[dict[str, Any]]:
        """The lines of these jobs with ``after`` < seq <= ``upto``, in seq order."""
        readers = [_Forward(self, j, after, upto) for j in job_ids if self.last_seq(j) > after]
        for _, raw in heapq.merge(*readers, key=lambda item: item[0]):
            yield json.loads(raw)

    def start_of_tail(self, job_ids: list[str], tail: int, *, upto: int) -> int:
        """The seq after which the last ``tail`` lines of these jobs (together) begin."""
        if tail <= 0:
            return 0
        if tail > TAIL_HEAP_MAX:
            return self._start_by_count(job_ids, tail, upto=upto)
        newest: list[int] = []  # a min-heap of the largest ``tail`` seqs
        for job_id in job_ids:
            for seq in self._seqs_backward(job_id, upto=upto):
                if len(newest) < tail:
                    heapq.heappush(newest, seq)
                elif seq > newest[0]:
                    heapq.heapreplace(newest, seq)
                else:
                    break  # the rest of this job is older still
        return newest[0] - 1 if newest else upto

    def _seqs_backward(self, job_id: str, *, upto: int) -> Iterator[int]:
        for path in reversed(self.files(job_id)) if self.last_seq(job_id) else ():
            try:
                fh = path.open("rb")
            except OSError:
                continue
            with fh:
                for raw in _lines_backward(fh, os.fstat(fh.fileno()).st_size):
                    if (seq := _seq_of(raw)) <= upto:
                        yield seq

    def _start_by_count(self, job_ids: list[str], tail: int, *, upto: int) -> int:
        """For a tail too long to remember: count the lines, then skip all but ``tail``."""
        total = sum(1 for j in job_ids for _ in self._seqs_backward(j, upto=upto))
        if total <= tail:
            return 0
        readers = [_Forward(self, j, 0, upto) for j in job_ids if self.last_seq(j)]
        for n, (seq, _) in enumerate(heapq.merge(*readers, key=lambda item: item[0]), 1):
            if n == total - tail:
                return seq
        return 0


class _Forward:
    """One job's lines with ``after`` < seq <= ``upto``, oldest first, as ``(seq, raw)``.

    It reads a block at a time and holds no file open in between, so any number of jobs
    can be merged, and a rotation between two blocks moves nothing under it: the next
    block is found again by inode and offset (a rename keeps both; the file's first seq
    tells a file that merely reuses the inode), or else by seq.
    """

    def __init__(self, store: LogStore, job_id: str, after: int, upto: int) -> None:
        self.store, self.job_id, self.last, self.upto = store, job_id, after, upto
        self.where: tuple[int, int, int] | None = None  # (inode, first seq, offset) of the next unread line

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while block := self._block():
            for raw in block:
                seq = _seq_of(raw)
                if seq > self.upto:
                    return
                if seq > self.last:
                    self.last = seq
                    yield seq, raw

    def _block(self) -> list[bytes]:
        files = self.store.files(self.job_id)
        if self.where is not None:
            inode, first, offset = self.where
            for path in files:
                try:
                    if path.stat().st_ino != inode:
                        continue
                    with path.open("rb") as fh:
                        st = os.fstat(fh.fileno())
                        if st.st_ino == inode and offset < st.st_size and _first_seq(fh) == first:
                            return self._read(fh, inode, offset)
                except OSError:
                    continue
                break
        self.where = None  # at the end of a file, or it was dropped: find the next line by seq
        for path in files:
            try:
                fh = path.open("rb")
            except OSError:
                continue
            with fh:
                st = os.fstat(fh.fileno())
                newest = next(_lines_backward(fh, st.st_size), None)
                if newest is None or _seq_of(newest) <= self.last:
                    continue
                return self._read(fh, st.st_ino, _first_after(fh, st.st_size, self.last))
        return []

    def _read(self, fh: IO[bytes], inode: int, offset: int) -> list[bytes]:
        first = _first_seq(fh)
        fh.seek(offset)
        data = fh.read(READ_BLOCK)
        if b"\n" not in data:  # one line longer than a block
            data += fh.readline()
        cut = data.rfind(b"\n") + 1
        self.where = (inode, first, offset + cut)
        return [raw for raw in data[:cut].split(b"\n") if raw]


# ---------------------------------------------------------------------- file helpers
def _seq_of(raw: bytes) -> int:
    m = _SEQ.match(raw)
    return int(m.group(1)) if m else int(json.loads(raw)["seq"])


def _first_seq(fh: IO[bytes]) -> int:
    fh.seek(0)
    m = _SEQ.match(fh.read(32))
    return int(m.group(1)) if m else -1


def _lines_backward(fh: IO[bytes], size: int) -> Iterator[bytes]:
    pos, rest = size, b""
    while pos > 0:
        n = min(BLOCK, pos)
        pos -= n
        fh.seek(pos)
        parts = (fh.read(n) + rest).split(b"\n")
        rest = parts[0]
        for raw in reversed(parts[1:]):
            if raw:
                yield raw
    if rest:
        yield rest


def _line_start(fh: IO[bytes], pos: int) -> int:
    """The offset of the first line that starts at or after ``pos``."""
    if pos == 0:
        fh.seek(0)
        return 0
    fh.seek(pos - 1)
    fh.readline()
    return fh.tell()


def _first_after(fh: IO[bytes], size: int, after: int) -> int:
    """The offset of the first line whose seq is greater than ``after`` (seq grows along the file)."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        start = _line_start(fh, mid)
        raw = fh.readline() if start < size else b""
        if not raw.strip() or _seq_of(raw) > after:
            hi = mid
        else:
            lo = mid + 1
    return _line_start(fh, lo)


def _repair(path: Path) -> int:
    """Cut an unfinished last line (a crash mid-write); return the file's size."""
    with path.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return size
        pos = size
        while pos > 0:
            n = min(BLOCK, pos)
            pos -= n
            fh.seek(pos)
            cut = fh.read(n).rfind(b"\n")
            if cut >= 0:
                fh.truncate(pos + cut + 1)
                return pos + cut + 1
        fh.truncate(0)
        return 0


def _last_record(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            raw = next(_lines_backward(fh, size), None)
    except OSError:
        return None
    if raw is None:
        return None
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and "seq" in rec else None
