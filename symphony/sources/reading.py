"""Parse manifest files one document at a time, so one broken document breaks only itself.

``symphony.manifests`` stops a file at its first YAML error; here each ``---``
section is parsed on its own (line numbers kept), and a section that does not
parse is named by a best guess at its ``kind`` and ``metadata.name``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from symphony.errors import Problem
from symphony.manifests import Document
from symphony.manifests.loader import parse_text
from symphony.sources.base import Broken, Snapshot

_SEPARATOR = re.compile(r"^---(?:\s|$)")
_KIND = re.compile(r"^kind:\s*['\"]?([A-Za-z]+)", re.MULTILINE)
_NAME_FLOW = re.compile(
    r"^metadata:\s*\{[^}\n]*?\bname:\s*['\"]?([a-z0-9][-a-z0-9]*)", re.MULTILINE
)
_NAME_BLOCK = re.compile(
    r"^metadata:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+name:\s*['\"]?([a-z0-9][-a-z0-9]*)", re.MULTILINE
)


@dataclass(frozen=True)
class FileText:
    name: str  # as shown in errors: a path, or a path inside a repository
    text: str
    base_dir: str  # the folder relative workdirs resolve against


def sections(text: str) -> list[tuple[int, str]]:
    """``(first line index, text)`` of every ``---``-separated section."""
    lines = text.splitlines(keepends=True)
    out: list[tuple[int, str]] = []
    start = 0
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) and i > start:
            out.append((start, "".join(lines[start:i])))
            start = i
    out.append((start, "".join(lines[start:])))
    return [(s, body) for s, body in out if body.removeprefix("---").strip()]


def guess_identity(text: str) -> tuple[str | None, str | None]:
    """The ``kind`` and ``metadata.name`` a section that does not parse seems to declare."""
    kind = _KIND.search(text)
    name = _NAME_FLOW.search(text) or _NAME_BLOCK.search(text)
    return (kind.group(1) if kind else None), (name.group(1) if name else None)


def parse_file(item: FileText) -> tuple[list[Document], list[Broken]]:
    documents: list[Document] = []
    broken: list[Broken] = []
    for start, body in sections(item.text):
        # pad with newlines so that lines count from the top of the file
        docs, problems = parse_text("\n" * start + body, file=item.name, base_dir=item.base_dir)
        documents.extend(docs)
        if problems:
            kind, name = guess_identity(body)
            broken.append(Broken(item.name, tuple(problems), kind, name))
    return documents, broken


def build_snapshot(
    files: Iterable[FileText], *, revision: str | None = None, problems: Iterable[Problem] = ()
) -> Snapshot:
    """Parse every file; the revision defaults to a hash of names and contents."""
    items = sorted(files, key=lambda f: f.name)
    documents: list[Document] = []
    broken: list[Broken] = []
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.name.encode() + b"\0" + item.text.encode() + b"\0")
        docs, bad = parse_file(item)
        documents.extend(docs)
        broken.extend(bad)
    return Snapshot(
        revision=revision or digest.hexdigest()[:12],
        documents=tuple(documents),
        broken=tuple(broken),
        problems=tuple(problems),
        files=tuple(i.name for i in items),
    )
