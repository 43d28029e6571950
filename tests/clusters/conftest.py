"""The tmux fixtures come from Symphony's own pytest plugin (symphony.testing).

Imported here so these tests run before the package is pip-installed (when the
pytest11 entry point registers the plugin by itself).
"""

from symphony.testing import symphony_home, tmux_cluster, tmux_socket  # noqa: F401
