"""Symphony's process supervisor: runs one command, restarts it by policy, keeps its log.

Run as ``python -S /abs/path/symphony/supervisor.py SPEC.json`` (how tmux windows and
node jobs start it) or ``python -m symphony.supervisor SPEC.json``. This file stays
tiny on purpose: a script is compiled on every start, so the work lives in the package
``supervision/``, whose bytecode is cached. Importers get the caller's API from here.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING or __package__ or __name__ != "__main__":  # imported, or python -m
    from symphony.supervision import *  # noqa: F403 - the caller's API, as the package lists it
    from symphony.supervision import __all__ as __all__
    from symphony.supervision import main
else:  # python -S .../symphony/supervisor.py: this folder is sys.path[0]
    from supervision import main

if __name__ == "__main__":
    sys.exit(main())
