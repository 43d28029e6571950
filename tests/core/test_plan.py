"""plan.diff: tables for the buckets, hypothesis for convergence."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.clusters.memory import MemoryCluster
from symphony.model import Experiment, ObservedProcess, ProcessSpec, ProcessState
from symphony.plan import diff


def proc(exp: str, name: str, cmd: str = "run", group: str | None = None) -> ProcessSpec:
    return ProcessSpec(experiment=exp, name=name, command=("/bin/sh", "-c", cmd), group=group)


def live(p: ProcessSpec, *, hash_: str | None = None) -> ObservedProcess:
    return ObservedProcess(p.experiment, p.key, hash_ or p.spec_hash(), ProcessState.RUNNING)


def test_buckets() -> None:
    keep, change, new = proc("e", "keep"), proc("e", "change"), proc("e", "new")
    gone = proc("e", "gone")
    other = proc("other", "x")
    observed = [live(keep), live(change, hash_="old"), live(gone), live(other)]
    plan = diff(
        [Experiment("e", (keep, dataclasses.replace(change, command=("x",)), new))], observed
    )
    assert [p.key for p in plan.create] == ["new"]
    assert [p.key for p in plan.update] == ["change"]
    assert [o.key for o in plan.delete] == ["gone"]  # "other" is not ours to delete without prune
    assert [p.key for p in plan.unchanged] == ["keep"]
    pruned = diff([Experiment("e", (keep,))], observed, prune=True)
    assert {(o.experiment, o.key) for o in pruned.delete} == {
        ("e", "change"),
        ("e", "gone"),
        ("other", "x"),
    }


def test_grouped_and_ungrouped_same_name_are_distinct() -> None:
    a, b = proc("e", "p"), proc("e", "p", group="g")
    plan = diff([Experiment("e", (a, b))], [live(a)])
    assert [p.key for p in plan.create] == ["g/p"]
    assert [p.key for p in plan.unchanged] == ["p"]


def test_empty_experiment_deletes_its_processes() -> None:
    a = proc("e", "p")
    plan = diff([Experiment("e", ())], [live(a)])
    assert [o.key for o in plan.delete] == ["p"]


names = st.sampled_from(["a", "b", "c", "d"])
commands = st.sampled_from(["one", "two"])
experiment_names = st.sampled_from(["x", "y", "z"])


@st.composite
def experiments(draw: st.DrawFn) -> list[Experiment]:
    out = []
    for exp in sorted(draw(st.sets(experiment_names))):
        procs = {n: proc(exp, n, draw(commands)) for n in draw(st.sets(names))}
        out.append(Experiment(exp, tuple(procs.values())))
    return out


def converge(cluster: MemoryCluster, desired: list[Experiment], *, prune: bool) -> None:
    cluster.apply(diff(desired, cluster.observe(), prune=prune), desired)


@settings(max_examples=200, deadline=None)
@given(before=experiments(), after=experiments(), prune=st.booleans())
def test_applying_the_plan_converges(
    before: list[Experiment], after: list[Experiment], prune: bool
) -> None:
    cluster = MemoryCluster()
    converge(cluster, before, prune=True)
    converge(cluster, after, prune=prune)
    wanted = {(p.experiment, p.key): p.spec_hash() for e in after for p in e.processes}
    got = {(o.experiment, o.key): o.spec_hash for o in cluster.observe()}
    if prune:
        assert got == wanted
    else:
        assert {k: v for k, v in got.items() if k[0] in {e.name for e in after}} == wanted
    # A converged state plans nothing.
    again = diff(after, cluster.observe(), prune=prune)
    assert again.empty
    assert len(again.unchanged) == len(wanted)


@settings(max_examples=100, deadline=None)
@given(desired=experiments(), observed_from=experiments(), data=st.data())
def test_order_of_documents_does_not_matter(
    desired: list[Experiment], observed_from: list[Experiment], data: st.DataObject
) -> None:
    cluster = MemoryCluster()
    converge(cluster, observed_from, prune=True)
    observed = cluster.observe()
    shuffled = data.draw(st.permutations(desired))
    shuffled = [
        dataclasses.replace(e, processes=tuple(data.draw(st.permutations(e.processes))))
        for e in shuffled
    ]
    assert diff(desired, observed) == diff(shuffled, data.draw(st.permutations(observed)))


@settings(max_examples=100, deadline=None)
@given(desired=experiments())
def test_only_changed_processes_are_touched(desired: list[Experiment]) -> None:
    cluster = MemoryCluster()
    converge(cluster, desired, prune=True)
    if not desired or not desired[0].processes:
        return
    first = desired[0]
    changed = dataclasses.replace(first.processes[0], command=("/bin/sh", "-c", "changed"))
    edited = [dataclasses.replace(first, processes=(changed, *first.processes[1:])), *desired[1:]]
    plan = diff(edited, cluster.observe())
    assert [p.key for p in plan.update] == [changed.key]
    assert not plan.create and not plan.delete
