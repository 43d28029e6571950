"""One source's reconcile pass: read → isolate → label → apply per cluster → prune → record.

A source owns what it applied: every experiment it applies carries the label
``symphony/source: <id>`` on the live objects (where the cluster keeps labels)
and is recorded as applied by that source in the workspace index. It prunes
an experiment only when it owns it, the experiment left the source, and the
source did not suddenly go empty (unless ``allow_empty``).

An experiment another source (or a hand ``apply``) owns is neither applied nor
pruned: it is reported as a conflict (:mod:`ownership`) and blocks only itself.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from symphony import known_clusters, workspace
from symphony.errors import UserError
from symphony.gitops import ownership, store
from symphony.gitops.desired import CLUSTER, Desired, Good, isolate
from symphony.gitops.ownership import Claims, RunBy
from symphony.model import ClusterSpec, Deployment, Experiment, ManifestSet
from symphony.plan import Plan
from symphony.reconciler import Reconciler, workloads
from symphony.sources.base import SOURCE_LABEL, Snapshot, Source

EMPTY_GUARD = (
    "the source yielded no manifests: pruning nothing (set allow_empty to prune everything)"
)


@dataclass
class ExperimentState:
    name: str
    cluster: str | None = None
    revision: str | None = None  # the revision live
    sync: str = "Unknown"  # Synced | OutOfSync | Unknown
    errors: tuple[str, ...] = ()
    owner: str | None = None  # the source that owns it; another one's id: a conflict
    last: dict[str, Any] | None = None  # the last reconcile: time, duration, result, revision
    history: list[dict[str, Any]] = field(default_factory=list)  # reconciles that did something

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "revision": self.revision,
            "sync": self.sync,
            "error": self.errors[0] if self.errors else None,
            "errors": list(self.errors),
            "owner": self.owner,
            "last_reconcile": self.last,
            "history": self.history,
        }


@dataclass(frozen=True)
class PassResult:
    ok: bool  # False: retry with backoff (the source or a cluster failed)
    revision: str | None
    changed: tuple[str, ...] = ()  # experiments touched (created, updated, healed)
    pruned: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()  # declared here too, owned elsewhere: not applied
    messages: tuple[str, ...] = ()


def short(revision: str | None) -> str | None:
    return revision[:12] if revision else None


class SourceRunner:
    def __init__(
        self,
        source: Source,
        *,
        reconciler: Reconciler,
        allow_empty: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda _line: None,
        persist: bool = True,
        cluster_override: str | None = None,
        adopt: bool = False,
        claims: Claims | None = None,
        run_by: RunBy | None = None,
    ) -> None:
        self.source = source
        self.reconciler = reconciler
        self.allow_empty = allow_empty
        self.clock = clock
        self.wall = wall
        self.log = log
        self.persist = persist
        self.cluster_override = cluster_override
        self.adopt = adopt
        self.claims = claims
        self.run_by = run_by
        self.conflicts: dict[str, ownership.Verdict] = {}
        self._scanned: set[str] = set()  # clusters whose experiments the last pass listed
        self.last_good: dict[str, Good] = {}
        self.last_clusters: dict[str, ClusterSpec] = {}
        self.experiments: dict[str, ExperimentState] = {}
        self.applied_hashes: dict[str, dict[str, str]] = {}
        self.revision: str | None = None
        self.source_errors: tuple[str, ...] = ()
        self.events: list[dict[str, Any]] = []
        self.last_pass: dict[str, Any] | None = None
        self.running = True
        self._lock = threading.RLock()  # /status reads from another thread
        if persist:
            self._resume(store.read(self.id))

    def _resume(self, saved: dict[str, Any] | None) -> None:
        """Carry history over a restart (what is live is read back from clusters, not from here)."""
        if not saved:
            return
        self.events = list(saved.get("events") or [])[: store.EVENTS]
        records = workspace.applied()
        for name, raw in (saved.get("experiments") or {}).items():
            record = records.get(name)
            if record is not None and record.source != self.id:
                continue  # applied by someone else since
            self.experiments[name] = ExperimentState(
                name,
                cluster=raw.get("cluster") or (record.cluster if record else None),
                revision=raw.get("revision") or (record.revision if record else None),
                sync=raw.get("sync") or "Unknown",
                errors=tuple(raw.get("errors") or ()),
                owner=raw.get("owner"),
                last=raw.get("last_reconcile"),
                history=list(raw.get("history") or [])[: store.HISTORY],
            )

    @property
    def id(self) -> str:
        return self.source.id

    # ---------------------------------------------------------------- the pass

    def reconcile(self, reason: str, *, polled: bool = False) -> PassResult:
        started, when = self.clock(), self.wall()
        try:
            if not polled:
                self.source.poll()
            snapshot = self.source.snapshot()
        except UserError as exc:
            return self.fail(exc.lines(), reason, started, when)
        desired = isolate(
            snapshot,
            last_good=self.last_good,
            last_clusters=self.last_clusters,
            known_clusters=list(known_clusters.all_clusters()),
            cluster_override=self.cluster_override,
        )
        guard = snapshot.empty and not self.allow_empty
        if guard:  # prune nothing; keep (and heal) what was last good
            desired = dataclasses.replace(desired, workloads=dict(self.last_good))
        self.revision = snapshot.revision
        self.source_errors = (
            *desired.source_errors,
            *(
                f"cluster {n}: {line}"
                for n, lines in desired.cluster_errors.items()
                for line in lines
            ),
            *((EMPTY_GUARD,) if guard else ()),
        )

        self._remember_clusters(desired.clusters.values())
        with ownership.lock():  # another process must not take a name between check and record
            live = self._live(desired)
            self.conflicts = self._conflicts(snapshot, desired, live)
            active = dataclasses.replace(
                desired,
                workloads={n: g for n, g in desired.workloads.items() if n not in self.conflicts},
            )
            touched, failed = self._apply(active)
            pruned: list[str] = []
            handed: dict[str, str] = {}
            if not guard:
                pruned, handed, prune_failed = self._prune(desired, live)
                failed.update(prune_failed)
            self._record(active, touched, failed)
        if self.claims is not None:
            declared = frozenset(desired.workloads) | frozenset(desired.errors)
            self.claims.update(self.id, declared, sorted(self.conflicts))
            self.claims.released([*pruned, *handed])
        for name, heir in sorted(handed.items()):
            self._event(when, name, "released", f"left this source; {heir} declares it too")
        duration = self.clock() - started
        with self._lock:
            result = self._update_states(
                snapshot, desired, touched, failed, pruned, reason, when, duration
            )
        self.last_good = dict(desired.workloads)  # valid, even where a cluster failed to take it
        self.last_clusters = dict(desired.clusters)
        self.last_pass = {
            "time": when,
            "duration": round(duration, 4),
            "reason": reason,
            "revision": snapshot.revision,
            "ok": result.ok,
        }
        self.save()
        return result

    def fail(self, lines: list[str], reason: str, started: float, when: float) -> PassResult:
        """Record a pass that could not even read the source."""
        self.source_errors = tuple(lines)
        duration = self.clock() - started
        self.last_pass = {
            "time": when,
            "duration": round(duration, 4),
            "reason": reason,
            "revision": self.revision,
            "ok": False,
        }
        self._event(when, None, "failed", "; ".join(lines))
        self.save()
        return PassResult(ok=False, revision=self.revision, messages=tuple(lines))

    # ---------------------------------------------------------------- doing

    def _labelled(self, good: Good) -> tuple[list[Experiment], list[Deployment]]:
        exps = [
            dataclasses.replace(e, labels={**e.labels, SOURCE_LABEL: self.id})
            for e in good.manifests.experiments
        ]
        deps = [
            dataclasses.replace(d, labels={**d.labels, SOURCE_LABEL: self.id})
            for d in good.manifests.deployments
        ]
        return exps, deps

    def _apply(self, desired: Desired) -> tuple[dict[str, Plan], dict[str, tuple[str, ...]]]:
        """Plan and apply cluster by cluster: one unreachable cluster fails only its experiments."""
        by_cluster: dict[str, tuple[list[Experiment], list[Deployment]]] = {}
        for good in desired.workloads.values():
            exps, deps = self._labelled(good)
            for e in exps:
                by_cluster.setdefault(e.cluster, ([], []))[0].append(e)
            for d in deps:
                by_cluster.setdefault(d.cluster, ([], []))[1].append(d)
        touched: dict[str, Plan] = {}
        failed: dict[str, tuple[str, ...]] = {}
        clusters = tuple(desired.clusters.values())
        for name in sorted(by_cluster):
            exps, deps = by_cluster[name]
            manifests = ManifestSet(tuple(exps), tuple(deps), clusters)
            names = [e.name for e in exps] + [d.name for d in deps]
            try:
                plans = self.reconciler.plan(manifests)
                self.reconciler.apply(plans)
            except UserError as exc:
                for n in names:
                    failed[n] = tuple(exc.lines())
                continue
            except Exception as exc:  # a cluster library's error must not stop the loop
                for n in names:
                    failed[n] = (f"cluster {name}: {type(exc).__name__}: {exc}",)
                continue
            for item in plans:
                for e in item.desired:
                    touched[e.name] = _only(item.plan, e.name)
        return touched, failed

    def _live(self, desired: Desired) -> dict[str, tuple[str, dict[str, str]]]:
        """Experiments live on the clusters this pass concerns: name → (cluster, labels).

        Only clusters that list experiments with labels (tmux) say anything here; on
        the others the workspace record alone tells who owns what.
        """
        records = workspace.applied()
        clusters = {e.cluster for g in desired.workloads.values() for e in workloads(g.manifests)}
        clusters |= {r.cluster for r in records.values() if r.source == self.id}
        known = known_clusters.all_clusters(
            [*self.last_clusters.values(), *desired.clusters.values()]
        )
        found: dict[str, tuple[str, dict[str, str]]] = {}
        self._scanned = set()
        for cluster_name in sorted(clusters):
            spec = known.get(cluster_name)
            if spec is None:
                continue
            try:
                cluster = self.reconciler.cluster(spec)
                if not hasattr(cluster, "experiments"):
                    continue
                summaries = cluster.experiments()
            except (UserError, OSError):
                continue
            self._scanned.add(cluster_name)
            for summary in summaries:
                found.setdefault(summary.name, (cluster_name, dict(summary.labels)))
        return found

    def owner_of(
        self,
        name: str,
        records: dict[str, workspace.AppliedRecord],
        live: dict[str, tuple[str, dict[str, str]]],
    ) -> str | None:
        """The record's source; without one, the live label; live with neither: by hand."""
        record = records.get(name)
        if record is not None:
            if record.source == ownership.HAND and record.cluster in self._scanned:
                return ownership.HAND if name in live else None  # gone since: a stale record
            return record.source
        if name in live:
            return live[name][1].get(SOURCE_LABEL) or ownership.HAND
        return None

    def owned(self, live: dict[str, tuple[str, dict[str, str]]]) -> dict[str, str]:
        """Experiments this source owns: name → cluster.

        The workspace record says who applied an experiment last; where it has
        none (another machine, a lost state folder) the live label decides.
        """
        records = workspace.applied()
        found = {n: r.cluster for n, r in records.items() if r.source == self.id}
        for name, (cluster_name, labels) in live.items():
            if name not in records and labels.get(SOURCE_LABEL) == self.id:
                found[name] = cluster_name
        return found

    def _conflicts(
        self, snapshot: Snapshot, desired: Desired, live: dict[str, tuple[str, dict[str, str]]]
    ) -> dict[str, ownership.Verdict]:
        """Declared here, owned by another source or by hand: not ours to apply (nor prune)."""
        records = workspace.applied()
        found: dict[str, ownership.Verdict] = {}
        for name in sorted(set(desired.workloads) | set(desired.errors)):
            verdict = ownership.decide(
                name,
                me=self.id,
                owner=self.owner_of(name, records, live),
                where=_where(snapshot, desired, name),
                adopt=self.adopt,
                claims=self.claims,
            )
            if not verdict.ours:
                found[name] = verdict
        return found

    def _prune(
        self, desired: Desired, live: dict[str, tuple[str, dict[str, str]]]
    ) -> tuple[list[str], dict[str, str], dict[str, tuple[str, ...]]]:
        """Delete what this source owns and no longer declares; what another source of
        this process declares is handed to it instead (its record goes, it stays live)."""
        keep = set(desired.workloads) | set(desired.errors)
        owned = self.owned(live)
        records = workspace.applied()
        pruned: list[str] = []
        handed: dict[str, str] = {}
        failed: dict[str, tuple[str, ...]] = {}
        known = known_clusters.all_clusters(desired.clusters.values())
        for name in sorted(set(owned) - keep):
            heir = self.claims.heir(self.id, name) if self.claims is not None else None
            if heir is not None:  # once: then only the label says it was ours
                if name in records:
                    handed[name] = heir
                continue
            spec = known.get(owned[name])
            try:
                if spec is None:
                    raise UserError(f"cluster {owned[name]!r} is not known any more")
                self.reconciler.cluster(spec).delete_experiment(name)
            except UserError as exc:
                failed[name] = tuple(exc.lines())
                continue
            pruned.append(name)
        if pruned or handed:
            workspace.record_applied([], removed=[*pruned, *handed])
        return pruned, handed, failed

    def _remember_clusters(self, specs: Iterable[ClusterSpec]) -> None:
        remembered = known_clusters.all_clusters()
        for spec in specs:
            if remembered.get(spec.name) != spec:
                known_clusters.remember(spec)

    def _record(
        self, desired: Desired, touched: dict[str, Plan], failed: dict[str, tuple[str, ...]]
    ) -> None:
        """Tell the workspace index (``symphony ls``) what is live and from which revision."""
        records = workspace.applied()
        by_revision: dict[str | None, list[Experiment]] = {}
        for name, good in desired.workloads.items():
            if name in failed:
                continue
            for e in workloads(good.manifests):
                rev = short(good.revision)
                hashes = {p.key: p.spec_hash() for p in e.processes}
                record = records.get(e.name)
                if (
                    record is None
                    or record.source != self.id
                    or record.revision != rev
                    or record.processes != hashes
                    or record.cluster != e.cluster
                ):
                    by_revision.setdefault(rev, []).append(e)
        for rev, exps in by_revision.items():
            workspace.record_applied(exps, source=self.id, revision=rev)

    # ---------------------------------------------------------------- status

    def _update_states(
        self,
        snapshot: Snapshot,
        desired: Desired,
        touched: dict[str, Plan],
        failed: dict[str, tuple[str, ...]],
        pruned: list[str],
        reason: str,
        when: float,
        duration: float,
    ) -> PassResult:
        changed: list[str] = []
        names = set(desired.workloads) | set(desired.errors) | set(failed)
        for name in sorted(names):
            state = self.experiments.setdefault(name, ExperimentState(name))
            good = desired.workloads.get(name)
            conflict = self.conflicts.get(name)
            if conflict is not None:
                self._conflict_state(state, conflict, desired, good, snapshot, reason, when)
                continue
            state.owner = self.id
            errors = desired.errors.get(name, ()) + failed.get(name, ())
            plan = touched.get(name, Plan())
            if good is not None:
                exps = workloads(good.manifests)
                state.cluster = exps[0].cluster if exps else state.cluster
                hashes = {p.key: p.spec_hash() for e in exps for p in e.processes}
            else:
                hashes = {}
            if name in failed:
                result, detail = "failed", failed[name][0]
            elif not plan.empty:
                result = "healed" if self.applied_hashes.get(name) == hashes else "applied"
                detail = _counts(plan)
                changed.append(name)
            elif name in desired.errors:
                result, detail = "blocked", errors[0]
            else:
                result, detail = "unchanged", ""
            if good is not None and name not in failed:
                state.revision = short(good.revision)
                self.applied_hashes[name] = hashes
            state.errors = errors
            state.sync = "OutOfSync" if errors else "Synced"
            # a block is news about the source's revision; anything else about the one applied
            rev = short(snapshot.revision if good is None or result == "blocked" else good.revision)
            entry = {
                "time": when,
                "duration": round(duration, 4),
                "result": result,
                "revision": rev,
                "reason": reason,
                "detail": detail,
            }
            repeat = state.last is not None and (state.last["result"], state.last["detail"]) == (
                result,
                detail,
            )
            if result != "unchanged" and not (repeat and result in ("blocked", "failed")):
                state.history = [entry, *state.history][: store.HISTORY]
                self._event(when, name, result, detail, revision=rev)
            state.last = entry
        for name in pruned:
            self.experiments.pop(name, None)
            self.applied_hashes.pop(name, None)
            self._event(when, name, "pruned", "")
        for name in [n for n in self.experiments if n not in names]:
            self.experiments.pop(name)  # left the source but was not ours to prune
        ok = not failed
        return PassResult(
            ok=ok,
            revision=snapshot.revision,
            changed=tuple(changed),
            pruned=tuple(pruned),
            blocked=tuple(sorted(set(desired.errors) - set(self.conflicts))),
            failed=tuple(sorted(failed)),
            conflicts=tuple(sorted(self.conflicts)),
            messages=self.source_errors,
        )

    def _conflict_state(
        self,
        state: ExperimentState,
        verdict: ownership.Verdict,
        desired: Desired,
        good: Good | None,
        snapshot: Snapshot,
        reason: str,
        when: float,
    ) -> None:
        """Owned elsewhere: say so once (the log, the history), apply nothing, keep no revision."""
        assert verdict.message is not None
        if good is not None:
            exps = workloads(good.manifests)
            state.cluster = exps[0].cluster if exps else state.cluster
        state.errors = (verdict.message, *desired.errors.get(state.name, ()))
        state.sync = "OutOfSync"
        state.revision = None
        state.owner = verdict.owner
        self.applied_hashes.pop(state.name, None)
        rev = short(snapshot.revision)
        entry = {
            "time": when,
            "duration": 0.0,
            "result": "conflict",
            "revision": rev,
            "reason": reason,
            "detail": verdict.message,
        }
        last = state.last
        if last is None or (last["result"], last["detail"]) != ("conflict", verdict.message):
            state.history = [entry, *state.history][: store.HISTORY]
            self._event(when, state.name, "conflict", verdict.message, revision=rev)
        state.last = entry

    def _event(
        self,
        when: float,
        experiment: str | None,
        result: str,
        detail: str,
        *,
        revision: str | None = None,
    ) -> None:
        self.events = [
            {
                "time": when,
                "experiment": experiment,
                "result": result,
                "detail": detail,
                "revision": revision,
            },
            *self.events,
        ][: store.EVENTS]
        who = f"{experiment}: " if experiment else ""
        at = f" at {revision}" if revision else ""
        self.log(f"{self.id}: {who}{result}{at}{' (' + detail + ')' if detail else ''}")

    def status(self) -> dict[str, Any]:
        import copy
        import os

        with self._lock:
            return copy.deepcopy(self._status(os.getpid()))

    def _status(self, pid: int) -> dict[str, Any]:
        return {
            "source": {
                **self.source.describe(),
                "revision": self.revision,
                "errors": list(self.source_errors),
                "allow_empty": self.allow_empty,
                "adopt": self.adopt,
                "run_by": self.run_by.to_dict() if self.run_by else None,
                "last_pass": self.last_pass,
            },
            "experiments": {n: s.to_dict() for n, s in sorted(self.experiments.items())},
            "events": self.events,
            "pid": pid,
            "running": self.running,
            "updated_at": self.wall(),
        }

    def save(self) -> None:
        if self.persist:
            store.write(self.id, self.status())


def _where(snapshot: Snapshot, desired: Desired, name: str) -> str:
    """``FILE:LINE`` of the name ``name`` is declared with here (for a conflict's message)."""
    good = desired.workloads.get(name)
    if good is not None:
        for e in workloads(good.manifests):
            if e.name == name:
                return str(e.source)
    for doc in snapshot.documents:
        data = doc.data if isinstance(doc.data, dict) else {}
        meta = data.get("metadata")
        if data.get("kind") != CLUSTER and isinstance(meta, dict) and meta.get("name") == name:
            return f"{doc.file}:{doc.line_of(('metadata', 'name'))}"
    for item in snapshot.broken:
        if item.name == name and item.kind != CLUSTER:
            return item.file
    return "this source"


def _only(plan: Plan, name: str) -> Plan:
    return Plan(
        create=tuple(p for p in plan.create if p.experiment == name),
        update=tuple(p for p in plan.update if p.experiment == name),
        delete=tuple(o for o in plan.delete if o.experiment == name),
        unchanged=tuple(p for p in plan.unchanged if p.experiment == name),
    )


def _counts(plan: Plan) -> str:
    parts = [
        (len(plan.create), "created"),
        (len(plan.update), "updated"),
        (len(plan.delete), "deleted"),
    ]
    return ", ".join(f"{n} {w}" for n, w in parts if n)
