"""One job copy's output as lines with stable positions, for streaming to the conductor.

The supervisor appends a copy's output to ``output.log`` and rotates it by size
(``output.log.1`` … ``output.log.N``, oldest last). A line's position is where it
ends in the copy's *whole* output — bytes since the copy began, across rotations — so
it is the same whoever reads it and however often. The conductor keeps, per job, how
far it holds the output and tells a (re)connecting node to resume there: lines lost in
a broken stream are sent again, and lines it has are dropped.

Where each file starts in the whole output is kept in ``output.pos.json`` beside the
log (it changes only when the file rotates), so a restarted agent numbers lines the
same way. Files are matched by inode, newest known first (a new file may reuse the
inode of one rotated away).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

POS_FILE = "output.pos.json"


@dataclass
class _File:
    path: Path
    inode: int
    size: int
    base: int = 0  # where its first byte is in the whole output


class OutputReader:
    """Reads one copy's output, oldest line first, from a position in its whole output."""

    def __init__(self, log_path: Path, *, backups: int, max_file_bytes: int, chunk: int) -> None:
        self.path = log_path
        self.backups = backups
        self.max_file_bytes = max_file_bytes
        self.chunk = chunk
        self.pos = 0  # where the last line handed out ends
        self.partial = b""  # bytes read past ``pos``: the start of an unfinished line
        self.chain: list[tuple[int, int]] = self._load()  # (inode, base) per file, oldest first

    # ------------------------------------------------------------------ positions
    def seek(self, pos: int) -> None:
        """Hand out lines from ``pos`` on (0: from the oldest output still on disk)."""
        self.pos, self.partial = pos, b""

    def seek_end(self) -> None:
        """Hand out only output written from now on."""
        files = self._scan()
        self.seek(files[-1].base + files[-1].size if files else 0)

    def read(self) -> list[tuple[str, int]]:
        """Up to ``chunk`` bytes of new complete lines as ``(text, end position)``."""
        files = self._fast() or self._scan()
        if not files:
            return []
        start = self.pos + len(self.partial)
        if start < files[0].base:  # rotated away before anyone read it: it is gone
            self.seek(files[0].base)
            start = self.pos
        end = files[-1].base + files[-1].size
        if start > end:  # a position past what is on disk: carry on from the end
            self.seek(end)
            return []
        out: list[tuple[str, int]] = []
        budget = self.chunk
        for f in files:
            if budget <= 0 or start >= f.base + f.size:
                continue
            data = self._read_file(f, start - f.base, budget)
            if data is None:  # rotated while we looked: next time
                break
            budget -= len(data)
            start += len(data)
            out.extend(self._split(data))
            if start < f.base + f.size:
                break  # the budget ran out inside this file
        return out

    # ------------------------------------------------------------------ internals
    def _split(self, data: bytes) -> list[tuple[str, int]]:
        *complete, rest = (self.partial + data).split(b"\n")
        out = []
        for raw in complete:
            self.pos += len(raw) + 1
            out.append((raw.decode("utf-8", "replace").rstrip("\r"), self.pos))
        self.partial = rest
        if len(rest) > self.chunk:  # a very long line: hand out what we have
            self.pos += len(rest)
            out.append((rest.decode("utf-8", "replace"), self.pos))
            self.partial = b""
        return out

    def _read_file(self, f: _File, offset: int, limit: int) -> bytes | None:
        try:
            with f.path.open("rb") as fh:
                if os.fstat(fh.fileno()).st_ino != f.inode:
                    return None
                fh.seek(offset)
                return fh.read(min(limit, f.size - offset))
        except OSError:
            return None

    def _fast(self) -> list[_File] | None:
        """Just the newest file, when it is the one we know and we read inside it."""
        if not self.chain:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        inode, base = self.chain[-1]
        if st.st_ino != inode or self.pos < base:
            return None
        if st.st_size < self.pos + len(self.partial) - base:  # truncated in place: a new file
            self.chain[-1] = (inode, self.pos)
            self.partial = b""
            self._save()
            base = self.pos
        return [_File(self.path, inode, st.st_size, base)]

    def _scan(self) -> list[_File]:
        """Every file on disk, oldest first, with where each starts in the whole output."""
        files: list[_File] = []
        for i in range(self.backups, -1, -1):
            path = self.path if i == 0 else self.path.with_name(f"{self.path.name}.{i}")
            try:
                st = path.stat()
            except OSError:
                continue
            files.append(_File(path, st.st_ino, st.st_size))
        if not files:
            return files
        index = {f.inode: n for n, f in enumerate(files)}
        anchor = next(((index[ino], base) for ino, base in reversed(self.chain) if ino in index), None)
        if anchor is None:  # first sight, or more rotations than backups while nobody read
            gap = self.max_file_bytes or 1 << 40  # past anything handed out from the old files
            k, base = 0, (max(b for _, b in self.chain) + gap if self.chain else 0)
        else:
            k, base = anchor
        files[k].base = base
        for n in range(k + 1, len(files)):
            files[n].base = files[n - 1].base + files[n - 1].size
        for n in range(k - 1, -1, -1):
            files[n].base = files[n + 1].base - files[n].size
        chain = [(f.inode, f.base) for f in files]
        if chain != self.chain:
            self.chain = chain
            self._save()
        return files

    def _load(self) -> list[tuple[int, int]]:
        try:
            data = json.loads(self.path.with_name(POS_FILE).read_text())
            return [(int(ino), int(base)) for ino, base in data["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _save(self) -> None:
        path = self.path.with_name(POS_FILE)
        tmp = path.with_name(POS_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps({"files": self.chain}))
            os.replace(tmp, path)
        except OSError:
            pass  # the job folder is being removed
