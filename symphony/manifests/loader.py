"""Read YAML documents and remember the line of every field.

The only I/O of the manifests package. Each document comes back as plain data
plus an index from field path (``("spec", "processes", 0, "name")``) to the
1-based line it was written on, so every later error can say ``FILE:LINE``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from symphony.errors import Problem

PathKey = tuple[str | int, ...]
YAML_SUFFIXES = (".yaml", ".yml")
STDIN = "-"


@dataclass(frozen=True)
class Document:
    """One YAML document with the lines of its fields."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    base_dir: str = "."  # folder that relative paths in the document are resolved against

    def line_of(self, path: Iterable[str | int]) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key: PathKey = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Iterable[str | int], message: str) -> Problem:
        return Problem(message, file=self.file, line=self.line_of(path))


def parse_text(
    text: str, *, file: str, base_dir: str = "."
) -> tuple[list[Document], list[Problem]]:
    """Every non-empty document in ``text`` (pure: no file access)."""
    documents: list[Document] = []
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[PathKey, int] = {}
            _index(node, (), lines, problems, file)
            data = loader.construct_document(node)
            if data is None:
                continue
            documents.append(Document(file=file, data=data, lines=lines, base_dir=base_dir))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        line = max(1, min(line, len(text.splitlines())))  # an error "at end of stream"
        what = exc.problem or exc.context or "syntax error"
        problems.append(Problem(f"invalid YAML: {what}", file=file, line=line))
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        problems.append(Problem(f"invalid YAML: {exc}", file=file, line=1))
    finally:
        loader.dispose()
    return documents, problems


def _index(
    node: yaml.Node,
    path: PathKey,
    lines: dict[PathKey, int],
    problems: list[Problem],
    file: str,
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                problems.append(
                    Problem(
                        f"duplicate field {key!r}", file=file, line=key_node.start_mark.line + 1
                    )
                )
            seen.add(key)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), lines, problems, file)


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Files named, and every ``*.yaml``/``*.yml`` under named folders (hidden ones skipped)."""
    out: list[str] = []
    for raw in paths:
        if raw == STDIN:
            out.append(STDIN)
            continue
        path = Path(raw)
        if path.is_dir():
            out.extend(str(p) for p in _yaml_files(path))
        else:
            out.append(raw)
    return out


def _yaml_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix in YAML_SUFFIXES:
            yield path


def read_paths(paths: Sequence[str]) -> tuple[list[Document], list[Problem]]:
    """Read files, folders and ``-`` (stdin) into documents; problems for what cannot be read."""
    documents: list[Document] = []
    problems: list[Problem] = []
    files = expand_paths(paths)
    for name in files:
        if name == STDIN:
            text, file, base = sys.stdin.read(), "<stdin>", str(Path.cwd())
        else:
            path = Path(name)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                problems.append(Problem(f"{name}: no such file or folder"))
                continue
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(f"cannot read: {exc}", file=name, line=1))
                continue
            file, base = name, str(path.resolve().parent)
        docs, found = parse_text(text, file=file, base_dir=base)
        documents.extend(docs)
        problems.extend(found)
    if not files and not problems:
        problems.append(Problem("no manifests found in " + ", ".join(paths)))
    return documents, problems
