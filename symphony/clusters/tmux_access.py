"""Reaching a tmux process: its output, its services, a command beside it, its terminal.

Everything here runs on this machine: logs are the supervisor's files, a URL is
``http://127.0.0.1:PORT``, ``exec`` runs with the process's environment and folder
(from its spec file), ``ssh`` attaches to its tmux window, and ``scp`` is
unnecessary — the files are already local.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

from symphony.clusters.base import unsupported
from symphony.clusters.tmux_files import ProcessFiles, read_json
from symphony.clusters.tmux_logs import follow as follow_file
from symphony.clusters.tmux_logs import live_size, read_history
from symphony.clusters.tmux_reader import TmuxReader
from symphony.clusters.tmux_stop import alive
from symphony.errors import OperationFailed, UserError
from symphony.names import resolve_service
from symphony.ports import LOOPBACK


class TmuxAccess(TmuxReader):
    def logs(
        self,
        experiment: str,
        key: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
    ) -> Iterator[str]:
        """The whole output (backups, then the live log); ``follow`` until the supervisor is gone."""
        files = self.folder(experiment).process(key)
        if not files.log_files() and not any(
            w.session == experiment and w.key == key for w in self.windows()
        ):
            raise UserError(self.no_process(experiment, key))
        return self._lines(files, follow=follow, tail=tail, since=since)

    def _lines(
        self, files: ProcessFiles, *, follow: bool, tail: int | None, since: float | None
    ) -> Iterator[str]:
        start = live_size(files.log)  # history up to here, then follow from here: no overlap
        paths = files.log_files()
        limit = start if paths and paths[-1] == files.log else None
        for line in read_history(paths, tail=tail, since=since, limit=limit):
            yield line.decode("utf-8", "replace")
        if follow:
            for line in follow_file(files.log, start=start, finished=lambda: self._done(files)):
                yield line.decode("utf-8", "replace")

    def _done(self, files: ProcessFiles) -> bool:
        """Will no more output come? Its supervisor is gone (or its window is)."""
        state = read_json(files.state)
        if isinstance(state, dict) and isinstance(state.get("supervisor_pid"), int):
            return not alive(state["supervisor_pid"])
        window = next(
            (w for w in self.windows() if w.session == files.folder.name and w.key == files.key),
            None,
        )
        return window is None or window.pane_dead

    def url(self, experiment: str, service: str) -> str:
        ports = self.session(experiment).ports or self.folder(experiment).read_ports()
        service = resolve_service(service, ports, experiment=experiment)
        return f"http://{LOOPBACK}:{ports[service]}"

    def exec(self, experiment: str, key: str, argv: Sequence[str]) -> int:
        """Run ``argv`` here with the process's full environment, in its folder."""
        spec = self.process_spec(experiment, key)
        if not argv:
            raise UserError("exec needs a command to run")
        env = {**os.environ, **{str(k): str(v) for k, v in (spec.get("env") or {}).items()}}
        workdir = spec.get("workdir") or None
        if workdir and not os.path.isdir(workdir):
            raise OperationFailed(f"{key}: its folder {workdir} does not exist")
        try:
            return subprocess.call(list(argv), env=env, cwd=workdir)
        except FileNotFoundError:
            raise OperationFailed(f"{argv[0]}: command not found") from None
        except PermissionError:
            raise OperationFailed(f"{argv[0]}: permission denied") from None

    def ssh(self, experiment: str, key: str) -> int:
        """Attach this terminal to the process's window (switch-client when already in tmux)."""
        window = self.window(experiment, key)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise OperationFailed(
                f"ssh {key}: needs a terminal to attach to its tmux window "
                f"(tmux -L {self.socket_name} attach -t ={experiment}); "
                "use `symphony logs` or `symphony exec` from scripts"
            )
        inside = os.environ.get("TMUX", "")
        if inside and os.path.basename(inside.split(",", 1)[0]) == self.socket_name:
            return subprocess.call(self.server.argv("switch-client", "-t", window.window_id))
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # nesting is deliberate
        attach = (
            "select-window",
            "-t",
            window.window_id,
            ";",
            "attach-session",
            "-t",
            f"={experiment}",
        )
        return subprocess.call(self.server.argv(*attach), env=env)

    def scp(self, source: str, destination: str, *, experiment: str) -> None:
        where = ""
        for ref in (source, destination):
            key, sep, _ = ref.partition(":")
            if sep and key and not key.startswith((".", "/", "~")):
                spec = read_json(self.folder(experiment).process(key).spec)
                if isinstance(spec, dict) and spec.get("workdir"):
                    where = f"; {key} runs in {spec['workdir']}"
                    break
        raise OperationFailed(
            f"{unsupported(self.spec, 'scp')}: tmux processes run on this machine, "
            f"so their files are already local — use cp{where}"
        )
