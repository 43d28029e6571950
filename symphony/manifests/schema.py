"""Validate documents against the JSON Schemas in ``schemas/``.

The schemas are the single source of truth; this module only turns
jsonschema's errors into one line a person can act on.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from symphony.errors import Problem
from symphony.manifests.loader import Document, PathKey

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
KIND_SCHEMAS = {"Experiment": "experiment", "Deployment": "deployment", "Cluster": "cluster"}


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry()
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(path.read_text())
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return registry


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator for ``schemas/<name>.json`` (cached: building one is slow)."""
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    return Draft202012Validator(schema, registry=_registry())


def schema_problems(
    doc: Document, data: Any, schema: str, *, prefix: PathKey = ()
) -> list[Problem]:
    """One problem per offending field, in document order."""
    errors = sorted(validator(schema).iter_errors(data), key=lambda e: _sort_key(prefix, e))
    described = [(tuple(error.absolute_path), error, *describe(error)) for error in errors]
    # A misspelt field also makes the right one "missing": say only "did you mean".
    suggested = {
        (parent, hint)
        for parent, error, _, _ in described
        if error.validator == "additionalProperties"
        for hint in _suggestions(error)
    }
    problems: list[Problem] = []
    seen: set[PathKey] = set()
    for parent, error, path, message in described:
        if error.validator == "required" and (parent, _missing(error)) in suggested:
            continue
        full = (*prefix, *path)
        if full in seen:
            continue
        seen.add(full)
        problems.append(doc.problem(full, f"{dotted(full)}: {message}" if full else message))
    return sorted(problems, key=lambda p: p.line or 0)


def _missing(error: ValidationError) -> str:
    return error.message.split("'")[1] if "'" in error.message else error.message


def _suggestions(error: ValidationError) -> list[str]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = sorted(schema.get("properties", {}))
    if not isinstance(error.instance, dict):
        return []
    extra = [str(k) for k in error.instance if k not in schema.get("properties", {})]
    return [hint for key in extra for hint in difflib.get_close_matches(key, allowed, n=1)]


def _sort_key(prefix: PathKey, error: ValidationError) -> tuple[str, ...]:
    return tuple(str(p) for p in (*prefix, *error.absolute_path))


def describe(error: ValidationError) -> tuple[PathKey, str]:
    """The field path and a one-line message for one jsonschema error."""
    path: PathKey = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator_name = error.validator
    if validator_name == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in schema.get("properties", {})]
        if extra:
            key = str(extra[0])
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            if allowed:
                suggestion += f"; allowed: {', '.join(allowed)}"
            return (*path, key), f"unknown field {key!r}{suggestion}"
    if validator_name == "required":
        return path, f"missing required field {_missing(error)!r}"
    if validator_name == "propertyNames":
        inner = error.context[0] if error.context else None
        bad = inner.instance if inner is not None else error.instance
        inner_schema = inner.schema if inner is not None and isinstance(inner.schema, dict) else {}
        text = inner_schema.get("x-error") or "is not an allowed key"
        return path, f"{bad!r} {text}"
    if validator_name in {"anyOf", "oneOf"} and error.context:
        inner = _matching_branch_error(error)
        if inner is not None:
            return describe(inner)
    if "x-error" in schema and validator_name in {
        "anyOf",
        "oneOf",
        "pattern",
        "type",
        "maxLength",
        "additionalProperties",
    }:
        if validator_name in {"pattern", "maxLength"}:
            return path, f"{error.instance!r} {schema['x-error']}"
        return path, f"{schema['x-error']}, got {_show(error.instance)}"
    if validator_name == "type":
        expected = schema.get("type")
        names = expected if isinstance(expected, list) else [expected]
        return (
            path,
            f"expected {' or '.join(_type_name(n) for n in names)}, got {_show(error.instance)}",
        )
    if validator_name == "enum":
        options = ", ".join(str(o) for o in schema.get("enum", []))
        return path, f"{error.instance!r} is not one of: {options}"
    if validator_name == "const":
        return path, f"{error.instance!r} is not supported; expected {schema.get('const')!r}"
    if validator_name == "minimum":
        return path, f"{error.instance!r} is less than the minimum {schema.get('minimum')}"
    if validator_name == "maximum":
        return path, f"{error.instance!r} is greater than the maximum {schema.get('maximum')}"
    if validator_name in ("minItems", "minLength") and schema.get(validator_name) == 1:
        return path, "must not be empty"
    if validator_name == "uniqueItems":
        return path, "contains duplicates"
    if validator_name in {"anyOf", "oneOf"} and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return describe(best)
    return path, error.message


def _matching_branch_error(error: ValidationError) -> ValidationError | None:
    """In ``anyOf: [list form, mapping form]``, the deepest error of the branch whose type
    the value has: ``binds[0]: 'ps.v2' is not a valid name`` instead of "expected a list"."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.schema_path[0]), []).append(sub)
    for subs in branches.values():
        wrong_type = any(s.validator == "type" and not s.path for s in subs)
        if not wrong_type:
            return max(subs, key=lambda s: len(s.path))
    return None


def _type_name(name: Any) -> str:
    return {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "null": "null",
    }.get(str(name), str(name))


def _show(value: Any) -> str:
    kind = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    for cls, label in kind.items():
        if type(value) is cls:
            return f"{label} {value!r}" if cls in (str,) else label
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return type(value).__name__


def dotted(path: Sequence[str | int]) -> str:
    """``("spec", "processes", 0, "name")`` → ``spec.processes[0].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def all_schema_names() -> Iterable[str]:
    return (p.stem for p in sorted(SCHEMA_DIR.glob("*.json")))
