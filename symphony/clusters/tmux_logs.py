"""Reading a process's output from its log files: whole, tail, since, follow.

The supervisor writes the raw output (all restarts) to ``<key>.log`` and rotates
it to ``.log.1``, ``.log.2`` …; the history is the backups oldest first, then
the live file. ``since`` uses the supervisor's time index beside each file
(``x.log.idx``: ``<unix time> <byte offset>`` at most once a second), so it is
precise to about a second; a file without an index is judged by its mtime.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 16


def read_history(
    files: Sequence[Path],
    *,
    tail: int | None = None,
    since: float | None = None,
    now: float | None = None,
    limit: int | None = None,
) -> Iterator[bytes]:
    """The lines (bytes, newline kept) of ``files`` in order, filtered by ``since`` and ``tail``.

    The files are one stream: a line cut by rotation is whole again here.
    ``limit`` stops the last file at that many bytes (where following starts).
    """
    starts = [0] * len(files)
    if since is not None:
        cutoff = (time.time() if now is None else now) - since
        kept = [(f, start) for f in files if (start := since_offset(f, cutoff)) is not None]
        files, starts = [f for f, _ in kept], [start for _, start in kept]
    sizes: list[int | None] = [None] * len(files)
    if files and limit is not None:
        sizes[-1] = limit
    if tail is not None:
        blocks = _tail_blocks(files, sizes, tail, starts)
    else:
        blocks = _blocks(files, sizes, starts)
    lines = _lines(blocks)
    if tail is None:
        yield from lines
        return
    if tail > 0:
        yield from deque(lines, maxlen=tail)


INDEX_SUFFIX = ".idx"
INDEX_EVERY = 1.0  # the supervisor's spacing of time marks


def since_offset(path: Path, cutoff: float) -> int | None:
    """Where output newer than ``cutoff`` starts in ``path``; None when it has none.

    Output between two marks was written within a second of the first, so the
    segment before the first mark at or after ``cutoff`` is included when it may
    hold newer lines: a line is shown a second too early rather than lost.
    """
    marks = _marks(Path(str(path) + INDEX_SUFFIX))
    if not marks:
        return 0 if _mtime(path) >= cutoff else None
    for i, (when, offset) in enumerate(marks):
        if when >= cutoff:
            if i and marks[i - 1][0] + INDEX_EVERY > cutoff:
                return marks[i - 1][1]
            return offset
    when, offset = marks[-1]
    return offset if when + INDEX_EVERY > cutoff else None


def _marks(index: Path) -> list[tuple[float, int]]:
    try:
        text = index.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    marks = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                marks.append((float(parts[0]), int(parts[1])))
            except ValueError:
                continue
    return marks


def _blocks(
    files: Sequence[Path], sizes: Sequence[int | None], starts: Sequence[int]
) -> Iterator[bytes]:
    for path, size, start in zip(files, sizes, starts, strict=True):
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                left = None if size is None else max(0, size - start)
                while left is None or left > 0:
                    block = fh.read(BLOCK if left is None else min(BLOCK, left))
                    if not block:
                        break
                    if left is not None:
                        left -= len(block)
                    yield block
        except FileNotFoundError:
            continue  # rotated away while reading


def _tail_blocks(
    files: Sequence[Path], sizes: Sequence[int | None], count: int, starts: Sequence[int]
) -> Iterator[bytes]:
    """Enough trailing blocks, in order, to hold the last ``count`` lines: read backwards."""
    collected: deque[bytes] = deque()
    newlines = 0
    for path, size, start in zip(reversed(files), reversed(sizes), reversed(starts), strict=True):
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed just below)
        except FileNotFoundError:
            continue
        with fh:
            end = fh.seek(0, os.SEEK_END)
            pos = end if size is None else min(size, end)
            while pos > start and newlines <= count:
                step = min(BLOCK, pos - start)
                pos -= step
                fh.seek(pos)
                block = fh.read(step)
                collected.appendleft(block)
                newlines += block.count(b"\n")
        if newlines > count:
            break
    yield from collected


def _lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for block in blocks:
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


def follow(
    live: Path,
    *,
    start: int,
    finished: Callable[[], bool],
    interval: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """New lines appended to ``live`` after byte ``start``, until ``finished()`` and quiet.

    Survives rotation: the open handle keeps reading the renamed file to its
    end, then the new live file is read from its start.
    """
    fh = _open_at(live, start)
    pending = b""
    try:
        while True:
            data = fh.read() if fh else b""
            if data:
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    yield line + b"\n"
                continue
            if _replaced(fh, live):
                if fh:
                    fh.close()
                fh = _open_at(live, 0)
                continue
            if finished():
                # one last read: output written just before the end
                data = fh.read() if fh else b""
                if data:
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        yield line + b"\n"
                    continue
                if pending:
                    yield pending
                return
            sleep(interval)
    finally:
        if fh:
            fh.close()


def live_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _open_at(path: Path, offset: int) -> BinaryIO | None:
    try:
        fh = open(path, "rb")  # noqa: SIM115 (the follower owns it)
    except FileNotFoundError:
        return None
    fh.seek(offset)
    return fh


def _replaced(fh: BinaryIO | None, path: Path) -> bool:
    """The live file is another file now (rotated, recreated) or shorter (truncated)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if fh is None:
        return True
    own = os.fstat(fh.fileno())
    if (own.st_ino, own.st_dev) != (st.st_ino, st.st_dev):
        return True
    if st.st_size < fh.tell():
        fh.seek(0)
    return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
