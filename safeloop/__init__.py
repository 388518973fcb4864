"""safeloop: the application shell (CLI, reports, org files, demo, migrations) above flows and states."""

__version__ = "0.1.0"
