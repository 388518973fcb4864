"""Prefect flows: thin scheduled drivers that call ``states`` (materialise, sweep, dispatch...)."""
