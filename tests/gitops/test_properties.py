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


class Edits(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = tempfile.mkdtemp(prefix="symphony-gitops-")
        self.saved_home = os.environ.get("SYMPHONY_HOME")
        os.environ["SYMPHONY_HOME"] = self.home
        self.source = MemorySource()
        self.reconciler, self.made = recording()
        self.runner = SourceRunner(
            self.source, reconciler=self.reconciler, clock=FakeClock(), wall=FakeClock()
        )
        self.previous: dict[str, str] = {}  # name -> the file's text before its last edit
        self.last_valid: dict[str, str] = {}  # the model: name -> last valid text while present
        self.expected: dict[Key, str] = {}

    def teardown(self) -> None:
        if self.saved_home is None:
            os.environ.pop("SYMPHONY_HOME", None)
        else:
            os.environ["SYMPHONY_HOME"] = self.saved_home
        shutil.rmtree(self.home, ignore_errors=True)

    def live(self) -> dict[Key, str]:
        cluster = self.made.get("local")
        return {} if cluster is None else {k: o.spec_hash for k, o in cluster.live.items()}

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
