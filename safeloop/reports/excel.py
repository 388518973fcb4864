"""The statistics as an .xlsx workbook: one sheet per table, each with its own title block.

Counts, rates and money are written as numbers with a number format (not as text), so the
regulator can sum and sort them in Excel; an undefined rate (no hazards) shows as "—".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from safeloop.reports.stats import NO_RATE, NOTES, StatsReport, Table

NUMBER_FORMATS = {"count": "0", "rate": "0.0%", "money": "#,##0.00"}
_THIN = Side(style="thin", color="808080")
BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def cell_value(kind: str, value: Any) -> Any:
    """What goes into a cell: numbers stay numbers; a missing rate becomes a dash."""
    if kind == "rate" and value is None:
        return NO_RATE
    return value


def title_and_header(ws: Worksheet, lines: list[str], columns: list[tuple[str, float]],
                     header_height: float = 32) -> int:
    """A merged title block (first line large, centred) and a boxed header row; returns the
    header's row number. ``columns`` are (header text, column width)."""
    width = len(columns)
    for r, text in enumerate(lines, 1):
        ws.cell(row=r, column=1, value=text)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center")
    ws.row_dimensions[1].height = 24
    header = len(lines) + 1
    for c, (text, col_width) in enumerate(columns, 1):
        cell = ws.cell(row=header, column=c, value=text)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.border = BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(c)].width = col_width
    ws.row_dimensions[header].height = header_height
    return header


def _sheet(ws: Worksheet, report: StatsReport, table: Table) -> None:
    width = len(table.columns)
    header = title_and_header(ws, [report.title, *report.meta],
                              [(col.header, col.width) for col in table.columns])
    last = len(table.rows) - 1
    for i, row in enumerate(table.rows):
        for c, col in enumerate(table.columns, 1):
            cell = ws.cell(row=header + 1 + i, column=c, value=cell_value(col.kind, row.get(col.key)))
            cell.border = BOX
            if col.kind in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[col.kind]
                cell.alignment = Alignment(horizontal="right")
            if i == last:
                cell.font = Font(bold=True)
    notes = header + len(table.rows) + 1
    ws.cell(row=notes, column=1, value=NOTES).alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(start_row=notes, start_column=1, end_row=notes, end_column=width)
    ws.row_dimensions[notes].height = 48
    ws.freeze_panes = ws.cell(row=header + 1, column=1)
    ws.print_title_rows = f"{header}:{header}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def write_xlsx(report: StatsReport, path: Path) -> None:
    """Write the per-enterprise sheet and the jurisdiction summary sheet."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for table in report.tables():
        _sheet(workbook.create_sheet(table.name), report, table)
    workbook.properties.title = report.title
    workbook.properties.creator = "safeloop"
    workbook.save(path)
