"""``symphony schedule``: a dry run of the capacity scheduler — what would go where, and why not.

Reads a nodes file (a YAML list of node.yaml ``node:`` sections) and Experiment /
Deployment manifests, places everything in one pass, and prints the outcome.
Nothing is started or changed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from symphony.cli import globals_of
from symphony.errors import ManifestError, Problem, UserError
from symphony.scheduler import ClusterState, Node, PlacementResult, Strategy, manifest_requests

# A node entry is shaped like node.yaml's ``node:`` section; fields the scheduler
# does not read are accepted so that a real node.yaml section can be pasted in.
NODE_FIELDS = ("node_id", "groups", "capacities_total", "capacities_used", "schedulable")
NODE_YAML_FIELDS = (
    "conductor_addr",
    "heartbeat_sec",
    "tls",
    "advertise_address",
    "work_dir",
    "labels",
)
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@click.command(
    "schedule",
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Dry-run placement: what would go where and why not.",
)
@click.option(
    "--nodes", "nodes_file", required=True, metavar="FILE", help="YAML list of node entries."
)
@click.option(
    "--workloads",
    "-w",
    "workloads",
    multiple=True,
    metavar="PATH",
    help="Experiment/Deployment manifests (files or folders); more paths may follow.",
)
@click.option(
    "--strategy",
    default=Strategy.BINPACK.value,
    show_default=True,
    metavar="binpack|spread",
    help="binpack fills nodes (best fit); spread balances them (least allocated).",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the tie-breaks between equal nodes."
)
@click.argument("more_workloads", nargs=-1, metavar="[PATH]...")
@click.pass_context
def schedule(
    ctx: click.Context,
    nodes_file: str,
    workloads: tuple[str, ...],
    strategy: str,
    seed: int,
    more_workloads: tuple[str, ...],
) -> None:
    """Place the workloads' processes and replicas on the nodes, and print the outcome.

    \b
    symphony schedule --nodes NODES.yaml --workloads MANIFESTS... [--strategy binpack|spread] [-o table|json]
    """
    try:
        chosen = Strategy.parse(strategy)
    except ValueError as exc:
        raise UserError(f"--strategy: {exc}") from None
    paths = [*workloads, *more_workloads]
    if not paths:
        raise UserError("--workloads: give at least one manifest file or folder")
    nodes = load_nodes(nodes_file)

    from symphony.manifests import load_paths  # YAML + schemas: only when needed

    requests = manifest_requests(load_paths(paths))
    state = ClusterState(nodes, strategy=chosen, seed=seed)
    result = state.place(requests)

    output = globals_of(ctx).output
    if output == "table":
        click.echo(render_table(state, result, order=[n.node_id for n in nodes]))
        return
    report = as_dict(chosen, state, result)
    if output == "yaml":
        click.echo(yaml.safe_dump(report, sort_keys=False, width=1000), nl=False)
    else:
        click.echo(dump_json(report))


# ------------------------------------------------------------------- output


def as_dict(strategy: Strategy, state: ClusterState, result: PlacementResult) -> dict[str, Any]:
    """The ``-o json`` document (DESIGN: exactly these four keys)."""
    return {
        "strategy": strategy.value,
        "nodes_used": state.nodes_used,
        "placements": [
            {"workload": p.workload, "process": p.process, "node": p.node}
            for p in result.placements
        ],
        "unschedulable": [
            {"workload": u.workload, "process": u.process, "reason": u.reason}
            for u in result.unschedulable
        ],
    }


def dump_json(report: Mapping[str, Any]) -> str:
    """JSON with one placement (or reason) per line: readable, and diffable line by line."""
    parts = []
    for key, value in report.items():
        if isinstance(value, list) and value:
            items = ",\n  ".join(json.dumps(v) for v in value)
            parts.append(f"{json.dumps(key)}: [\n  {items}\n ]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{" + ",\n ".join(parts) + "}"


def render_table(
    state: ClusterState, result: PlacementResult, *, order: Sequence[str] | None = None
) -> str:
    """Used/total per class per node (in ``order``), placed/pending per workload, the reasons."""
    nodes = state.nodes if order is None else tuple(state.node(n) for n in order)
    classes = sorted({c for n in nodes for c in n.capacities_total})
    rows = [["NODE", "GROUPS", "PLACED", *classes]]
    for node in nodes:
        used = state.used(node.node_id)
        cells = [
            f"{_num(used[c])}/{_num(node.capacities_total[c])}"
            if c in node.capacities_total
            else "-"
            for c in classes
        ]
        name = node.node_id if node.schedulable else f"{node.node_id} (unschedulable)"
        placed = str(len(state.placements_on(node.node_id)))
        rows.append([name, ",".join(node.groups) or "-", placed, *cells])

    counts: dict[str, list[int]] = {}
    for p in result.placements:
        counts.setdefault(p.workload, [0, 0])[0] += 1
    for u in result.unschedulable:
        counts.setdefault(u.workload, [0, 0])[1] += 1
    workloads = [["WORKLOAD", "PLACED", "PENDING"]]
    workloads += [[w, str(placed), str(pending)] for w, (placed, pending) in counts.items()]

    lines = [
        f"strategy {state.strategy.value}: {len(result.placements)} placed, "
        f"{len(result.unschedulable)} unschedulable, "
        f"{state.nodes_used} of {len(nodes)} nodes used",
        "",
        *_columns(rows),
        "",
        *_columns(workloads),
    ]
    if result.unschedulable:
        lines += ["", "UNSCHEDULABLE"]
        lines += [f"{u.workload}/{u.process}: {u.reason}" for u in result.unschedulable]
    return "\n".join(lines)


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _num(value: float) -> str:
    return f"{value:g}"


# ------------------------------------------------------------- nodes file


@dataclass(frozen=True)
class _Entry:
    """One node entry with the line of each of its fields."""

    data: Mapping[str, Any]
    line: int
    lines: Mapping[str, int]


def load_nodes(path: str) -> list[Node]:
    """Read and check a nodes file; every problem becomes one ``FILE:LINE: message`` line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    return parse_nodes(text, file=path)


def parse_nodes(text: str, *, file: str) -> list[Node]:
    entries = _read_entries(text, file)
    problems: list[Problem] = []
    nodes: list[Node] = []
    seen: dict[str, int] = {}
    for entry in entries:
        node = _node(entry, file, problems)
        if node is None:
            continue
        if node.node_id in seen:
            problems.append(
                Problem(
                    f"duplicate node_id {node.node_id!r} (also at line {seen[node.node_id]})",
                    file,
                    entry.lines.get("node_id", entry.line),
                )
            )
            continue
        seen[node.node_id] = entry.lines.get("node_id", entry.line)
        nodes.append(node)
    if problems:
        raise ManifestError(problems)
    if not nodes:
        raise ManifestError(Problem("no nodes in the file", file, 1))
    return nodes


def _read_entries(text: str, file: str) -> list[_Entry]:
    loader = _SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ManifestError(Problem(f"invalid YAML: {exc.problem or exc}", file, line)) from None
    except yaml.YAMLError as exc:
        raise ManifestError(Problem(f"invalid YAML: {exc}", file, 1)) from None
    finally:
        loader.dispose()
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):  # {nodes: [...]}
        root = next(v for k, v in root.value if k.value == "nodes")
        data = data["nodes"]
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ManifestError(
            Problem("expected a YAML list of nodes (node_id, groups, capacities_total)", file, line)
        )
    entries: list[_Entry] = []
    problems: list[Problem] = []
    for item, node in zip(data, root.value, strict=True):
        if isinstance(item, dict) and isinstance(item.get("node"), dict):  # a whole node.yaml
            node = next(v for k, v in node.value if k.value == "node")
            item = item["node"]
        line = node.start_mark.line + 1
        if not isinstance(item, dict) or not isinstance(node, yaml.MappingNode):
            problems.append(Problem("a node entry must be a mapping with node_id", file, line))
            continue
        lines: dict[str, int] = {}
        for k, v in node.value:
            lines[str(k.value)] = k.start_mark.line + 1
            if isinstance(v, yaml.MappingNode):  # capacities: the line of each class
                lines.update({f"{k.value}.{k2.value}": k2.start_mark.line + 1 for k2, _ in v.value})
        entries.append(_Entry(item, line, lines))
    if problems:
        raise ManifestError(problems)
    return entries


def _node(entry: _Entry, file: str, problems: list[Problem]) -> Node | None:
    data, before = entry.data, len(problems)

    def bad(key: str, message: str) -> None:
        line = entry.lines.get(key) or entry.lines.get(key.split(".")[0]) or entry.line
        problems.append(Problem(message, file, line))

    for key in data:
        if key not in NODE_FIELDS and key not in NODE_YAML_FIELDS:
            close = difflib.get_close_matches(str(key), NODE_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            bad(str(key), f"unknown field {key!r} in a node entry{hint}")
    node_id = data.get("node_id")
    if node_id is None:
        bad("node_id", "node entry has no node_id")
    elif not isinstance(node_id, str | int) or isinstance(node_id, bool) or str(node_id) == "":
        bad("node_id", f"node_id must be a non-empty string, got {node_id!r}")
    groups = data.get("groups", [])
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        bad("groups", f"groups must be a list of group names, got {groups!r}")
    totals = _capacities(data, "capacities_total", bad)
    used = _capacities(data, "capacities_used", bad)
    schedulable = data.get("schedulable", True)
    if not isinstance(schedulable, bool):
        bad("schedulable", f"schedulable must be true or false, got {schedulable!r}")
    if len(problems) > before:
        return None
    return Node(
        node_id=str(node_id),
        groups=tuple(groups),
        capacities_total=totals,
        capacities_used=used,
        schedulable=schedulable,
    )


def _capacities(data: Mapping[str, Any], key: str, bad: Any) -> dict[str, float]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        bad(key, f"{key} must be a mapping of class to units, e.g. {{A: 100}}, got {value!r}")
        return {}
    out: dict[str, float] = {}
    for cls, amount in value.items():
        if not isinstance(cls, str) or not cls:
            bad(key, f"{key}: class names must be strings, got {cls!r}")
        elif isinstance(amount, bool) or not isinstance(amount, int | float):
            bad(f"{key}.{cls}", f"{key}.{cls} must be a number, got {amount!r}")
        elif not amount >= 0 or amount == float("inf"):
            bad(f"{key}.{cls}", f"{key}.{cls} must be a number >= 0, got {amount!r}")
        else:
            out[cls] = float(amount)
    return out
