"""Where Symphony keeps its state: ``SYMPHONY_HOME`` (default ``~/.symphony``).

Tests and users' experiments run side by side by setting ``SYMPHONY_HOME`` and
``SYMPHONY_TMUX_SOCKET`` (DESIGN §3).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TMUX_SOCKET = "symphony"


def state_home() -> Path:
    """The state folder, created on first use."""
    raw = os.environ.get("SYMPHONY_HOME") or "~/.symphony"
    path = Path(raw).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def tmux_socket_name() -> str:
    return os.environ.get("SYMPHONY_TMUX_SOCKET") or DEFAULT_TMUX_SOCKET
