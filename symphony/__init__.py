"""Symphony: run distributed programs from declarative YAML manifests.

The seed's Python API::

    from symphony import Cluster
    cluster = Cluster.new('tmux')
    exp = cluster.new_experiment('rl')
    learner = exp.new_process('learner', command='python', args=['learner.py'])
    learner.binds('replay-server')
    cluster.launch(exp)
"""

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
