"""A strict reader of the Prometheus text exposition format, for the metrics tests."""

from __future__ import annotations

import re

# One sample line of the Prometheus text format: name, optional labels, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                    r"(-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$")


def parse_metrics(text: str) -> dict[str, float]:
    """``{'name{labels}': value}``; fails on any line that is not valid exposition format."""
    out: dict[str, float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter", "histogram"), line
            assert name not in typed, f"{name} typed twice"
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert m.group(1) in typed or base in typed, f"{line!r} has no # TYPE"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out
