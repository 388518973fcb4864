"""The regulator's reports: hazard statistics (quarterly / yearly, 原安监总局令第16号) and the
monthly violation bulletin (违规行为通报, 忻开管发〔2020〕1号).

``scope``    — which jurisdiction (and its sub-jurisdictions) a report covers; period parsing.
``stats``    — the statistics rows, computed set-wise (GROUP BY) in the database.
``excel``    — the statistics as an .xlsx workbook (per-enterprise sheet + jurisdiction summary).
``csvfile``  — the same tables as UTF-8-with-BOM CSV (so Excel shows the Chinese correctly).
``bulletin`` — the bulletin's data and its Markdown / HTML rendering (Jinja2 templates).
``risk_views`` / ``risk_list`` / ``risk_map`` / ``risk_card`` — risk grading outputs: the risk list
(xlsx / CSV), the four-colour distribution map (SVG) and the notice cards (HTML); ``pdf`` renders
HTML to PDF with WeasyPrint when installed.
"""

from pathlib import Path

from safeloop.reports.bulletin import Bulletin, build_bulletin, render_bulletin
from safeloop.reports.csvfile import write_csv
from safeloop.reports.scope import Scope, parse_month, parse_stats_period, resolve_scope
from safeloop.reports.stats import StatsReport, build_stats


def write_xlsx(report: StatsReport, path: Path) -> None:
    """``excel.write_xlsx``, importing openpyxl (~0.3 s) only when a workbook is written: every
    CLI command imports this package, ``safeloop flows run`` among them."""
    from safeloop.reports.excel import write_xlsx as write

    write(report, path)


__all__ = [
    "Bulletin",
    "Scope",
    "StatsReport",
    "build_bulletin",
    "build_stats",
    "parse_month",
    "parse_stats_period",
    "render_bulletin",
    "resolve_scope",
    "write_csv",
    "write_xlsx",
]
