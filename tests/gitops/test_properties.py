"""A hypothesis state machine: random edits to a source always end converged to the last
valid desired state of every experiment, and nothing is restarted that did not change."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from symphony.gitops.runner import SourceRunner
from symphony.manifests import load_text

from .helpers import FakeClock, MemorySource, experiment, recording

NAMES = st.sampled_from(["e1", "e2", "e3"])
PROCESSES = st.dictionaries(
    st.sampled_from(["p", "q", "r"]), st.sampled_from(["sleep 1", "sleep 2", "true"]), min_size=1
)
BREAKS = {
    "schema": lambda text: text.replace("command:", "bogus: 1, command:", 1),
    "yaml": lambda text: text.replace("processes:", "processes: [", 1),
    "rule": lambda text: text.replace("command:", "connects: [nobody], command:", 1),
    "no-name": lambda text: text.replace("metadata: {name:", "metadata: {nom:", 1),
}

Key = tuple[str, str]


def hashes(name: str, text: str) -> dict[Key, str]:
    e = load_text(text, file=f"{name}.yaml", base_dir="/tmp").experiments[0]
    return {(name, p.key): p.spec_hash() for p in e.processes}


class _InAHomeOfItsOwn(RuleBasedStateMachine):
    """A temporary SYMPHONY_HOME for one run, and the recording cluster's live hashes."""

    def __init__(self) -> None:
        super().__init__()
        self.home = tempfile.mkdtemp(prefix="symphony-gitops-")
        self.saved_home = os.environ.get("SYMPHONY_HOME")
        os.environ["SYMPHONY_HOME"] = self.home
        self.reconciler, self.made = recording()

    def teardown(self) -> None:
        if self.saved_home is None:
            os.environ.pop("SYMPHONY_HOME", None)
        else:
            os.environ["SYMPHONY_HOME"] = self.saved_home
        shutil.rmtree(self.home, ignore_errors=True)

    def live(self) -> dict[Key, str]:
        cluster = self.made.get("local")
        return {} if cluster is None else {k: o.spec_hash for k, o in cluster.live.items()}


class Edits(_InAHomeOfItsOwn):
    def __init__(self) -> None:
        super().__init__()
        self.source = MemorySource()
        self.runner = SourceRunner(
            self.source, reconciler=self.reconciler, clock=FakeClock(), wall=FakeClock()
        )
        self.previous: dict[str, str] = {}  # name -> the file's text before its last edit
        self.last_valid: dict[str, str] = {}  # the model: name -> last valid text while present
        self.expected: dict[Key, str] = {}

    def edit(self, name: str, text: str | None) -> None:
        """Change one file, run a pass, and check what the pass touched."""
        old_text = self.source.files.get(name + ".yaml")
        if old_text is not None:
            self.previous[name] = old_text
        if text is None:
            self.source.files.pop(name + ".yaml", None)
        else:
            self.source.files[name + ".yaml"] = text
        before = dict(self.expected)
        self._model()
        applied_before = len(self.made["local"].applied) if "local" in self.made else 0
        self.runner.reconcile("change")
        changed = {
            k for k in set(before) | set(self.expected) if before.get(k) != self.expected.get(k)
        }
        plans = self.made["local"].applied[applied_before:] if "local" in self.made else []
        touched = {(p.experiment, p.key) for plan in plans for p in plan.create + plan.update}
        touched |= {(o.experiment, o.key) for plan in plans for o in plan.delete}
        pruned = {k for k in before if k not in self.live()}
        assert touched | pruned <= changed, (
            f"restarted without a change: {(touched | pruned) - changed}"
        )

    def _model(self) -> None:
        files = {n.removesuffix(".yaml"): t for n, t in self.source.files.items()}
        if not files:
            return  # a source gone empty prunes nothing (allow_empty is false)
        valid: dict[str, str] = {}
        for name, text in files.items():
            try:
                hashes(name, text)
                valid[name] = text
            except Exception:
                if name in self.last_valid:
                    valid[name] = self.last_valid[name]  # blocked: its last good version stays
        self.last_valid = valid
        self.expected = {k: h for n, t in valid.items() for k, h in hashes(n, t).items()}

    @rule(name=NAMES, processes=PROCESSES)
    def write(self, name: str, processes: dict[str, str]) -> None:
        self.edit(name, experiment(name, processes))

    @rule(name=NAMES)
    def remove(self, name: str) -> None:
        self.edit(name, None)

    @rule(name=NAMES, processes=PROCESSES, how=st.sampled_from(sorted(BREAKS)))
    def write_invalid(self, name: str, processes: dict[str, str], how: str) -> None:
        self.edit(name, BREAKS[how](experiment(name, processes)))

    @rule(name=NAMES)
    def revert(self, name: str) -> None:
        if name in self.previous:
            self.edit(name, self.previous[name])

    @invariant()
    def converged(self) -> None:
        assert self.live() == self.expected


TestEdits = Edits.TestCase
TestEdits.settings = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class TwoSources(_InAHomeOfItsOwn):
    """Two sources of one serve declare overlapping experiments at random. Each experiment
    runs exactly its owner's version; the owner keeps it while it declares it, then the
    first other source in config order that declares it takes it; and no process restarts
    unless the version its owner declares changed (no flapping)."""

    ORDER = ("s1", "s2")

    def __init__(self) -> None:
        super().__init__()
        from symphony.gitops.loop import Loop
        from symphony.gitops.ownership import Claims

        self.sources = {s: MemorySource(id=s) for s in self.ORDER}
        claims = Claims(self.ORDER)
        clock = FakeClock()
        runners = [
            SourceRunner(src, reconciler=self.reconciler, clock=clock, wall=clock, claims=claims)
            for src in self.sources.values()
        ]
        self.loop = Loop(runners, resync=30, clock=clock)
        self.owner: dict[str, str] = {}  # the model
        self.versions: dict[Key, str] = {}  # what the model said after the last settle

    def expected(self) -> dict[Key, str]:
        return {
            k: h
            for name, owner in self.owner.items()
            for k, h in hashes(name, self.sources[owner].files[name + ".yaml"]).items()
        }

    def settle(self) -> None:
        before = self.versions
        applied = len(self.made["local"].applied) if "local" in self.made else 0
        declared = {
            s: {n.removesuffix(".yaml") for n in src.files} for s, src in self.sources.items()
        }
        for name in {n for names in declared.values() for n in names} | set(self.owner):
            if self.owner.get(name) not in {s for s in self.ORDER if name in declared[s]}:
                takers = [s for s in self.ORDER if name in declared[s]]
                if takers:
                    self.owner[name] = takers[0]
                else:
                    self.owner.pop(name, None)
        self.loop.trigger(reason="change")
        for _ in range(4):  # an owner that prunes wakes the other at once
            self.loop.step()
            if self.loop.next_delay() > 0:
                break
        after = self.versions = self.expected()
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        plans = self.made["local"].applied[applied:] if "local" in self.made else []
        touched = {(p.experiment, p.key) for plan in plans for p in plan.create + plan.update}
        touched |= {(o.experiment, o.key) for plan in plans for o in plan.delete}
        assert touched <= changed, f"restarted without a change: {touched - changed}"

    @rule(source=st.sampled_from(ORDER), name=NAMES, processes=PROCESSES)
    def declare(self, source: str, name: str, processes: dict[str, str]) -> None:
        self.sources[source].files[name + ".yaml"] = experiment(name, processes)
        self.settle()

    @rule(source=st.sampled_from(ORDER), name=NAMES)
    def drop(self, source: str, name: str) -> None:
        if len(self.sources[source].files) > 1:  # a source gone empty prunes nothing
            self.sources[source].files.pop(name + ".yaml", None)
            self.settle()

    @invariant()
    def each_runs_its_owners_version(self) -> None:
        assert self.live() == self.expected()


TestTwoSources = TwoSources.TestCase
TestTwoSources.settings = settings(
    max_examples=30,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
