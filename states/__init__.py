"""Workflows as data, the engine that is the only way to change state, and the audit chain."""
