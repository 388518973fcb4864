"""The regulator's reports: quarterly / yearly hazard statistics (xlsx, CSV) and the monthly
violation bulletin (Markdown, HTML), checked cell by cell against a small 2020 data set built
through the real workflows, on SQLite and (with SAFELOOP_TEST_DATABASE_URL) PostgreSQL.

Local Asia/Shanghai periods, not UTC ones: some hazards and events sit a few hours either side
of a local boundary, where the UTC date says the opposite.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select
from sqlmodel import Session
from typer.testing import CliRunner

from core.errors import InvalidInput, NotFound
from core.settings import get_settings
from models import Hazard
from safeloop.cli.main import app
from safeloop.reports import (
    build_bulletin,
    build_stats,
    parse_month,
    parse_stats_period,
    render_bulletin,
    resolve_scope,
)
from states import engine
from states.jobs.stat_reports import materialize_reports
from states.workflows.hazard import HAZARD
from states.workflows.listing import LISTING
from states.workflows.stat_report import STAT_REPORT
from states.workflows.suspension import SUSPENSION
from tests.helpers import FULL_PLAN

ZONE = "Asia/Shanghai"
SH = ZoneInfo(ZONE)
JINHUA = "山西晋华化工集团有限公司"
XINFENG = "忻丰机械制造有限公司"
EDZ = "忻州经济开发区"
SCRIPT_TITLE = "液氨储罐安全阀失效<script>alert(1)</script>"
AFTER_2020 = datetime(2021, 1, 10, 2, 0, tzinfo=UTC)  # 2021-01-10 10:00 local: Q4 is over
runner = CliRunner()


def at(*parts: int) -> datetime:
    """A local Shanghai wall-clock time as the UTC moment the engine stores."""
    return datetime(*parts, tzinfo=SH).astimezone(UTC)


@dataclass
class Data:
    """Codes of the built entities the assertions refer to."""

    major: str
    overdue_general: str
    closed_major: str
    listing: str
    suspension_nov: str
    suspension_dec: str


def _report(s: Session, when: datetime, *, grade: str = "general", title: str = "压力表失效",
            unit: str = "jinhua-team-a", actor: str = "sun.banzhang") -> int:
    data = {"unit": unit, "title": title, "category": "thing", "grade": grade, "found_at": when}
    return engine.create(s, HAZARD, actor=actor, as_of=when, data=data).entity_id


def _fire(s: Session, hid: int, event_name: str, actor: str, when: datetime, **kw: Any) -> None:
    engine.fire(s, HAZARD, hid, event_name, actor=actor, as_of=when, **kw)


def _assign(s: Session, hid: int, when: datetime, deadline: datetime, funds: str,
            owner: str = "sun.banzhang", actor: str = "li.anquan") -> None:
    _fire(s, hid, "assign", actor, when,
          data={"owner": owner, "deadline": deadline, "funds": funds})


def _suspend(s: Session, unit: str, when: datetime, reason: str, scope: str) -> str:
    """An order to suspend production (责令停产停业整顿) through its workflow."""
    return engine.create(s, SUSPENSION, actor="qian.jianguan", as_of=when,
                         data={"unit": unit, "reason": reason, "scope": scope}).code


def _code(s: Session, hid: int) -> str:
    return s.connection().execute(select(Hazard.code).where(Hazard.id == hid)).scalar_one()


@pytest.fixture
def data(org: Session) -> Data:
    s = org
    # 晋华 (化工): general hazards at 合成一班, one major at 罐区班.
    _report(s, at(2020, 9, 30, 23, 30))                      # Q3 locally (annual only)
    _report(s, at(2020, 10, 1, 0, 30))                       # Q4 locally, Sept 30 in UTC
    _report(s, at(2021, 1, 1, 7, 0))                         # 2021 locally, 2020 in UTC
    h1 = _report(s, at(2020, 10, 9, 10))                     # rectified in Q4
    _assign(s, h1, at(2020, 10, 9, 11), at(2020, 10, 20, 23, 59, 59), "1000.50")
    _fire(s, h1, "submit", "sun.banzhang", at(2020, 10, 14, 10))
    _fire(s, h1, "accept", "li.anquan", at(2020, 10, 15, 10))
    h2 = _report(s, at(2020, 11, 2, 10))                     # overdue general
    _assign(s, h2, at(2020, 11, 2, 11), at(2020, 11, 10, 23, 59, 59), "200")
    h3 = _report(s, at(2020, 12, 28, 10))                    # closed only after the year
    _assign(s, h3, at(2020, 12, 28, 11), at(2021, 1, 10, 23, 59, 59), "300")
    _fire(s, h3, "submit", "sun.banzhang", at(2021, 1, 4, 10))
    _fire(s, h3, "accept", "li.anquan", at(2021, 1, 5, 10))
    false_report = _report(s, at(2020, 11, 3, 10))           # 误报: never counted
    _fire(s, false_report, "cancel", "li.anquan", at(2020, 11, 3, 11), comment="误报")
    m1 = _report(s, at(2020, 10, 12, 10), grade="major", title=SCRIPT_TITLE,
                 unit="jinhua-team-tank", actor="wu.chuyun")
    _assign(s, m1, at(2020, 10, 12, 11), at(2020, 11, 15, 23, 59, 59), "50000",
            owner="wu.chuyun")
    _fire(s, m1, "approve_plan", "wang.zhuren", at(2020, 10, 12, 12), data=FULL_PLAN)
    lid = engine.create(s, LISTING, actor="qian.jianguan", as_of=at(2020, 10, 13, 10), data={
        "unit": "jinhua-team-tank", "hazard": _code(s, m1), "department": "edz-yjj"}).entity_id
    engine.fire(s, LISTING, lid, "list", actor="qian.jianguan", as_of=at(2020, 10, 13, 11),
                data={"deadline": at(2020, 11, 15, 23, 59, 59)})
    # November escalations (and one just after the month: 00:30 on 1 December locally).
    _fire(s, h2, "escalate", "system", at(2020, 11, 11, 10), data={"level": 1})
    _fire(s, m1, "escalate", "system", at(2020, 11, 16, 10), data={"level": 3})
    _fire(s, h2, "escalate", "system", at(2020, 12, 1, 0, 30), data={"level": 2})
    for level, when, actor in ((1, at(2020, 11, 16, 14), "qian.jianguan"),
                               (2, at(2020, 11, 20, 10), "qian.jianguan"),
                               (3, at(2020, 11, 25, 10), "qian.jianguan")):
        engine.fire(s, LISTING, lid, "escalate", actor=actor, as_of=when, data={"level": level})
    # 忻丰 (工贸): a major hazard closed in time, a general one only reported.
    x1 = _report(s, at(2020, 11, 5, 9), grade="major", title="焊接烟尘收集装置失效",
                 unit="xinfeng-team-weld", actor="feng.hanjie")
    _assign(s, x1, at(2020, 11, 5, 10), at(2020, 11, 20, 23, 59, 59), "8000",
            owner="feng.hanjie", actor="chen.anyuan")
    _fire(s, x1, "approve_plan", "zheng.changzhang", at(2020, 11, 5, 11), data=FULL_PLAN)
    _fire(s, x1, "submit", "feng.hanjie", at(2020, 11, 17, 10))
    _fire(s, x1, "accept", "zheng.changzhang", at(2020, 11, 18, 10))
    _report(s, at(2020, 11, 6, 10), unit="xinfeng-team-weld", actor="feng.hanjie")
    nov = _suspend(s, "xinfeng-ws-weld", at(2020, 11, 10, 15), "动火作业未落实安全措施 | 拒不整改",
                   "partial")
    dec = _suspend(s, "jinhua-ws-storage", at(2020, 12, 2, 9), "重大隐患逾期未整改", "full")
    # The enterprises' own statistics reports: 晋华 files its Q4 one, 忻丰 nothing yet.
    materialize_reports(s, as_of=at(2021, 1, 2, 0, 10), zone=ZONE)
    engine.fire(s, STAT_REPORT, "jinhua/2020-Q4", "submit", actor="wang.zhuren",
                as_of=at(2021, 1, 8, 16))
    built = Data(_code(s, m1), _code(s, h2), _code(s, x1), "GP-000001", nov, dec)
    s.rollback()  # release SQLite's lock (reads begin IMMEDIATE) before the CLI opens the file
    return built


@pytest.fixture
def cli(db_url: str):
    get_settings.cache_clear()

    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, "report", *args])

    yield invoke
    get_settings.cache_clear()


# ---- statistics ------------------------------------------------------------------------------

HEADERS = ["序号", "企业", "行业", "辖区", "排查发现一般隐患数", "其中已整改", "重大隐患数", "其中已整改",
           "挂牌督办数", "整改率", "逾期未整改数", "其中重大隐患", "整改资金（元）", "责令停产停业整顿数",
           "统计表报送"]
JUR_HEADERS = ["序号", "辖区", "企业数", *HEADERS[4:-1], "已报送统计表企业数"]


def _sheet_rows(ws: Any) -> tuple[list[str], list[list[Any]], list[Any]]:
    """(lines above the header, header + rows below it, the notes line) of a sheet."""
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    header = next(i for i, r in enumerate(values) if r[0] == "序号")
    above = [r[0] for r in values[:header]]
    return above, values[header:-1], values[-1]


def _norm(row: list[Any]) -> list[Any]:
    return [("" if v is None else v) for v in row]


def test_quarterly_xlsx_cell_by_cell(data: Data, cli, tmp_path: Path):
    out = tmp_path / "q4.xlsx"
    result = cli("stats", "--period", "2020-Q4", "--jurisdiction", "xz-edz", "-o", str(out),
                 "--as-of", "2021-01-10 10:00")
    assert result.exit_code == 0, result.output
    assert "已生成" in result.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["企业明细", "辖区汇总"]
    above, table, notes = _sheet_rows(wb["企业明细"])
    assert above == [
        f"{EDZ}2020年第4季度事故隐患排查治理情况统计表",
        "统计期间：2020年10月1日至2020年12月31日（季报）",
        "报送期限：2021年1月15日前（原国家安全监管总局令第16号第十四条）",
        "生成时间：2021-01-10 10:00（Asia/Shanghai）",
        f"统计范围：{EDZ}（含下级辖区），企业 2 家",
    ]
    assert table[0] == HEADERS
    rows = [_norm(r) for r in table[1:]]
    #        一般 已改 重大 已改 挂牌 整改率 逾期 重大 资金 停产
    assert rows[0][:9] == [1, JINHUA, "化工", EDZ, 4, 1, 1, 0, 1]
    assert rows[0][9] == pytest.approx(0.2)
    assert rows[0][10:] == [2, 1, 51500.5, 1, "已报送（2021-01-08）"]
    assert rows[1][:9] == [2, XINFENG, "工贸", EDZ, 1, 0, 1, 1, 0]
    assert rows[1][9] == pytest.approx(0.5)
    assert rows[1][10:] == [0, 0, 8000, 1, "待报送"]
    assert rows[2][:9] == ["", "合计", "", "", 5, 1, 2, 1, 1]
    assert rows[2][9] == pytest.approx(2 / 7)
    assert rows[2][10:] == [2, 1, 59500.5, 2, "已报送 1/2"]
    assert len(rows) == 3
    assert "口径" in notes[0]
    ws = wb["企业明细"]
    header_row = len(above) + 1
    assert ws.cell(row=header_row + 1, column=10).number_format == "0.0%"
    assert ws.cell(row=header_row + 1, column=13).number_format == "#,##0.00"
    assert ws["A1"].font.bold

    above, table, _ = _sheet_rows(wb["辖区汇总"])
    assert above[0] == f"{EDZ}2020年第4季度事故隐患排查治理情况统计表"
    assert table[0] == JUR_HEADERS
    rows = [_norm(r) for r in table[1:]]
    assert [r[:3] for r in rows] == [[1, EDZ, 2], ["", "合计", 2]]
    assert rows[0][3:9] == [5, 1, 2, 1, 1, pytest.approx(2 / 7)]
    assert rows[0][9:] == [2, 1, 59500.5, 2, 1]


def test_annual_csv_with_bom(data: Data, cli, tmp_path: Path):
    out = tmp_path / "2020.csv"  # the format follows the extension
    result = cli("stats", "--period", "2020", "--jurisdiction", "xz", "-o", str(out),
                 "--as-of", "2021-01-10 10:00", "--json")
    assert result.exit_code == 0, result.output
    assert '"format": "csv"' in result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["忻州市2020年事故隐患排查治理情况统计表"]
    assert rows[1] == ["统计期间：2020年1月1日至2020年12月31日（年报）"]
    assert rows[2] == ["报送期限：2021年1月31日前（原国家安全监管总局令第16号第十四条）"]
    assert rows[4] == ["统计范围：忻州市（含下级辖区），企业 2 家"]
    start = rows.index(["企业明细"])
    assert rows[start + 1] == HEADERS
    assert rows[start + 2] == ["1", JINHUA, "化工", EDZ, "5", "1", "1", "0", "1", "16.7%", "2", "1",
                               "51500.50", "1", "待报送"]
    assert rows[start + 3] == ["2", XINFENG, "工贸", EDZ, "1", "0", "1", "1", "0", "50.0%", "0", "0",
                               "8000.00", "1", "待报送"]
    assert rows[start + 4] == ["", "合计", "", "", "6", "1", "2", "1", "1", "25.0%", "2", "1",
                               "59500.50", "2", "已报送 0/2"]
    jur = rows.index(["辖区汇总"])
    assert rows[jur + 1] == JUR_HEADERS
    assert rows[jur + 2] == ["1", EDZ, "2", "6", "1", "2", "1", "1", "25.0%", "2", "1", "59500.50",
                             "2", "0"]
    assert rows[jur + 3][:3] == ["", "合计", "2"]
    assert rows[-1][0].startswith("口径")


def test_running_period_is_a_snapshot_as_of(data: Data, org: Session):
    """Mid-quarter, "period end" is as_of: later rows are not yet there, deadlines not yet past."""
    conn = org.connection()
    period = parse_stats_period("2020-Q4", ZONE)
    report = build_stats(conn, period, resolve_scope(conn, None), as_of=at(2020, 11, 12, 12),
                         zone=ZONE)
    jinhua, xinfeng = report.enterprises
    # 晋华: the 10-01 one, H1 (closed), H2 (overdue since 11-10); M1's deadline 11-15 not yet past
    assert (jinhua["general"], jinhua["general_fixed"], jinhua["major"], jinhua["listed"],
            jinhua["overdue"], jinhua["overdue_major"], str(jinhua["funds"]),
            jinhua["suspensions"]) == (3, 1, 1, 1, 1, 0, "51200.50", 0)
    assert (xinfeng["general"], xinfeng["major"], xinfeng["major_fixed"],
            xinfeng["suspensions"]) == (1, 1, 0, 1)
    assert any(line.startswith("注意：统计期尚未结束") for line in report.meta)
    assert jinhua["filing"] == "—"  # the Q4 report is filed later than this snapshot
    late = build_stats(conn, period, resolve_scope(conn, None), as_of=at(2021, 1, 20, 9), zone=ZONE)
    assert [r["filing"] for r in late.enterprises] == ["已报送（2021-01-08）", "逾期未报"]
    assert late.total["filed"] == 1
    assert report.scope.description == "全部辖区"


def test_enterprise_without_hazards_is_listed_with_zeros(org: Session):
    conn = org.connection()
    report = build_stats(conn, parse_stats_period("2020-Q1", ZONE), resolve_scope(conn, "xz-edz"),
                         as_of=AFTER_2020, zone=ZONE)
    assert [r["enterprise"] for r in report.enterprises] == [JINHUA, XINFENG]
    assert all(r["general"] == 0 and r["rate"] is None for r in report.enterprises)
    assert all(r["filing"] == "—" for r in report.enterprises)  # no report was due
    assert report.total["enterprises"] == 2 and str(report.total["funds"]) == "0.00"


def test_statistics_are_set_wise(data: Data, org: Session):
    """Three statements whatever the number of hazards or enterprises (GROUP BY, no row loops)."""
    conn = org.connection()
    period, scope = parse_stats_period("2020", ZONE), resolve_scope(conn, "xz-edz")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(conn, "before_cursor_execute", count)
    try:
        build_stats(conn, period, scope, as_of=AFTER_2020, zone=ZONE)
        build_bulletin(conn, parse_month("2020-11", ZONE), scope, zone=ZONE, as_of=AFTER_2020)
    finally:
        event.remove(conn, "before_cursor_execute", count)
    assert len(statements) == 3 + 4
    assert all("GROUP BY" in s.upper() for s in statements[:3])


def test_bad_periods_and_jurisdiction_exit_2(org: Session, cli, tmp_path: Path):
    out = str(tmp_path / "x.xlsx")
    for bad in ("2020Q4", "2020-Q5", "2020-11", "20"):
        result = cli("stats", "--period", bad, "-o", out)
        assert result.exit_code == 2, (bad, result.output)
        assert "2026-Q4" in result.output and "统计周期" in result.output
    for bad in ("2020-13", "2020-Q4", "202011"):
        result = cli("bulletin", "--period", bad, "-o", str(tmp_path / "b.md"))
        assert result.exit_code == 2, (bad, result.output)
        assert "YYYY-MM" in result.output and "2026-11" in result.output
    result = cli("stats", "--period", "2020-Q4", "--jurisdiction", "nope", "-o", out)
    assert result.exit_code == 2 and "辖区「nope」不存在" in result.output
    result = cli("bulletin", "--period", "2020-11", "--issued-on", "12/05", "-o",
                 str(tmp_path / "b.md"))
    assert result.exit_code == 2 and "--issued-on" in result.output
    assert not Path(out).exists()
    with pytest.raises(InvalidInput, match="2026-Q4"):
        parse_stats_period("2020-H1", ZONE)
    with pytest.raises(NotFound):
        resolve_scope(org.connection(), "nope")


# ---- bulletin --------------------------------------------------------------------------------


def _bulletin(org: Session, fmt: str, month: str = "2020-11", **kw: Any) -> str:
    conn = org.connection()
    bulletin = build_bulletin(conn, parse_month(month, ZONE), resolve_scope(conn, "xz-edz"),
                              zone=ZONE, as_of=AFTER_2020, **kw)
    org.rollback()
    return render_bulletin(bulletin, fmt)  # type: ignore[arg-type]


def _section(text: str, heading: str) -> str:
    """The Markdown between ``heading`` and the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    body = text.split(heading + "\n", 1)[1]
    stops = [i for i in (body.find("\n## "), body.find("\n" + level + " ")) if i >= 0]
    return body[: min(stops)] if stops else body


def test_bulletin_markdown_contents(data: Data, org: Session):
    md = _bulletin(org, "md")
    assert md.startswith("# 《安全生产违规行为通报》\n\n**2020年11月**\n")
    assert f"- 通报单位：{EDZ}\n" in md
    assert "- 通报期间：2020年11月1日至2020年11月30日" in md
    assert "发布日期" not in md and "数据截至" not in md  # no dates beyond the data's own
    assert ("截至月末重大隐患逾期未整改企业 1 家（1 项）；隐患逾期升级 2 次；挂牌督办升级 3 次；"
            "移送处罚 1 起；责令停产停业整顿 1 家次。") in md

    overdue = _section(md, "## 一、重大隐患逾期未整改的企业")
    assert f"1. {JINHUA}（1 项）" in overdue
    assert (f"| 1 | {JINHUA} | {data.major} | 液氨储罐安全阀失效\\<script\\>alert(1)\\</script\\> "
            f"| 罐区班 | 2020-11-15 | 15 | {data.listing} |") in overdue
    assert data.overdue_general not in overdue and data.closed_major not in overdue
    assert XINFENG not in overdue

    hazards = _section(md, "### （一）隐患逾期升级")
    lines = [ln for ln in hazards.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert lines == [
        f"| 1 | 2020-11-11 10:00 | {JINHUA} | {data.overdue_general} | 压力表失效 | 一般隐患 "
        "| 第1级（单位负责人） | 系统（逾期自动升级） |",
        f"| 2 | 2020-11-16 10:00 | {JINHUA} | {data.major} | 液氨储罐安全阀失效\\<script\\>alert(1)"
        "\\</script\\> | 重大隐患 | 第3级（监管部门） | 系统（逾期自动升级） |",
    ]  # the level-2 escalation at 00:30 on 1 December (still 30 November in UTC) is not here
    listings = _section(md, "### （二）挂牌督办升级（督办函、约谈、移送处罚）")
    lines = [ln for ln in listings.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [ln.split(" | ")[1] for ln in lines] == ["2020-11-16 14:00", "2020-11-20 10:00",
                                                    "2020-11-25 10:00"]
    assert [ln.split(" | ")[6] for ln in lines] == ["督办函", "约谈", "移送处罚（按上限处罚）"]
    assert all(ln.split(" | ")[7] == "钱监管 |" for ln in lines)
    referrals = _section(md, "## 三、移送处罚（按上限处罚）")
    assert referrals.count(data.listing) == 1 and "2020-11-25 10:00" in referrals
    suspensions = _section(md, "## 四、责令停产停业整顿")
    assert (f"| 1 | 2020-11-10 15:00 | {XINFENG} | {data.suspension_nov} | 焊接车间 | 部分停产停业 "
            "| 动火作业未落实安全措施 \\| 拒不整改 | — |") in suspensions
    assert data.suspension_dec not in md
    assert "<script>" not in md


def test_bulletin_is_deterministic(data: Data, org: Session, cli, tmp_path: Path):
    assert _bulletin(org, "md") == _bulletin(org, "md")
    assert _bulletin(org, "html") == _bulletin(org, "html")
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    for path, as_of in ((first, "2020-12-05 09:00"), (second, "2021-03-01 18:30")):
        result = cli("bulletin", "--period", "2020-11", "--jurisdiction", "xz-edz", "-o",
                     str(path), "--as-of", as_of)
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text(encoding="utf-8") == _bulletin(org, "md")


def test_bulletin_html_escapes_and_prints(data: Data, org: Session, cli, tmp_path: Path):
    page = _bulletin(org, "html", issuer="忻州经济开发区安全生产委员会办公室",
                     issued_on=date(2020, 12, 5))
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in page and "<title>安全生产违规行为通报（2020年11月）</title>" in page
    assert "<h1>《安全生产违规行为通报》</h1>" in page
    assert "<li>通报单位：忻州经济开发区安全生产委员会办公室</li>" in page
    assert "<li>发布日期：2020年12月5日</li>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "@page" in page and "@media print" in page
    out = tmp_path / "bulletin.html"  # the format follows the extension
    result = cli("bulletin", "--period", "2020-11", "--jurisdiction", "xz-edz", "-o", str(out),
                 "--as-of", "2021-01-10 10:00", "--json")
    assert result.exit_code == 0, result.output
    assert '"referrals": 1' in result.output and '"suspensions": 1' in result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_empty_month_says_none(data: Data, org: Session):
    md = _bulletin(org, "md", month="2020-08")
    assert md.count("\n无\n") == 5
    assert "截至月末重大隐患逾期未整改企业 0 家（0 项）" in md
    html = _bulletin(org, "html", month="2020-08")
    assert html.count('<p class="none">无</p>') == 5


def test_running_month_says_as_of(data: Data, org: Session):
    conn = org.connection()
    bulletin = build_bulletin(conn, parse_month("2020-11", ZONE), resolve_scope(conn, None),
                              zone=ZONE, as_of=at(2020, 11, 18, 12))
    assert bulletin.as_of == "2020-11-18 12:00"
    assert [e.level for e in bulletin.listing_escalations] == [1]  # 11-20 and 11-25 not yet
    assert bulletin.overdue and bulletin.overdue[0].days == 3  # deadline 11-15, as of 11-18
    assert "本月尚未结束，数据截至：2020-11-18 12:00" in render_bulletin(bulletin, "md")
