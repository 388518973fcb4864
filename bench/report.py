"""The benchmarks' printed table and the machine line above it (shared by ``bench.run`` and the
benchmarks that also run on their own, such as ``bench.api``)."""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
from collections.abc import Sequence

import sqlalchemy

from bench.common import Result

HEADER = ("benchmark", "n", "seconds", "per second", "baseline/s", "ratio", "cpu ratio", "target",
          "verdict")


def _rows(results: Sequence[Result | tuple[str, str]]) -> list[tuple[str, ...]]:
    rows = []
    for item in results:
        if isinstance(item, tuple):
            rows.append((item[0], "-", "-", "-", "-", "-", "-", "-", f"ERROR: {item[1]}"))
            continue
        rows.append((
            item.name, f"{item.n:,}", f"{item.seconds:.2f}", f"{item.rate:,.0f}",
            f"{item.baseline_rate:,.0f}", f"{item.ratio:.1%}",
            "-" if item.cpu_ratio is None else f"{item.cpu_ratio:.1%}", item.target,
            "PASS" if item.passed else "FAIL",
        ))
    return rows


def table(results: Sequence[Result | tuple[str, str]]) -> str:
    """A fixed-width table; numbers right-aligned so figures line up across runs."""
    rows = [HEADER, *_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    right = {1, 2, 3, 4, 5, 6}
    lines = []
    for k, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                          strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.name}: {r.notes}" for r in results if isinstance(r, Result) and r.notes]
    return "\n".join([*lines, "", "notes:", *notes]) if notes else "\n".join(lines)


def environment() -> str:
    return (f"python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.machine()} x{os.cpu_count()}, "
            f"files in {tempfile.gettempdir()}, {load()}")


def load() -> str:
    """The 1/5/15-minute load average: absolutes on a shared box are only read next to it."""
    try:
        return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load unknown"
