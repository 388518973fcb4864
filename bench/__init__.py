"""Benchmarks for the engine and the audit chain, each against a raw-SQL baseline in the same process.

Run with ``.venv/bin/python -m bench.run [--quick]``; they are deliberately not part of ``tests/``
because their figures depend on the machine, and a slow CI box must not fail the test run.
"""
