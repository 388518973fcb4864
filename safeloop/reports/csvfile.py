"""The statistics as CSV in UTF-8 with a BOM: without the BOM, Excel on Chinese Windows reads
the file as GBK and shows the headers as mojibake.

One file mirrors the workbook: the title block, then each table under its name, then the notes.
Rates are written as percentages and money with two decimals, as a person would type them.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

from safeloop.reports.stats import NO_RATE, NOTES, StatsReport


def format_value(kind: str, value: Any) -> str:
    if value is None:
        return NO_RATE if kind == "rate" else ""
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "money":
        return f"{Decimal(value):.2f}"
    return str(value)


def write_csv(report: StatsReport, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([report.title])
        for line in report.meta:
            out.writerow([line])
        for table in report.tables():
            out.writerow([])
            out.writerow([table.name])
            out.writerow([c.header for c in table.columns])
            for row in table.rows:
                out.writerow([format_value(c.kind, row.get(c.key)) for c in table.columns])
        out.writerow([])
        out.writerow([NOTES])
