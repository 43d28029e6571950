"""The supervisor's files: JSON without ``json``, atomic replacement, and the job's log.

``json`` imports ``re`` (several ms a start), so :func:`loads` and :func:`dumps` use the C
scanner and string encoder of ``_json``; :func:`dumps` writes exactly what
``json.dumps`` would. Spec and state files are replaced atomically, so readers never
see half of one. The :class:`LogWriter` appends the job's raw output (rotated by size,
echoed) and indexes it by time in ``.idx`` beside it, which ``logs --since`` reads; the
supervisor's own notes are ``[symphony] …`` lines in the same log.
"""

from __future__ import annotations

import errno
import os
import sys
import time

try:
    import _json
except ImportError:  # pragma: no cover - non-CPython
    _json = None  # type: ignore[assignment]


# -- JSON without importing json (which imports re) --------------------------------
class _ScanContext:
    """The attributes _json's C scanner reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.get
    memo: dict[str, str] = {}


_scan_once = _json.make_scanner(_ScanContext()) if _json is not None else None  # type: ignore[arg-type]


def loads(text: str) -> object:
    """``json.loads`` for one JSON document, through the C scanner alone."""
    if _scan_once is None:  # pragma: no cover - non-CPython
        import json

        return json.loads(text)
    body = text.strip(" \t\r\n")
    try:
        value, end = _scan_once(body, 0)
    except StopIteration as stop:
        raise ValueError(f"invalid JSON at character {stop.value}") from None
    if end != len(body):
        raise ValueError(f"extra data after JSON at character {end}")
    return value


def dumps(value: object) -> str:
    """``json.dumps(value)`` (same output, default separators) for plain JSON data."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value:
            out.append("NaN")
        elif value in (float("inf"), float("-inf")):
            out.append("Infinity" if value > 0 else "-Infinity")
        else:
            out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            out.append(", " if i else "")
            out.append(_encode_str(key))
            out.append(": ")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode_str(text: str) -> str:
    if _json is not None:
        return _json.encode_basestring_ascii(text)
    import json  # pragma: no cover - non-CPython

    return json.dumps(text)  # pragma: no cover


# -- whole writes ------------------------------------------------------------------
def write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        return False
    return True


def write_atomic(path: str, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        ok = write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    if not ok:
        os.unlink(tmp)
        raise OSError(errno.EIO, f"cannot write {tmp}")
    os.replace(tmp, path)


# -- the log ----------------------------------------------------------------------
NOTE_PREFIX = "[symphony] "
INDEX_SUFFIX = ".idx"
INDEX_EVERY = 1.0  # seconds between two time marks in the index


class LogWriter:
    """Appends raw output to the log file (rotating by size) and echoes it to stdout.

    Beside ``x.log`` it keeps ``x.log.idx``: lines ``<unix time> <byte offset>``, one
    at the first write of every second at most, so ``logs --since`` can start at
    the right place without time-stamping the raw output itself.
    """

    def __init__(
        self,
        path: str | None,
        *,
        echo: bool = False,
        max_bytes: int = 0,
        backups: int = 3,
        echo_fd: int = 1,
    ):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._echo_fd = echo_fd if echo else -1
        self._fd = -1
        self._index_fd = -1
        self._last_mark = -INDEX_EVERY
        self._size = 0
        self._at_line_start = True
        self._write_failed = False
        if path is not None:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self._open()
            if self._size:  # a note must start on a line of its own
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    self._at_line_start = f.read(1) == b"\n"

    def _open(self, *, truncate: bool = False) -> None:
        assert self.path is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(self.path, flags | (os.O_TRUNC if truncate else 0), 0o644)
        self._size = os.fstat(self._fd).st_size
        try:
            trunc = os.O_TRUNC if truncate else 0
            self._index_fd = os.open(self.path + INDEX_SUFFIX, flags | trunc, 0o644)
        except OSError:
            self._index_fd = -1  # the log still works; only --since gets coarser
        self._last_mark = -INDEX_EVERY

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._at_line_start = data.endswith(b"\n")
        if self._echo_fd >= 0 and not write_all(self._echo_fd, data):
            self._echo_fd = -1  # the pane or pipe went away; the log still has everything
        if self._fd < 0:
            return
        while data:
            if self.max_bytes and self._size + len(data) > self.max_bytes:
                room = self.max_bytes - self._size
                cut = data.rfind(b"\n", 0, max(room, 0)) + 1  # keep lines whole where we can
                if not cut:
                    if self._size:
                        self._rotate()
                        continue
                    cut = room  # one line longer than a whole file: split it
                self._append(data[:cut])
                data = data[cut:]
                self._rotate()
                continue
            self._append(data)
            break

    def note(self, text: str) -> None:
        """One ``[symphony] …`` line, always starting on a line of its own."""
        line = ("" if self._at_line_start else "\n") + NOTE_PREFIX + text + "\n"
        self.write(line.encode("utf-8", "replace"))

    def _append(self, data: bytes) -> None:
        now = time.time()
        if self._index_fd >= 0 and now - self._last_mark >= INDEX_EVERY:
            self._last_mark = now
            write_all(self._index_fd, f"{now:.3f} {self._size}\n".encode())
        if write_all(self._fd, data):
            self._size += len(data)
        elif not self._write_failed:
            self._write_failed = True
            print(f"symphony-supervisor: cannot write to {self.path}", file=sys.stderr)

    def _rotate(self) -> None:
        assert self.path is not None
        os.close(self._fd)
        self._fd = -1
        if self._index_fd >= 0:
            os.close(self._index_fd)
            self._index_fd = -1
        if self.backups <= 0:
            self._open(truncate=True)
            return
        for i in range(self.backups - 1, 0, -1):
            for suffix in ("", INDEX_SUFFIX):
                older = f"{self.path}.{i}{suffix}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i + 1}{suffix}")
        os.replace(self.path, f"{self.path}.1")
        if os.path.exists(self.path + INDEX_SUFFIX):
            os.replace(self.path + INDEX_SUFFIX, f"{self.path}.1{INDEX_SUFFIX}")
        self._open()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._index_fd >= 0:
            os.close(self._index_fd)
            self._index_fd = -1
