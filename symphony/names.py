"""Name abbreviation as in DESIGN §3: an exact match wins, then a unique prefix. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from symphony.errors import UserError


def _candidates(given: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(every name sorted, the matches): the exact name alone, else every prefix match."""
    known = sorted(set(names))
    if given in known:
        return known, [given]
    return known, [n for n in known if n.startswith(given)]


def resolve_name(given: str, candidates: Iterable[str], *, what: str) -> str:
    names, matches = _candidates(given, candidates)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(names) if names else "none"
        raise UserError(f"no {what} named {given!r} (known: {known})")
    raise UserError(f"{what} {given!r} is ambiguous: {', '.join(matches)}")


def resolve_process(given: str, keys: Iterable[str]) -> str:
    """``group/process``, a process name unique across groups, or a unique prefix of either."""
    keys = sorted(set(keys))
    if given in keys:
        return given
    by_name = [k for k in keys if k.rsplit("/", 1)[-1] == given]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise UserError(f"process {given!r} is ambiguous: {', '.join(by_name)} (use group/process)")
    matches = [k for k in keys if k.startswith(given) or k.rsplit("/", 1)[-1].startswith(given)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no process named {given!r} (known: {', '.join(keys) or 'none'})")
    raise UserError(f"process {given!r} is ambiguous: {', '.join(matches)}")


def resolve_service(given: str, names: Iterable[str], *, experiment: str) -> str:
    """A bound or exposed name of ``experiment``: exact, or a unique prefix (``visit``)."""
    known, matches = _candidates(given, names)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(
            f"experiment {experiment!r} has no bound or exposed name {given!r} "
            f"(available: {', '.join(known) or 'none'})"
        )
    raise UserError(f"name {given!r} is ambiguous in experiment {experiment!r}: {', '.join(matches)}")
