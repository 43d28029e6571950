"""Benchmark of the capacity scheduler: speed, packing quality, and the whole command.

    python benchmarks/scheduler.py            # the figures quoted in the README (a few minutes)
    python benchmarks/scheduler.py --quick    # a smoke run of every part (seconds)

Prints, each as the median of ``--repeat`` runs:
1. throughput: 100,000 requests onto 10,000 nodes (3 classes, 4 groups), in the scheduler;
2. against a plain first-fit-decreasing loop over a node list, measured in the same run:
   10,000 requests onto a few thousand equal nodes — speed-up, nodes used, and the ratio
   to the lower bound (max over classes of ⌈total request / node capacity⌉);
3. the ratio to the lower bound for random instances of several shapes;
4. the whole ``symphony schedule`` command on generated YAML (100k requests, 10k nodes),
   YAML loading included.
Targets are marked ``ok`` / ``MISSED``; ``--check`` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symphony.scheduler import Node, Request, schedule  # noqa: E402

CLASSES = ("A", "B", "C")
GROUPS = ("g0", "g1", "g2", "g3")


@dataclass
class Targets:
    missed: list[str]

    def mark(self, ok: bool, what: str) -> str:
        if not ok:
            self.missed.append(what)
        return "ok" if ok else "MISSED"


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


# ------------------------------------------------------------------ instances


def cluster(n_nodes: int, rng: random.Random) -> list[Node]:
    """Heterogeneous nodes: four groups, three node types, some capacity in outside use."""
    types = [{"A": 100, "B": 200, "C": 16}, {"A": 200, "B": 400, "C": 32}, {"A": 50, "B": 800}]
    nodes = []
    for i in range(n_nodes):
        total = rng.choice(types)
        used = {"A": rng.choice((0, 0, 0, 10))}
        nodes.append(Node(f"n{i:05d}", (GROUPS[i % len(GROUPS)],), total, used))
    return nodes


def workload_requests(n: int, rng: random.Random) -> list[Request]:
    """Deployment replicas (one by one) and experiments (gangs of 10), 90% with a group."""
    shapes = [{"A": 10}, {"A": 25, "B": 50}, {"B": 100}, {"A": 5, "B": 20, "C": 2}, {"C": 4}]
    out: list[Request] = []
    w = 0
    while len(out) < n:
        w += 1
        group = rng.choice(GROUPS) if rng.random() < 0.9 else None
        if rng.random() < 0.7:  # a deployment with 20 replicas
            shape = rng.choice(shapes)
            for i in range(min(20, n - len(out))):
                out.append(Request(f"d{w}", f"d{w}-{i}", shape, group))
        else:  # an experiment: a learner and nine agents
            out.append(Request(f"e{w}", "learner", {"A": 40, "B": 40, "C": 8}, group, gang=f"e{w}"))
            for i in range(min(9, n - len(out))):
                out.append(Request(f"e{w}", f"agent-{i}", {"A": 5, "B": 10}, group, gang=f"e{w}"))
    return out


def replica_sets(rng: random.Random) -> Callable[[random.Random], dict[str, float]]:
    """Workloads of 20 replicas sharing a random shape: 1-3 classes, each U[5,40]."""
    current: list[dict[str, float]] = []

    def draw(r: random.Random) -> dict[str, float]:
        if not current or r.random() < 1 / 20:
            classes = r.sample(CLASSES, r.choice((1, 1, 2, 2, 3)))
            current[:] = [{c: r.randint(5, 40) for c in classes}]
        return current[0]

    return draw


SHAPES: dict[str, Callable[[random.Random], dict[str, float]]] = {
    # name: request drawn per call, for nodes of {A: 100, B: 100, C: 100}
    "replica sets, random shapes": lambda r: {},  # replaced per instance, see shape_requests
    "deployments (5 fixed shapes)": lambda r: r.choice(
        [{"A": 10}, {"A": 25, "B": 50}, {"B": 30}, {"A": 5, "B": 20, "C": 2}, {"C": 40}]
    ),
    "1 class, U[5,40]": lambda r: {"A": r.randint(5, 40)},
    "1 class, U[20,60] (big items)": lambda r: {"A": r.randint(20, 60)},
    "3 classes, correlated": lambda r: (lambda a: {"A": a, "B": a + r.randint(-5, 5), "C": a // 2})(
        r.randint(6, 30)
    ),
    "3 classes, independent U[1,30]": lambda r: {c: r.randint(1, 30) for c in CLASSES},
    "2 classes, complementary": lambda r: r.choice(
        [
            {"A": r.randint(10, 40), "B": r.randint(1, 5)},
            {"A": r.randint(1, 5), "B": r.randint(10, 40)},
        ]
    ),
}
EQUAL_NODE = {"A": 100.0, "B": 100.0, "C": 100.0}


MAIN_SHAPE = "replica sets, random shapes"


def shape_requests(shape: str, n: int, rng: random.Random) -> list[Request]:
    draw = replica_sets(rng) if shape == MAIN_SHAPE else SHAPES[shape]
    return [Request(f"w{i // 20}", f"w{i // 20}-{i % 20}", draw(rng)) for i in range(n)]


def lower_bound(requests: Sequence[Request], capacity: dict[str, float]) -> int:
    sums: dict[str, float] = {}
    for r in requests:
        for c, v in r.capacity_requests.items():
            sums[c] = sums.get(c, 0.0) + v
    return max(math.ceil(s / capacity[c] - 1e-9) for c, s in sums.items())


def equal_nodes(n: int) -> list[Node]:
    return [Node(f"n{i:05d}", ("g",), EQUAL_NODE) for i in range(n)]


def first_fit_decreasing(nodes: Sequence[Node], requests: Sequence[Request]) -> tuple[int, int]:
    """The plain baseline: sort by size, put each request on the first node it fits. (placed, used)"""
    largest = {c: max(n.capacities_total.get(c, 0.0) for n in nodes) or 1.0 for c in CLASSES}
    order = sorted(
        requests, key=lambda r: -sum(v / largest[c] for c, v in r.capacity_requests.items())
    )
    free = [dict(n.capacities_total) for n in nodes]
    used = [False] * len(nodes)
    placed = 0
    for r in order:
        items = r.capacity_requests.items()
        for i, f in enumerate(free):
            if all(f.get(c, 0.0) >= v for c, v in items):
                for c, v in items:
                    f[c] -= v
                used[i] = True
                placed += 1
                break
    return placed, sum(used)


# ---------------------------------------------------------------- the parts


def part_throughput(n_req: int, n_nodes: int, repeat: int, targets: Targets, check: bool) -> None:
    rng = random.Random(1)
    nodes, requests = cluster(n_nodes, rng), workload_requests(n_req, rng)
    seconds, result = median_time(lambda: schedule(nodes, requests), repeat)
    placed = len(result.placements)  # type: ignore[attr-defined]
    failed = len(result.unschedulable)  # type: ignore[attr-defined]
    rate = n_req / seconds
    mark = targets.mark(rate >= 20_000, "throughput ≥ 20,000/s") if check else ""
    print(f"1. {n_req:,} requests onto {n_nodes:,} nodes (3 classes, 4 groups, gangs of 10)")
    print(
        f"   {seconds:.2f} s median of {repeat}: {rate:,.0f} requests/s, {placed / seconds:,.0f} placements/s  {mark}"
    )
    print(
        f"   placed {placed:,}, unschedulable {failed:,} (demand: 64-71% of free capacity per class)"
    )


def part_vs_ffd(
    n_req: int, n_nodes: int, seeds: int, repeat: int, targets: Targets, check: bool
) -> None:
    """Same instances, same sort key, same run: speed-up, nodes used, ratio to the lower bound."""
    shape = MAIN_SHAPE
    print(
        f"2. {n_req:,} requests ({shape}) onto {n_nodes:,} equal nodes vs plain first-fit-decreasing, {seeds} instances"
    )
    print(
        f"   {'seed':>4} {'FFD s':>7} {'ours s':>7} {'speed-up':>8} {'FFD nodes':>9} {'ours':>5} {'lower bound':>11} {'ours/LB':>7}"
    )
    speedups, worse, ratios = [], 0, []
    total_ffd = total_ours = 0
    for seed in range(seeds):
        requests = shape_requests(shape, n_req, random.Random(seed))
        nodes = equal_nodes(n_nodes)
        t_ffd, ffd = median_time(lambda n=nodes, r=requests: first_fit_decreasing(n, r), 1)  # type: ignore[misc]
        t_us, ours = median_time(lambda n=nodes, r=requests: schedule(n, r), repeat)  # type: ignore[misc]
        ffd_placed, ffd_used = ffd  # type: ignore[misc]
        assert len(ours.placements) == ffd_placed == n_req  # type: ignore[attr-defined]
        us_used = len({p.node for p in ours.placements})  # type: ignore[attr-defined]
        lb = lower_bound(requests, EQUAL_NODE)
        speedups.append(t_ffd / t_us)
        ratios.append(us_used / lb)
        worse += us_used > ffd_used
        total_ffd += ffd_used
        total_ours += us_used
        print(
            f"   {seed:>4} {t_ffd:7.3f} {t_us:7.3f} {t_ffd / t_us:7.1f}x {ffd_used:>9} {us_used:>5} {lb:>11} {us_used / lb:7.4f}"
        )
    speedup = statistics.median(speedups)
    print(
        f"   median speed-up {speedup:.1f}x  {targets.mark(speedup >= 10, 'speed-up >= 10x vs FFD') if check else ''}"
    )
    print(
        f"   nodes: {total_ours} vs FFD {total_ffd} in all; more than FFD on {worse} of {seeds}  "
        f"{targets.mark(worse == 0, 'nodes <= FFD on every instance') if check else ''}"
    )
    print(
        f"   worst ours/LB {max(ratios):.4f}  {targets.mark(max(ratios) <= 1.03, 'nodes <= 1.03 x lower bound') if check else ''}"
    )


def part_shapes(n_req: int, n_nodes: int, seeds: int) -> None:
    print(
        f"3. nodes used / lower bound, {n_req:,} random requests onto equal nodes {{A,B,C: 100}}, mean of {seeds} seeds"
    )
    print(f"   {'shape':34} {'binpack':>8} {'FFD':>8}")
    for shape in SHAPES:
        ours: list[float] = []
        ffd: list[float] = []
        for seed in range(seeds):
            requests = shape_requests(shape, n_req, random.Random(100 + seed))
            nodes = equal_nodes(n_nodes)
            lb = lower_bound(requests, EQUAL_NODE)
            res = schedule(nodes, requests)
            assert not res.unschedulable, (shape, res.unschedulable[0])
            ours.append(len({p.node for p in res.placements}) / lb)
            placed, used = first_fit_decreasing(nodes, requests)
            assert placed == n_req
            ffd.append(used / lb)
        print(f"   {shape:34} {statistics.mean(ours):8.4f} {statistics.mean(ffd):8.4f}")


def write_yaml_cluster(folder: Path, n_nodes: int, n_req: int) -> tuple[Path, Path]:
    """A nodes file and manifests: deployments of 100 replicas, experiments of 1 + 99 agents."""
    rng = random.Random(3)
    with (folder / "nodes.yaml").open("w") as f:
        for node in cluster(n_nodes, rng):
            caps = ", ".join(f"{c}: {v:g}" for c, v in node.capacities_total.items())
            f.write(f"- node_id: {node.node_id}\n  groups: [{node.groups[0]}]\n")
            f.write(
                f"  capacities_total: {{{caps}}}\n  capacities_used: {{A: {node.capacities_used['A']:g}}}\n"
            )
    shapes = ["{A: 10}", "{A: 25, B: 50}", "{B: 100}", "{A: 5, B: 20, C: 2}", "{C: 4}"]
    docs, total, w = [], 0, 0
    while total < n_req:
        w += 1
        group = rng.choice(GROUPS)
        if w % 3:
            replicas = min(100, n_req - total)
            docs.append(
                f"apiVersion: symphony/v1\nkind: Deployment\nmetadata: {{name: d{w}}}\nspec:\n"
                f"  node_group: {group}\n  replicas: {replicas}\n  capacity_requests: {rng.choice(shapes)}\n"
                f"  config: {{command: [python3, main.py]}}\n"
            )
            total += replicas
        else:
            agents = min(99, n_req - total - 1)
            docs.append(
                f"apiVersion: symphony/v1\nkind: Experiment\nmetadata: {{name: e{w}}}\nspec:\n  processes:\n"
                f"    - {{name: learner, command: [python, l.py], node_group: {group}, capacity_requests: {{A: 40, B: 40, C: 8}}}}\n"
                f"    - {{name: agent, replicas: {agents}, command: [python, a.py], node_group: {group}, capacity_requests: {{A: 5, B: 10}}}}\n"
            )
            total += 1 + agents
    (folder / "workloads.yaml").write_text("---\n".join(docs))
    return folder / "nodes.yaml", folder / "workloads.yaml"


def part_command(n_req: int, n_nodes: int, repeat: int, targets: Targets, check: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="symphony-bench-") as tmp:
        nodes_file, workloads_file = write_yaml_cluster(Path(tmp), n_nodes, n_req)
        argv = [
            sys.executable,
            "-c",
            "import sys; from symphony.cli import main; main(sys.argv[1:])",
            "schedule",
            "--nodes",
            str(nodes_file),
            "--workloads",
            str(workloads_file),
            "-o",
            "json",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def run() -> int:
            done = subprocess.run(argv, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"symphony schedule failed: {done.stderr.strip()}")
            return done.stdout.count('"node":')

        seconds, placed = median_time(run, repeat)
    mark = targets.mark(seconds < 30, "command well under 30 s") if check else ""
    size = nodes_file.stat().st_size if nodes_file.exists() else 0
    del size
    print(f"4. symphony schedule -o json, {n_req:,} requests / {n_nodes:,} nodes from YAML")
    print(
        f"   {seconds:.1f} s median of {repeat} (process start, YAML + schema loading, placing, JSON); placed {placed:,}  {mark}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of every part"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per timing (median); default 5, quick 1"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = args.repeat or (1 if quick else 5)
    targets = Targets([])
    check = not quick  # targets are stated for the full sizes only
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores{' (quick)' if quick else ''}")
    part_throughput(5_000 if quick else 100_000, 500 if quick else 10_000, repeat, targets, check)
    part_vs_ffd(
        1_000 if quick else 10_000,
        300 if quick else 3_000,
        1 if quick else 5,
        repeat,
        targets,
        check,
    )
    part_shapes(500 if quick else 10_000, 400 if quick else 6_000, 1 if quick else 3)
    part_command(
        3_000 if quick else 100_000,
        300 if quick else 10_000,
        1 if quick else min(repeat, 3),
        targets,
        check,
    )
    if targets.missed:
        print("missed: " + "; ".join(targets.missed))
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
