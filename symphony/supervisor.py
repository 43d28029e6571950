"""Symphony's process supervisor: runs one command, restarts it by policy, keeps its log.

Run as ``python -S /abs/path/symphony/supervisor.py SPEC.json`` (how tmux windows and
node jobs start it) or ``python -m symphony.supervisor SPEC.json``. This file stays
tiny on purpose: a script is compiled on every start, so the work lives in the package
``supervision/``, whose bytecode is cached. Importers get the caller's API from here.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING or __package__ or __name__ != "__main__":  # imported, or python -m
    from symphony.supervision import (
        BACKOFF_CAP_SECONDS,
        BACKOFF_RESET_SECONDS,
        CRASH_LOOP_MIN_RUNTIME,
        CRASH_LOOP_RUNS,
        DEFAULT_BACKOFF_SECONDS,
        DEFAULT_STOP_TIMEOUT,
        FINAL_STATES,
        HISTORY_LENGTH,
        NOTE_PREFIX,
        RESTART_TYPES,
        SCRIPT,
        STATES,
        LogWriter,
        RestartLedger,
        Spec,
        SpecError,
        Supervisor,
        backoff_delay,
        is_alive,
        is_final,
        launch_detached,
        load_spec,
        main,
        parse_spec,
        read_state,
        stop,
        write_spec,
    )
else:  # python -S .../symphony/supervisor.py: this folder is sys.path[0]
    from supervision import main

__all__ = [
    "BACKOFF_CAP_SECONDS",
    "BACKOFF_RESET_SECONDS",
    "CRASH_LOOP_MIN_RUNTIME",
    "CRASH_LOOP_RUNS",
    "DEFAULT_BACKOFF_SECONDS",
    "DEFAULT_STOP_TIMEOUT",
    "FINAL_STATES",
    "HISTORY_LENGTH",
    "NOTE_PREFIX",
    "RESTART_TYPES",
    "SCRIPT",
    "STATES",
    "LogWriter",
    "RestartLedger",
    "Spec",
    "SpecError",
    "Supervisor",
    "backoff_delay",
    "is_alive",
    "is_final",
    "launch_detached",
    "load_spec",
    "main",
    "parse_spec",
    "read_state",
    "stop",
    "write_spec",
]

if __name__ == "__main__":
    sys.exit(main())
