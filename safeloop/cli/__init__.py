"""The ``safeloop`` command line (typer + rich)."""
