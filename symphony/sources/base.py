"""What every source yields: a :class:`Snapshot` of documents at one revision."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from symphony.errors import Problem
from symphony.manifests import Document

SOURCE_LABEL = "symphony/source"  # on live experiments: which source applied (and owns) them


@dataclass(frozen=True)
class Broken:
    """A document that did not parse, with the name it seems to declare (a best guess)."""

    file: str
    problems: tuple[Problem, ...]
    kind: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything a source holds at ``revision``.

    ``documents`` parsed; ``broken`` did not (each blocks only what it names);
    ``problems`` concern the source itself (an unreadable file, a missing path).
    """

    revision: str | None
    documents: tuple[Document, ...] = ()
    broken: tuple[Broken, ...] = ()
    problems: tuple[Problem, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing at all: no document, not even a broken one."""
        return not self.documents and not self.broken


class Source(Protocol):
    """A place desired state is read from. ``poll`` is cheap; ``snapshot`` reads everything."""

    id: str
    kind: str  # "files" | "watch" | "git"
    target: str  # a path or a URL, for people
    interval: float  # seconds between polls

    def poll(self) -> bool:
        """True when the source may have changed since the last snapshot."""
        ...

    def snapshot(self) -> Snapshot: ...

    def start(self, wake: Callable[[], None]) -> None:
        """Begin noticing changes on its own (threads); call ``wake`` on one."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Settings and position, for ``/status``."""
        ...


@dataclass
class ChangeFlag:
    """Set from a watcher thread, taken by the loop."""

    _set: bool = field(default=False)

    def set(self) -> None:
        self._set = True

    def take(self) -> bool:
        was, self._set = self._set, False
        return was


_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")


def source_id(kind: str, target: str, *, extra: str = "") -> str:
    """A stable id that is also a valid label value: ``git-manifests-1a2b3c``."""
    stem = target.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").lower()
    stem = _LABEL_CHARS.sub("-", stem).strip("-")[:30] or "root"
    digest = hashlib.sha256(f"{kind}\0{target}\0{extra}".encode()).hexdigest()[:6]
    return f"{kind}-{stem}-{digest}"
