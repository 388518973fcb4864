"""safeloop: the application shell (settings, calendar, CLI, demo) around flows/states/models."""

__version__ = "0.1.0"
