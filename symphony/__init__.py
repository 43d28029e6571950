"""Symphony: run distributed programs from declarative YAML manifests.

The seed's Python API::

    from symphony import Cluster
    cluster = Cluster.new('tmux')
    exp = cluster.new_experiment('rl')
    learner = exp.new_process('learner', command='python', args=['learner.py'])
    learner.binds('replay-server')
    cluster.launch(exp)

Names load lazily (PEP 562), so ``import symphony.x`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symphony.engine import Cluster, ExperimentSpec, ProcessGroupSpec, ProcessSpec
    from symphony.errors import ManifestError, OperationFailed, UserError

__all__ = [
    "Cluster",
    "ExperimentSpec",
    "ManifestError",
    "OperationFailed",
    "ProcessGroupSpec",
    "ProcessSpec",
    "UserError",
]
__version__ = "0.1.0"

_HOME = {
    "Cluster": "symphony.engine",
    "ExperimentSpec": "symphony.engine",
    "ProcessGroupSpec": "symphony.engine",
    "ProcessSpec": "symphony.engine",
    "ManifestError": "symphony.errors",
    "OperationFailed": "symphony.errors",
    "UserError": "symphony.errors",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'symphony' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
