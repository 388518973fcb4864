"""The enterprise's risk list (风险清单) as an .xlsx workbook or two UTF-8-with-BOM CSV files.

Two tables, as the 双重预防机制 guidance asks for: the control-responsibility list (管控责任清单,
one row per risk point) and the control-measure list (管控措施清单, one row per measure, the risk
repeated on each row so the sheet can be filtered). Rows are sorted by grade severity, then code,
and both formats are built from the same rows, so the workbook and the CSV never disagree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from models.enums import MeasureKind, RiskGrade, RiskKind
from safeloop.reports.excel import BOX, title_and_header
from safeloop.reports.risk_views import Measure, RiskView
from safeloop.reports.scope import zh_date
from states.risk_grading import METHODS, RANKED, STYLES

UNRATED = "未评价"
NO_MEASURE = "未制定管控措施"
DUTY_SHEET = "管控责任清单"
MEASURE_SHEET = "管控措施清单"
MEASURE_ORDER = {kind.value: i for i, kind in enumerate(MeasureKind)}
GRADE_BY_LABEL = {grade.label: grade for grade in RiskGrade}


@dataclass(frozen=True)
class Column:
    header: str
    width: float
    kind: str = "text"  # text | number | grade (the grade cell is filled with the grade colour)


DUTY_COLUMNS = (
    Column("序号", 6, "number"), Column("编号", 12), Column("风险点名称", 22), Column("类型", 16),
    Column("所在单位", 16), Column("区域", 14), Column("评价方法", 24), Column("风险值", 9, "number"),
    Column("风险等级", 11, "grade"), Column("颜色", 7), Column("管控层级", 14), Column("管控单位", 16),
    Column("责任人", 10), Column("联系方式", 18),
)
MEASURE_COLUMNS = (
    Column("编号", 12), Column("风险点名称", 20), Column("危险有害因素", 30),
    Column("可能导致的事故类型", 20), Column("风险等级", 11, "grade"), Column("措施类别", 14),
    Column("管控措施", 44), Column("管控层级", 14), Column("责任人", 10),
)


def grade_of(risk: RiskView) -> RiskGrade | None:
    return RiskGrade(risk.grade) if risk.grade else None


def grade_label(grade: RiskGrade | None) -> str:
    return grade.label if grade else UNRATED


def colour_label(grade: RiskGrade | None) -> str:
    return f"{STYLES[grade].colour}色" if grade else ""


def tier_label(grade: RiskGrade | None) -> str:
    return STYLES[grade].tier_label if grade else ""


def by_severity(risks: Iterable[RiskView]) -> list[RiskView]:
    """Most severe first, unevaluated last, then by code: the order every risk output uses."""
    rank = {grade: i for i, grade in enumerate(RANKED)}

    def key(risk: RiskView) -> tuple[int, str]:
        grade = grade_of(risk)
        return (rank[grade] if grade else len(RANKED), risk.code)

    return sorted(risks, key=key)


def ordered_measures(measures: Iterable[Measure]) -> list[Measure]:
    """Measures grouped in MeasureKind order (工程技术 … 应急处置), keeping their order within a kind."""
    return sorted(measures, key=lambda m: MEASURE_ORDER.get(m.kind, len(MEASURE_ORDER)))


def measure_label(kind: str) -> str:
    return MeasureKind(kind).label if kind in MEASURE_ORDER else kind


def _score(score: float | None) -> int | float | None:
    """A whole score as an int, so 360 is not shown as 360.0."""
    if score is None:
        return None
    return int(score) if float(score).is_integer() else score


def _kind_label(kind: str) -> str:
    return RiskKind(kind).label if kind in RiskKind.__members__ else kind


def duty_rows(risks: Iterable[RiskView]) -> list[list[Any]]:
    """管控责任清单: one row per risk point, in ``DUTY_COLUMNS`` order."""
    rows = []
    for n, risk in enumerate(by_severity(risks), 1):
        grade = grade_of(risk)
        rows.append([
            n, risk.code, risk.name, _kind_label(risk.kind), risk.unit, risk.area,
            METHODS.get(risk.method, risk.method) if risk.method else "", _score(risk.score),
            grade_label(grade), colour_label(grade), tier_label(grade), risk.control_unit,
            risk.responsible, risk.contacts,
        ])
    return rows


def measure_rows(risks: Iterable[RiskView]) -> list[list[Any]]:
    """管控措施清单: one row per measure; a risk without measures keeps one row that says so."""
    rows = []
    for risk in by_severity(risks):
        grade = grade_of(risk)
        head = [risk.code, risk.name, "；".join(risk.hazard_factors), "、".join(risk.accident_types),
                grade_label(grade)]
        tail = [tier_label(grade), risk.responsible]
        measures = ordered_measures(risk.measures)
        if not measures:
            rows.append([*head, "", NO_MEASURE, *tail])
        for m in measures:
            rows.append([*head, measure_label(m.kind), m.text, *tail])
    return rows


def _tables(risks: list[RiskView], enterprise: str,
            as_of: date) -> list[tuple[str, tuple[Column, ...], list[str], list[list[Any]]]]:
    duties, measures = duty_rows(risks), measure_rows(risks)
    day = f"编制日期：{zh_date(as_of)}"
    count = sum(len(r.measures) for r in risks)
    return [
        (DUTY_SHEET, DUTY_COLUMNS, [f"{enterprise}安全风险{DUTY_SHEET}", f"{day}　共 {len(duties)} 个风险点"],
         duties),
        (MEASURE_SHEET, MEASURE_COLUMNS,
         [f"{enterprise}安全风险{MEASURE_SHEET}", f"{day}　共 {count} 条管控措施"],
         measures),
    ]


def _sheet(ws: Worksheet, columns: tuple[Column, ...], title: list[str], rows: list[list[Any]]) -> None:
    width = len(columns)
    header = title_and_header(ws, title, [(col.header, col.width) for col in columns], 30)
    for i, row in enumerate(rows):
        for c, (col, value) in enumerate(zip(columns, row, strict=True), 1):
            cell = ws.cell(row=header + 1 + i, column=c, value=value)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # text typed by a user, not a formula for Excel to run
            cell.border = BOX
            cell.alignment = Alignment(vertical="top", wrap_text=True)
            if col.kind == "number":
                cell.alignment = Alignment(horizontal="right", vertical="top")
            elif col.kind == "grade":
                cell.alignment = Alignment(horizontal="center", vertical="top")
                if value in GRADE_BY_LABEL:
                    style = STYLES[GRADE_BY_LABEL[value]]
                    cell.fill = PatternFill("solid", fgColor=style.fill.lstrip("#"))
                    cell.font = Font(bold=True, color=style.ink.lstrip("#"))
    ws.freeze_panes = ws.cell(row=header + 1, column=3)
    ws.print_title_rows = f"{header}:{header}"
    ws.auto_filter.ref = f"A{header}:{get_column_letter(width)}{header + max(len(rows), 1)}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def write_risk_list_xlsx(risks: list[RiskView], path: Path, *, enterprise: str, as_of: date) -> None:
    """Write the two lists as sheets "管控责任清单" and "管控措施清单" of one workbook."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for name, columns, title, rows in _tables(risks, enterprise, as_of):
        _sheet(workbook.create_sheet(name), columns, title, rows)
    workbook.properties.title = f"{enterprise}安全风险清单"
    workbook.properties.creator = "safeloop"
    workbook.save(path)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def csv_paths(path: Path) -> list[Path]:
    """The two CSV files for ``path``: ``<stem>-管控责任清单.csv`` and ``<stem>-管控措施清单.csv``."""
    return [path.with_name(f"{path.stem}-{name}.csv") for name in (DUTY_SHEET, MEASURE_SHEET)]


def risk_list_csv(risks: list[RiskView], path: Path, *, enterprise: str,
                  as_of: date) -> list[tuple[Path, str]]:
    """Each CSV file's path (from ``csv_paths``) and text, so a caller can write them as it must
    (the CLI writes each atomically). Each file mirrors its sheet (title block, header, rows) and
    is a function of the input alone, so the same risks give the same bytes."""
    files = []
    for target, (_name, columns, title, rows) in zip(csv_paths(path), _tables(risks, enterprise, as_of),
                                                      strict=True):
        handle = io.StringIO(newline="")
        out = csv.writer(handle)
        for line in title:
            out.writerow([line])
        out.writerow([c.header for c in columns])
        for row in rows:
            out.writerow([_text(v) for v in row])
        files.append((target, handle.getvalue()))
    return files


def write_risk_list_csv(risks: list[RiskView], path: Path, *, enterprise: str, as_of: date) -> list[Path]:
    """Write the two CSV files next to ``path`` (UTF-8 with a BOM, for Excel); return them."""
    written = []
    for target, text in risk_list_csv(risks, path, enterprise=enterprise, as_of=as_of):
        target.write_text(text, encoding="utf-8-sig", newline="")
        written.append(target)
    return written
