"""One tmux server on its own socket, driven through the tmux binary.

Why not libtmux's object model: it costs a round-trip per window. Here every
read is one ``list-*`` call parsed from a ``-F`` format (libtmux's own trick),
and every change is a batch of commands joined by ``;`` argv elements, so a
100-window launch is a handful of tmux invocations. The tmux client refuses
a command line over 16 KiB ("command too long"), so batches are chunked.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from symphony.errors import OperationFailed, UserError

Command = Sequence[str]

# tmux's client packs argv into one 16 KiB message; stay well below.
MAX_BATCH_BYTES = 12_000
SEP = "\x1f"  # unit separator: never inside names, JSON escapes it
NO_SERVER_MARKERS = ("no server running", "error connecting to", "No such file or directory")
# What a server that has just lost its last session, and is about to exit,
# answers a read that needs a session: as empty as no server at all.
NO_SESSION_MARKERS = ("no current target", "no sessions")
# A client that reaches a server in the middle of exiting (its last session
# was just killed) gets this; the server is gone with whatever it held, so
# running the command again is safe and sees either no server or a new one.
DYING_SERVER_MARKER = "server exited unexpectedly"
DYING_SERVER_RETRIES = 5


def tmux_binary() -> str:
    """The tmux executable, or one clear line telling the user to install it."""
    path = shutil.which("tmux")
    if path is None:
        raise UserError(
            "tmux is not installed: the tmux cluster runs every process in a tmux window; "
            "install it (apt-get install tmux, brew install tmux)"
        )
    return path


@dataclass
class BatchResult:
    """What a batch did: stdout lines in order, and the errors of failed chunks."""

    output: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class TmuxServer:
    """The tmux server behind ``tmux -L socket``."""

    def __init__(self, socket_name: str, *, binary: str | None = None) -> None:
        self.socket_name = socket_name
        self.binary = binary or tmux_binary()

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "-L", self.socket_name, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One tmux invocation; ``check`` turns a failure into :class:`OperationFailed`."""
        for attempt in range(DYING_SERVER_RETRIES + 1):
            proc = subprocess.run(
                self.argv(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL
            )
            if proc.returncode == 0 or DYING_SERVER_MARKER not in proc.stderr:
                break
            time.sleep(0.01 * (attempt + 1))
        if check and proc.returncode != 0:
            raise OperationFailed(
                f"tmux -L {self.socket_name} {args[0]}: {_first_line(proc.stderr)}"
            )
        return proc

    def query(self, *args: str) -> list[str] | None:
        """Lines printed by a read-only command; ``None`` when no server runs on the socket."""
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if any(marker in proc.stderr for marker in NO_SERVER_MARKERS + NO_SESSION_MARKERS):
                return None
            raise OperationFailed(
                f"tmux -L {self.socket_name} {args[0]}: {_first_line(proc.stderr)}"
            )
        return proc.stdout.splitlines()

    def rows(self, command: str, fields: Sequence[str], *extra: str) -> list[list[str]]:
        """``command -F`` with ``fields`` separated by :data:`SEP`, split into rows."""
        fmt = SEP.join(f"#{{{f}}}" for f in fields)
        lines = self.query(command, *extra, "-F", fmt)
        if lines is None:
            return []
        width = len(fields)
        return [parts for parts in (line.split(SEP) for line in lines) if len(parts) == width]

    def batch(self, units: Iterable[Sequence[Command]]) -> BatchResult:
        """Run groups of commands, many per tmux invocation.

        A unit (e.g. new-window and its set-options) is never split across
        invocations. tmux stops a command list at its first error, so the
        units after a failure in the same chunk are not run: callers verify
        by observing again.
        """
        result = BatchResult()
        chunk: list[str] = []
        size = 0
        for unit in units:
            flat = _join([list(c) for c in unit])
            unit_size = sum(len(a.encode()) + 1 for a in flat)
            if chunk and size + unit_size + 2 > MAX_BATCH_BYTES:
                self._run_chunk(chunk, result)
                chunk, size = [], 0
            if chunk:
                chunk.append(";")
                size += 2
            chunk.extend(flat)
            size += unit_size
        if chunk:
            self._run_chunk(chunk, result)
        return result

    def _run_chunk(self, chunk: list[str], result: BatchResult) -> None:
        proc = self.run(*chunk, check=False)
        result.output.extend(proc.stdout.splitlines())
        if proc.returncode != 0:
            result.errors.append(_first_line(proc.stderr) or f"tmux exited with {proc.returncode}")

    def kill(self) -> None:
        self.run("kill-server", check=False)


def _join(commands: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, command in enumerate(commands):
        if i:
            out.append(";")
        out.extend(_escape_semicolon(command))
    return out


def _escape_semicolon(command: list[str]) -> list[str]:
    """tmux reads an argument ending in ``;`` as a separator: escape it."""
    return [a[:-1] + "\\;" if a.endswith(";") and a != ";" else a for a in command]


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
