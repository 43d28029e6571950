"""Where Symphony keeps its state: ``SYMPHONY_HOME`` (default ``~/.symphony``).

Tests and users' experiments run side by side by setting ``SYMPHONY_HOME`` and
``SYMPHONY_TMUX_SOCKET`` (DESIGN §3).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from symphony.errors import UserError

DEFAULT_TMUX_SOCKET = "symphony"


def state_home() -> Path:
    """The state folder, created on first use."""
    raw = os.environ.get("SYMPHONY_HOME") or "~/.symphony"
    path = Path(raw).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"SYMPHONY_HOME={raw}: cannot use it as the state folder ({exc.strerror or exc})"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"SYMPHONY_HOME={raw}: the state folder is not writable")
    return path


def tmux_socket_name() -> str:
    name = os.environ.get("SYMPHONY_TMUX_SOCKET") or DEFAULT_TMUX_SOCKET
    if not SOCKET_NAME.fullmatch(name):
        raise UserError(
            f"SYMPHONY_TMUX_SOCKET={name}: a tmux socket name may use letters, digits, '.', '_' and '-'"
        )
    return name


SOCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
