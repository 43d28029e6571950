"""``python -m symphony`` runs the command line."""

from symphony.cli import main

main()
