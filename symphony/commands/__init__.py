"""CLI commands, one module per family; imported lazily by symphony.cli."""
