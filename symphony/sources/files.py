"""Files and folders (recursive ``*.yaml``/``*.yml``, hidden ones skipped), read on each poll."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from symphony.errors import Problem
from symphony.manifests.loader import expand_paths
from symphony.sources.base import Snapshot, source_id
from symphony.sources.reading import FileText, build_snapshot

Fingerprint = tuple[tuple[str, int, int], ...]


class FilesSource:
    """Reads ``paths`` whenever asked; notices changes by polling names, sizes and mtimes."""

    kind = "files"

    def __init__(
        self, paths: Sequence[str], *, name: str | None = None, interval: float = 1.0
    ) -> None:
        if not paths:
            raise ValueError("a files source needs at least one path")
        self.paths = [str(p) for p in paths]
        self.target = ", ".join(self.paths)
        self.id = name or source_id(
            self.kind, self.paths[0], extra="\0".join(os.path.abspath(p) for p in self.paths)
        )
        self.interval = interval
        self._seen: Fingerprint | None = None

    def _files(self) -> list[str]:
        return [p for p in expand_paths(self.paths) if p != "-"]

    def fingerprint(self) -> Fingerprint:
        found = []
        for name in self._files():
            try:
                st = os.stat(name)
            except OSError:
                continue
            found.append((name, st.st_mtime_ns, st.st_size))
        return tuple(found)

    def poll(self) -> bool:
        return self.fingerprint() != self._seen

    def snapshot(self) -> Snapshot:
        self._seen = self.fingerprint()
        texts: list[FileText] = []
        problems: list[Problem] = []
        for raw in self.paths:
            if not os.path.exists(raw):
                problems.append(Problem(f"{raw}: no such file or folder"))
        for name in self._files():
            path = Path(name)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue  # deleted since listed: gone, like a file never there
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(f"cannot read: {exc}", file=name, line=1))
                continue
            texts.append(FileText(name, text, str(path.resolve().parent)))
        return build_snapshot(texts, problems=problems)

    def start(self, wake: Callable[[], None]) -> None:
        """Nothing to start: changes are found by :meth:`poll`."""

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.kind, "paths": self.paths, "interval": self.interval}
