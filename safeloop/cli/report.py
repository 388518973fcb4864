"""``safeloop report``: the regulator's reports — hazard statistics (quarterly / yearly) as Excel
or CSV, and the monthly violation bulletin (违规行为通报) as Markdown or HTML.

Periods are validated before the database is opened, so a typo fails fast with exit code 2.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from core.errors import InvalidInput
from core.timeparse import check_day
from models.db import utcnow
from safeloop.cli.common import (
    STATE,
    as_of_option,
    console,
    ensure_writable,
    handle_errors,
    open_session,
    print_json,
    writing,
)
from safeloop.cli.output import safe
from safeloop.cli.reading import ViewAsOpt, seeing
from safeloop.reports import (
    build_bulletin,
    build_stats,
    parse_month,
    parse_stats_period,
    render_bulletin,
    resolve_scope,
    write_csv,
    write_xlsx,
)

app = typer.Typer(help="监管报表：隐患排查治理统计表、违规行为通报（regulator reports）",
                  no_args_is_help=True)


class StatsFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


class BulletinFormat(StrEnum):
    md = "md"
    html = "html"


OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="输出文件")]
JurisdictionOpt = Annotated[str | None, typer.Option(
    "--jurisdiction", help="辖区编号（含下级辖区；默认全部辖区）")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="生成时间（默认现在），如 2027-01-05 10:00")]
JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出结果摘要")]


def _guess(output: Path, suffixes: dict[str, str], default: str) -> str:
    """The format from the file name when --format is not given (.csv → csv, .html → html)."""
    return suffixes.get(output.suffix.lower(), default)


@app.command("stats")
@handle_errors
def stats_cmd(
    period: Annotated[str, typer.Option(help="统计周期：季度 2026-Q4 或年度 2026")],
    output: OutputOpt,
    jurisdiction: JurisdictionOpt = None,
    fmt: Annotated[StatsFormat | None, typer.Option(
        "--format", help="xlsx 或 csv（默认按文件扩展名，否则 xlsx）")] = None,
    as_of: AsOfOpt = None,
    viewer: ViewAsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """隐患排查治理统计表（季报次季首月15日前、年报次年1月31日前报送；原安监总局令第16号）。"""
    settings = STATE.settings
    the_period = parse_stats_period(period, settings.timezone)
    kind = fmt.value if fmt else _guess(output, {".csv": "csv"}, "xlsx")
    moment = as_of_option(as_of) or utcnow()
    ensure_writable(output)
    with open_session() as session:
        conn = session.connection()
        try:
            scope = resolve_scope(conn, jurisdiction, seeing(session, viewer))
            report = build_stats(conn, the_period, scope,
                                 as_of=moment, zone=settings.timezone)
        finally:
            session.rollback()
    with writing(output) as temp:
        (write_csv if kind == "csv" else write_xlsx)(report, temp)
    if as_json:
        print_json({"file": str(output), "format": kind, "period": the_period.key,
                    "title": report.title, "enterprises": len(report.enterprises),
                    "jurisdictions": len(report.jurisdictions)})
        return
    console.print(f"已生成《{safe(report.title)}》（{kind}，企业 {len(report.enterprises)} 家）"
                  f"→ {safe(output)}")


@app.command("bulletin")
@handle_errors
def bulletin_cmd(
    period: Annotated[str, typer.Option(help="通报月份，如 2026-11")],
    output: OutputOpt,
    jurisdiction: JurisdictionOpt = None,
    fmt: Annotated[BulletinFormat | None, typer.Option(
        "--format", help="md 或 html（默认按文件扩展名，否则 md）")] = None,
    issuer: Annotated[str | None, typer.Option(help="通报单位（默认为辖区名称）")] = None,
    issued_on: Annotated[str | None, typer.Option(
        "--issued-on", help="发布日期 YYYY-MM-DD（印在通报上；不填则不印）")] = None,
    as_of: AsOfOpt = None,
    viewer: ViewAsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """安全生产违规行为通报（月度；忻开管发〔2020〕1号）。同样的数据生成完全相同的文件。"""
    settings = STATE.settings
    month = parse_month(period, settings.timezone)
    kind = fmt.value if fmt else _guess(output, {".html": "html", ".htm": "html"}, "md")
    day: date | None = None
    if issued_on:
        try:
            day = date.fromisoformat(issued_on.strip())
        except ValueError as exc:
            raise InvalidInput(
                f"--issued-on「{issued_on}」格式不对，应为 YYYY-MM-DD（如 2026-12-05）") from exc
        check_day(day, issued_on, "--issued-on")
    moment = as_of_option(as_of) or utcnow()
    ensure_writable(output)
    with open_session() as session:
        conn = session.connection()
        try:
            scope = resolve_scope(conn, jurisdiction, seeing(session, viewer))
            bulletin = build_bulletin(conn, month, scope,
                                      zone=settings.timezone, as_of=moment, issuer=issuer,
                                      issued_on=day)
        finally:
            session.rollback()
    text = render_bulletin(bulletin, "html" if kind == "html" else "md")
    with writing(output) as temp:
        temp.write_text(text, encoding="utf-8", newline="\n")
    summary = {"overdue_major": len(bulletin.overdue),
               "hazard_escalations": len(bulletin.hazard_escalations),
               "listing_escalations": len(bulletin.listing_escalations),
               "referrals": len(bulletin.referrals), "suspensions": len(bulletin.suspensions)}
    if as_json:
        print_json({"file": str(output), "format": kind, "period": month.key, **summary})
        return
    console.print(f"已生成《安全生产违规行为通报》（{month.label}，{kind}）→ {safe(output)}")
