"""One owner per experiment, so two sources never fight over it (Argo CD's shared-resource
conflict, Flux's refusal to take over another Kustomization's objects).

Who owns an experiment: the workspace record (``experiments.json``: ``source`` is a
source id, or ``cli`` for ``symphony apply``); where there is none, the live label
``symphony/source``; an experiment live with neither was made by hand.

A source applies an experiment it declares when it owns it or nobody does. Else it
reports a conflict and leaves the experiment alone (no apply, no prune), until:

- the owner stops declaring it — it prunes it, and the next pass of the other takes it
  (within one process it hands it over instead: the record goes, the experiment stays
  live, and the other source's pass takes it, restarting only what differs);
- the owner is removed from the ``server.yaml`` of the ``serve`` that ran it (retired);
- with ``adopt``: the experiment was applied by hand, or its owner is not running
  (a ``watch``/``sync`` that stopped, a source whose status is lost).

Within one ``serve`` sources run their passes one after another in config order, so
an experiment nobody owns yet goes to the first source that declares it; from then on
its owner keeps it. Across processes on one state folder, a file lock makes
"decide, apply, record" one step, so two processes never both take the same name.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from symphony.gitops import store
from symphony.home import state_home

HAND = "cli"  # the workspace record's source for ``symphony apply``
ADOPT_HINT = "adopt: true or --adopt takes it over"


@dataclass(frozen=True)
class RunBy:
    """Which command runs a source: ``serve`` (with its config file), ``watch`` or ``sync``."""

    command: str
    config: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "config": self.config}


@dataclass
class Claims:
    """What each source of one process declares, so a duplicate is found before applying.

    ``declared[id]`` is None until that source's first pass. ``waiting`` remembers who
    reported a conflict, so an owner that prunes the experiment wakes them at once.
    """

    order: tuple[str, ...]
    declared: dict[str, frozenset[str] | None] = field(default_factory=dict)
    waiting: dict[str, set[str]] = field(default_factory=dict)
    wake: Callable[[str], None] | None = None

    def update(self, source: str, declared: frozenset[str], conflicts: Sequence[str]) -> None:
        self.declared[source] = declared
        self.waiting[source] = set(conflicts)

    def before(self, source: str) -> tuple[str, ...]:
        """The sources ahead of ``source`` in config order."""
        return self.order[: self.order.index(source)] if source in self.order else ()

    def heir(self, source: str, name: str) -> str | None:
        """Another source of this process that declares ``name``: it takes it over from
        ``source`` without a prune in between (nothing restarts that does not change)."""
        for peer in self.order:
            if peer != source and name in (self.declared.get(peer) or ()):
                return peer
        return None

    def released(self, names: Sequence[str]) -> None:
        """An owner pruned ``names``: sources that wanted them run a pass now."""
        gone = set(names)
        for source, wanted in self.waiting.items():
            if wanted & gone and self.wake is not None:
                self.wake(source)


@dataclass(frozen=True)
class Verdict:
    ours: bool
    owner: str  # the owner's id (ours: this source)
    message: str | None = None


def describe(owner: str, status: Mapping[str, Any] | None, *, peer: bool = False) -> str:
    """``serve: /path/server.yaml``, ``watch: /path`` or ``sync: URL`` (+ ``not running``).

    A ``peer`` runs in this very process, whatever its status file still says.
    """
    if status is None:
        return "this process" if peer else "no status: not run from this state folder"
    source = status.get("source") or {}
    run_by = source.get("run_by") or {}
    command = run_by.get("command")
    target = run_by.get("config") if command == "serve" else _target(source)
    text = f"{command}: {target}" if command else f"{source.get('type', 'source')}: {target}"
    if peer:
        return text
    if status.get("retired"):
        return f"{text}, removed from its config"
    if not running(status):
        return f"{text}, not running"
    return text


def _target(source: Mapping[str, Any]) -> str:
    if source.get("repo"):
        return str(source["repo"])
    paths = source.get("paths") or []
    return ", ".join(str(p) for p in paths) if paths else str(source.get("id", "?"))


def running(status: Mapping[str, Any]) -> bool:
    """The process that writes this status is alive and has not stopped its loop."""
    if not status.get("running") or status.get("retired"):
        return False
    pid = status.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True


def decide(
    name: str,
    *,
    me: str,
    owner: str | None,
    where: str,
    adopt: bool,
    claims: Claims | None,
    status_of: Callable[[str], Mapping[str, Any] | None] = store.read,
) -> Verdict:
    """May source ``me``, which declares ``name`` at ``where``, apply it?"""
    here = f"declared here too in {where} — not applied"
    peers = claims.declared if claims is not None else {}
    if owner is None:
        for peer in claims.before(me) if claims is not None else ():
            if name in (peers.get(peer) or ()):  # it comes first in the config: it owns it
                return Verdict(False, peer, _owned(name, peer, _peer(peer, status_of), here))
        return Verdict(True, me)
    if owner == me:
        return Verdict(True, me)
    if owner == HAND:
        if adopt:
            return Verdict(True, me)
        return Verdict(
            False,
            HAND,
            f"experiment {name!r} was applied by hand (symphony apply); {here} ({ADOPT_HINT})",
        )
    if claims is not None and owner in claims.order:  # a source of this same process
        theirs = peers.get(owner)  # None: it has not run its first pass yet
        if theirs is not None and name not in theirs:
            return Verdict(True, me)  # it stopped declaring it (and could not prune it)
        return Verdict(False, owner, _owned(name, owner, _peer(owner, status_of), here))
    status = status_of(owner)
    if status is not None and status.get("retired"):
        return Verdict(True, me)
    if adopt and (status is None or not running(status)):
        return Verdict(True, me)
    hint = f" ({ADOPT_HINT})" if status is None or not running(status) else ""
    return Verdict(False, owner, _owned(name, owner, describe(owner, status), here) + hint)


def _peer(peer: str, status_of: Callable[[str], Mapping[str, Any] | None]) -> str:
    """A source of this same process: how its status file describes it."""
    return describe(peer, status_of(peer), peer=True)


def _owned(name: str, owner: str, how: str, here: str) -> str:
    return f"experiment {name!r} is owned by source {owner!r} ({how}); {here}"


@contextmanager
def lock() -> Iterator[None]:
    """Serialise "decide, apply, record" across processes sharing one state folder."""
    path = state_home() / "gitops" / "ownership.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def retire(run_by: RunBy, keep: Sequence[str]) -> list[str]:
    """Mark the sources this ``serve`` config ran before and no longer lists as retired:
    what they own may be taken over by another source."""
    if run_by.command != "serve" or run_by.config is None:
        return []
    retired = []
    for status in store.read_all():
        source = status.get("source") or {}
        ident = source.get("id")
        by = source.get("run_by") or {}
        if (
            ident
            and ident not in keep
            and not status.get("retired")
            and by.get("command") == "serve"
            and by.get("config") == run_by.config
        ):
            store.retire(str(ident))
            retired.append(str(ident))
    return retired
