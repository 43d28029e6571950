"""A watched folder: inotify (watchfiles) wakes the loop within milliseconds of a save.

Polling names, sizes and mtimes stays on as a fallback (file systems where
inotify does not reach, such as some network mounts).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from symphony.manifests.loader import YAML_SUFFIXES
from symphony.sources.base import ChangeFlag, source_id
from symphony.sources.files import FilesSource

DEBOUNCE_MS = 400  # the longest a burst of changes is grouped for
STEP_MS = 30  # a quiet gap this long ends a burst


class WatchedFolder(FilesSource):
    kind = "watch"

    def __init__(
        self,
        paths: Sequence[str],
        *,
        name: str | None = None,
        interval: float = 2.0,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        super().__init__(paths, name=name, interval=interval)
        self.id = name or source_id(
            self.kind, self.paths[0], extra="\0".join(os.path.abspath(p) for p in self.paths)
        )
        self.debounce_ms = debounce_ms
        self._flag = ChangeFlag()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> bool:
        return self._flag.take() or super().poll()

    def relevant(self, path: str) -> bool:
        """A YAML file, or a folder (a deleted folder takes its files with it); nothing hidden."""
        for root in self.paths:
            try:
                rel = Path(path).relative_to(Path(root).resolve())
            except ValueError:
                continue
            if any(part.startswith(".") for part in rel.parts):
                return False
        return path.endswith(YAML_SUFFIXES) or not os.path.isfile(path)

    def start(self, wake: Callable[[], None]) -> None:
        if self._thread is not None:
            return
        roots = [_watch_root(p) for p in self.paths]

        def run() -> None:
            import watchfiles

            try:
                for changes in watchfiles.watch(
                    *roots,
                    watch_filter=lambda _change, path: self.relevant(path),
                    debounce=self.debounce_ms,
                    step=STEP_MS,
                    stop_event=self._stop,
                    rust_timeout=500,
                    yield_on_timeout=False,
                    raise_interrupt=False,
                ):
                    if changes:
                        self._flag.set()
                        wake()
            except Exception:  # a vanished root, an inotify limit: polling still works
                return

        self._thread = threading.Thread(target=run, name=f"watch {self.id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "debounce_ms": self.debounce_ms}


def _watch_root(path: str) -> str:
    """A folder to watch: the path itself, or a file's folder."""
    resolved = Path(path).resolve()
    return str(resolved if resolved.is_dir() else resolved.parent)
