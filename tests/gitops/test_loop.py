"""The loop on a clock that only moves when told, against recording clusters (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony import workspace
from symphony.gitops import store
from symphony.gitops.loop import Loop
from symphony.gitops.runner import EMPTY_GUARD, SourceRunner
from symphony.model import ClusterSpec, ObservedProcess
from symphony.sources.base import SOURCE_LABEL

from .helpers import (
    FakeClock,
    LabelledCluster,
    MemorySource,
    experiment,
    recording,
)

A = experiment("a", {"p": "sleep 1"})
B = experiment("b", {"q": "sleep 2"})


@pytest.fixture
def setup(symphony_home: Path) -> tuple[MemorySource, Loop, dict[str, LabelledCluster], FakeClock]:
    clock = FakeClock()
    source = MemorySource({"a.yaml": A, "b.yaml": B})
    reconciler, made = recording()
    runner = SourceRunner(source, reconciler=reconciler, clock=clock, wall=clock)
    loop = Loop([runner], resync=30, clock=clock, backoff_base=1, backoff_max=8)
    return source, loop, made, clock


def live(made: dict[str, LabelledCluster]) -> set[tuple[str, str]]:
    return set(made["local"].live)


def test_first_step_applies_and_labels_then_only_changes_run(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    assert loop.step() == pytest.approx(1.0)  # the next poll
    assert live(made) == {("a", "p"), ("b", "q")}
    assert made["local"].labels["a"][SOURCE_LABEL] == source.id
    assert workspace.applied()["a"].source == source.id
    applies = len(made["local"].applied)
    clock.advance(1)
    loop.step()  # polled, nothing changed: no pass at all
    assert len(made["local"].applied) == applies and source.polls == 2  # start + one poll
    source.files["b.yaml"] = experiment("b", {"q": "sleep 2", "r": "sleep 3"})
    clock.advance(1)
    loop.step()
    assert made["local"].applied[-1].create[0].key == "r"
    assert not made["local"].applied[-1].update  # q did not change: not restarted


def test_resync_heals_drift_and_says_so(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    loop.step()
    del made["local"].live[("a", "p")]  # a process killed by hand
    clock.advance(29)
    loop.step()
    assert ("a", "p") not in made["local"].live  # polls do not look at the cluster
    clock.advance(1)
    loop.step()  # resync
    assert ("a", "p") in made["local"].live
    status = store.read(source.id)
    assert status is not None
    history = status["experiments"]["a"]["history"]
    assert [h["result"] for h in history] == ["healed", "applied"]
    assert history[0]["reason"] == "resync" and history[0]["detail"] == "1 created"
    assert status["experiments"]["a"]["sync"] == "Synced"


def test_failures_back_off_exponentially_then_recover(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    source.fail = "git fetch origin: could not read from remote repository"
    delays = [loop.step()]
    for _ in range(5):
        clock.advance(delays[-1])
        delays.append(loop.step())
    assert delays == [1, 2, 4, 8, 8, 8]
    assert not made  # nothing was applied, no cluster even connected
    status = store.read(source.id)
    assert status is not None and "could not read" in status["source"]["errors"][0]
    source.fail = None
    clock.advance(delays[-1])
    assert loop.step() == pytest.approx(1.0)  # back to polling
    assert live(made) == {("a", "p"), ("b", "q")}


def test_a_hook_runs_a_pass_at_once(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, _clock = setup
    source.interval = 600
    loop.step()
    source.files["a.yaml"] = experiment("a", {"p": "sleep 5"})
    assert loop.step() == pytest.approx(30)  # the resync; the change waits
    assert loop.trigger(kind="git") == [source.id]
    assert loop.trigger(kind="watch") == []
    assert loop.next_delay() == 0
    loop.step()
    assert made["local"].applied[-1].update[0].key == "p"


def test_a_watcher_notification_runs_a_pass_without_waiting_for_a_poll(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, _clock = setup
    source.interval = 600
    loop.start()
    loop.step()
    source.files["a.yaml"] = experiment("a", {"p": "sleep 5"})
    assert source.notify is not None
    source.notify()  # from the watcher's thread
    assert loop.wakeup.is_set() and loop.next_delay() == 0
    loop.step()
    assert made["local"].applied[-1].update[0].key == "p"
    status = store.read(source.id)
    assert status is not None and status["experiments"]["a"]["history"][0]["reason"] == "change"


def test_prunes_what_it_owns_and_nothing_else(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    loop.step()
    # applied by hand (symphony apply): recorded as the CLI's
    other = experiment("c", {"x": "sleep 1"})
    from symphony.manifests import load_text

    manifests = load_text(other)
    reconciler = loop.runners[0].reconciler
    reconciler.apply(reconciler.plan(manifests))
    workspace.record_applied(manifests.experiments, source="cli")
    del source.files["b.yaml"]
    clock.advance(1)
    loop.step()
    assert live(made) == {("a", "p"), ("c", "x")}
    assert "b" not in workspace.applied() and "c" in workspace.applied()
    events = store.read(source.id)["events"]  # type: ignore[index]
    assert events[0]["experiment"] == "b" and events[0]["result"] == "pruned"


def test_without_a_record_the_live_label_says_who_owns(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    loop.step()
    (Path(workspace.state_home()) / "experiments.json").unlink()  # a lost state folder
    del source.files["a.yaml"]
    clock.advance(1)
    loop.step()
    assert live(made) == {("b", "q")}


def test_a_source_gone_empty_prunes_nothing_unless_allowed(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    loop.step()
    source.files.clear()
    clock.advance(1)
    loop.step()
    assert live(made) == {("a", "p"), ("b", "q")}
    assert EMPTY_GUARD in store.read(source.id)["source"]["errors"]  # type: ignore[index]
    del made["local"].live[("a", "p")]
    clock.advance(30)
    loop.step()  # the last good versions are still healed
    assert ("a", "p") in made["local"].live
    loop.runners[0].allow_empty = True
    loop.trigger()
    loop.step()
    assert live(made) == set()


def test_a_bad_document_blocks_only_its_experiment(setup) -> None:  # type: ignore[no-untyped-def]
    source, loop, made, clock = setup
    loop.step()
    before = made["local"].processes()
    source.files["a.yaml"] = A.replace("sleep 1", "sleep 7").replace(
        "command:", "bogus: 1, command:"
    )
    source.files["b.yaml"] = experiment("b", {"q": "sleep 3"})
    clock.advance(1)
    loop.step()
    after = made["local"].processes()
    assert after[("a", "p")] == before[("a", "p")]  # last good stays live, untouched
    assert after[("b", "q")] != before[("b", "q")]  # the other converged
    status = store.read(source.id)["experiments"]  # type: ignore[index]
    assert status["a"]["sync"] == "OutOfSync" and status["a"]["error"].startswith("a.yaml:6: ")
    assert status["b"]["sync"] == "Synced"
    del made["local"].live[("a", "p")]  # drift while blocked: healed to the last good version
    clock.advance(30)
    loop.step()
    assert made["local"].processes()[("a", "p")] == before[("a", "p")]
    source.files["a.yaml"] = A  # fixed
    clock.advance(1)
    loop.step()
    assert store.read(source.id)["experiments"]["a"]["error"] is None  # type: ignore[index]
    # a commit that removes the blocked experiment removes it
    source.files["a.yaml"] = A.replace("command:", "bogus: 1, command:")
    clock.advance(1)
    loop.step()
    del source.files["a.yaml"]
    clock.advance(1)
    loop.step()
    assert live(made) == {("b", "q")}


def test_one_unreachable_cluster_fails_only_its_experiments(symphony_home: Path) -> None:
    clock = FakeClock()
    cluster = """apiVersion: symphony/v1
kind: Cluster
metadata: {name: far}
spec: {type: tmux, tmux: {socket_name: far}}
"""
    source = MemorySource(
        {"c.yaml": cluster, "a.yaml": A, "f.yaml": experiment("f", {"p": "x"}, cluster="far")}
    )
    reconciler, made = recording()
    made["far"] = LabelledCluster(ClusterSpec("far"), down=True)
    runner = SourceRunner(source, reconciler=reconciler, clock=clock, wall=clock)
    loop = Loop([runner], resync=30, clock=clock, backoff_base=1, backoff_max=8)
    assert loop.step() == pytest.approx(1.0)  # retry after the first backoff
    assert live(made) == {("a", "p")}
    status = store.read(source.id)["experiments"]  # type: ignore[index]
    assert (
        status["f"]["last_reconcile"]["result"] == "failed"
        and "unreachable" in status["f"]["error"]
    )
    assert status["a"]["sync"] == "Synced"
    made["far"].down = False
    clock.advance(1)
    loop.step()
    assert set(made["far"].live) == {("f", "p")}


def test_history_survives_a_restart(setup, symphony_home: Path) -> None:  # type: ignore[no-untyped-def]
    source, loop, _made, clock = setup
    loop.step()
    reconciler, _ = recording()
    again = SourceRunner(source, reconciler=reconciler, clock=clock, wall=clock)
    assert again.experiments["a"].history[0]["result"] == "applied"
    assert again.experiments["a"].revision == workspace.applied()["a"].revision


def test_observed_processes_are_what_memory_cluster_reports(setup) -> None:  # type: ignore[no-untyped-def]
    _source, loop, made, _clock = setup
    loop.step()
    assert all(isinstance(o, ObservedProcess) for o in made["local"].observe())
