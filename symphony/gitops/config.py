"""``server.yaml`` for ``symphony serve``: an HTTP address and any number of sources.

::

    listen: 127.0.0.1:8090          # /status, /healthz, POST /hooks/git
    resync: 30                      # default seconds between full resyncs
    hook_secret_file: hook.secret   # optional: POST /hooks/git then needs it
    sources:
      - {type: watch, path: ./manifests, allow_empty: false, adopt: false}
      - {type: git, repo: https://example.org/ops.git, branch: main, path: manifests,
         interval: 5, shallow: true, name: ops}

``adopt: true`` lets a source take over an experiment applied by hand (``symphony
apply``) or owned by a source that is not running; without it such an experiment is
reported as a conflict and left alone. Relative paths are relative to the file's folder. Every mistake is one
``FILE:LINE: message`` line (exit code 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symphony.errors import ManifestError, Problem, UserError
from symphony.manifests import Document
from symphony.manifests.loader import parse_text
from symphony.sources.git import local_repository_problem

DEFAULT_LISTEN = "127.0.0.1:8090"
TOP_KEYS = {"listen", "resync", "hook_secret_file", "sources"}
COMMON = {"type", "name", "resync", "allow_empty", "adopt", "interval"}
KEYS = {
    "watch": COMMON | {"path", "paths", "debounce_ms"},
    "files": COMMON | {"path", "paths"},
    "git": COMMON | {"repo", "branch", "path", "shallow"},
}


@dataclass(frozen=True)
class SourceConfig:
    type: str
    name: str | None = None
    paths: tuple[str, ...] = ()
    repo: str | None = None
    branch: str | None = None
    path: str = "."
    interval: float | None = None
    shallow: bool = True
    resync: float | None = None
    allow_empty: bool = False
    debounce_ms: int | None = None
    adopt: bool = False


@dataclass(frozen=True)
class ServerConfig:
    file: str
    host: str = "127.0.0.1"
    port: int = 8090
    resync: float = 30.0
    hook_secret: str | None = None
    sources: tuple[SourceConfig, ...] = field(default_factory=tuple)


def load_config(file: str) -> ServerConfig:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: cannot read: {exc}") from None
    base = Path(file).resolve().parent
    docs, problems = parse_text(text, file=file, base_dir=str(base))
    if problems:
        raise ManifestError(problems)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise ManifestError(Problem("a server config is one YAML mapping", file=file, line=1))
    return _parse(docs[0], base)


def _parse(doc: Document, base: Path) -> ServerConfig:
    data: dict[str, Any] = doc.data
    problems: list[Problem] = [
        doc.problem((k,), f"unknown field {k!r} (known: {', '.join(sorted(TOP_KEYS))})")
        for k in data
        if k not in TOP_KEYS
    ]
    listen = data.get("listen", DEFAULT_LISTEN)
    host, _, port_text = str(listen).rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        problems.append(doc.problem(("listen",), f"listen: {listen!r} is not HOST:PORT"))
        port_text = "0"
    resync = _number(doc, ("resync",), data.get("resync", 30.0), problems)
    secret = None
    if data.get("hook_secret_file") is not None:
        path = _resolve(base, str(data["hook_secret_file"]))
        try:
            secret = Path(path).read_text().strip()
        except OSError as exc:
            problems.append(
                doc.problem(("hook_secret_file",), f"hook_secret_file: {exc.strerror}: {path}")
            )
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        problems.append(
            doc.problem(("sources",), "sources: a non-empty list of sources is required")
        )
        raw_sources = []
    sources = [_source(doc, i, raw, base, problems) for i, raw in enumerate(raw_sources)]
    names = [s.name for s in sources if s and s.name]
    for i, s in enumerate(sources):
        if s and s.name and names.count(s.name) > 1:
            problems.append(
                doc.problem(("sources", i, "name"), f"sources[{i}].name: {s.name!r} is used twice")
            )
    if problems:
        raise ManifestError(problems)
    return ServerConfig(
        file=doc.file,
        host=host.strip("[]"),
        port=int(port_text),
        resync=resync or 30.0,
        hook_secret=secret,
        sources=tuple(s for s in sources if s is not None),
    )


def _source(
    doc: Document, i: int, raw: Any, base: Path, problems: list[Problem]
) -> SourceConfig | None:
    at = ("sources", i)
    if not isinstance(raw, dict):
        problems.append(doc.problem(at, f"sources[{i}]: must be a mapping"))
        return None
    kind = raw.get("type")
    if kind not in KEYS:
        problems.append(
            doc.problem((*at, "type"), f"sources[{i}].type: must be one of git, watch, files")
        )
        return None
    before = len(problems)
    for key in raw:
        if key not in KEYS[kind]:
            known = ", ".join(sorted(KEYS[kind]))
            problems.append(
                doc.problem(
                    (*at, key),
                    f"sources[{i}].{key}: unknown field for a {kind} source (known: {known})",
                )
            )
    name = raw.get("name")
    if name is not None and not label_value(str(name)):
        problems.append(
            doc.problem(
                (*at, "name"),
                f"sources[{i}].name: {name!r} must be lower-case letters, digits and '-' (≤ 63)",
            )
        )
    interval = _number(doc, (*at, "interval"), raw.get("interval"), problems)
    resync = _number(doc, (*at, "resync"), raw.get("resync"), problems)
    for flag in ("allow_empty", "adopt", "shallow"):
        if flag in raw and not isinstance(raw[flag], bool):
            problems.append(doc.problem((*at, flag), f"sources[{i}].{flag}: must be true or false"))
    paths: tuple[str, ...] = ()
    repo = None
    if kind == "git":
        if not isinstance(raw.get("repo"), str) or not raw["repo"]:
            problems.append(doc.problem(at, f"sources[{i}].repo: required (a URL or a path)"))
        else:
            repo = (
                raw["repo"]
                if "://" in raw["repo"] or "@" in raw["repo"]
                else _resolve(base, raw["repo"])
            )
            problem = local_repository_problem(repo)
            if problem is not None:
                problems.append(doc.problem((*at, "repo"), f"sources[{i}].repo: {problem}"))
    else:
        given = raw.get("paths", [raw["path"]] if "path" in raw else None)
        if not isinstance(given, list) or not given or not all(isinstance(p, str) for p in given):
            problems.append(doc.problem(at, f"sources[{i}].path: required (a file or folder)"))
        else:
            paths = tuple(_resolve(base, p) for p in given)
    if len(problems) > before:
        return None
    return SourceConfig(
        type=kind,
        name=str(name) if name is not None else None,
        paths=paths,
        repo=repo,
        branch=raw.get("branch"),
        path=str(raw.get("path", ".")) if kind == "git" else ".",
        interval=interval,
        shallow=bool(raw.get("shallow", True)),
        resync=resync,
        allow_empty=bool(raw.get("allow_empty", False)),
        debounce_ms=raw.get("debounce_ms"),
        adopt=bool(raw.get("adopt", False)),
    )


def _number(
    doc: Document, at: tuple[str | int, ...], value: Any, problems: list[Problem]
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        field_name = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in at).replace(
            ".[", "["
        )
        problems.append(doc.problem(at, f"{field_name}: must be a number of seconds > 0"))
        return None
    return float(value)


def _resolve(base: Path, path: str) -> str:
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else str(base / expanded)


def label_value(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)) and len(name) <= 63
