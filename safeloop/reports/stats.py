"""Hazard statistics (事故隐患排查治理情况统计) per enterprise and per jurisdiction.

原安监总局令第16号第十四条 asks enterprises for quarterly and yearly statistics; the regulator reads
the same figures over all its enterprises. Semantics, for a period ``[start, end)`` in local time:

- the population is the hazards *found* in the period (``found_at``), false reports (cancelled)
  excluded;
- rectified (已整改) = state ``closed`` with ``closed_at`` before the period end;
- overdue (逾期未整改) = not closed at the period end and ``deadline`` before it;
- listed (挂牌督办) = linked to a listing that was listed before the period end;
- funds (整改资金) = the sum of the funds committed at assignment;
- filing (统计表报送) = the enterprise's own statistics report for the period (``stat_report``,
  the duty 原安监总局令第16号第十四条 puts on it) as of the report's ``as_of``, from its timestamps.

While a period is still running, "period end" is the report's ``as_of`` (a snapshot: rows
dated after it are left out, so a report can be re-made as of any past moment). Every figure is one
GROUP BY in the database (per enterprise, then rolled up per jurisdiction and in total from the
same subquery), so a province costs three queries, not a Python loop over its hazards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, not_, select
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from core.calendar import Cadence, Period
from models.db import as_utc
from models.tables import ENTERPRISE, HAZARD, LISTING, STAT_REPORT
from models.tables import SUSPENSION_ORDER as SUSPENSION
from safeloop.reports.scope import JURISDICTION, Scope, cutoff, statistics_due, zh_date
from states.workflows.stat_report import STATES as FILING_STATES

CENT = Decimal("0.01")

Kind = Literal["text", "count", "rate", "money"]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: Kind
    width: int = 12


# The figures, in column order; each is a count except funds (money) and the derived rate.
FIGURES: tuple[Column, ...] = (
    Column("general", "排查发现一般隐患数", "count"),
    Column("general_fixed", "其中已整改", "count"),
    Column("major", "重大隐患数", "count"),
    Column("major_fixed", "其中已整改", "count"),
    Column("listed", "挂牌督办数", "count"),
    Column("rate", "整改率", "rate", 10),
    Column("overdue", "逾期未整改数", "count"),
    Column("overdue_major", "其中重大隐患", "count"),
    Column("funds", "整改资金（元）", "money", 16),
    Column("suspensions", "责令停产停业整顿数", "count"),
)
SUMMED = (*(c.key for c in FIGURES if c.key != "rate"), "filed")
ENTERPRISE_COLUMNS: tuple[Column, ...] = (
    Column("no", "序号", "text", 6),
    Column("enterprise", "企业", "text", 32),
    Column("industry", "行业", "text", 10),
    Column("jurisdiction", "辖区", "text", 20),
    *FIGURES,
    Column("filing", "统计表报送", "text", 18),
)
JURISDICTION_COLUMNS: tuple[Column, ...] = (
    Column("no", "序号", "text", 6),
    Column("jurisdiction", "辖区", "text", 24),
    Column("enterprises", "企业数", "count", 8),
    *FIGURES,
    Column("filed", "已报送统计表企业数", "count", 12),
)
NO_RATE = "—"  # an undefined rate (no hazards), in the workbook and the CSV
NOTES = (
    "口径：统计期内发现的隐患（不含撤销的误报）；已整改＝期末前已销号；逾期未整改＝期末仍未销号且整改期限早于期末；"
    "挂牌督办数＝期末前已挂牌的隐患；整改资金＝分派整改时落实的资金；统计表报送为截至生成时间企业报送本期统计表的情况；"
    "辖区按企业所属辖区（直属）汇总。"
)


@dataclass(frozen=True)
class Table:
    """One sheet: its name, columns and rows (dicts keyed by column key), the last a 合计 row."""

    name: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


@dataclass
class StatsReport:
    scope: Scope
    period: Period
    generated_at: datetime
    zone: str
    enterprises: list[dict[str, Any]] = field(default_factory=list)
    jurisdictions: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "季报" if self.period.cadence is Cadence.quarterly else "年报"

    @property
    def title(self) -> str:
        return f"{self.scope.name}{self.period.label}事故隐患排查治理情况统计表"

    @property
    def meta(self) -> list[str]:
        """The lines under the title: period, due date, generation time, scope."""
        p = self.period
        local = self.generated_at.astimezone(ZoneInfo(self.zone))
        lines = [
            f"统计期间：{zh_date(p.first_day)}至{zh_date(p.last_day)}（{self.kind}）",
            f"报送期限：{zh_date(statistics_due(p))}前（原国家安全监管总局令第16号第十四条）",
            f"生成时间：{local:%Y-%m-%d %H:%M}（{self.zone}）",
            f"统计范围：{self.scope.description}，企业 {self.total.get('enterprises', 0)} 家",
        ]
        if self.generated_at < p.end:
            lines.append(f"注意：统计期尚未结束，数据截至 {local:%Y-%m-%d %H:%M}")
        return lines

    def tables(self) -> list[Table]:
        ent_total = {"no": "", "enterprise": "合计", "industry": "", "jurisdiction": "", **self.total,
                     "filing": f"已报送 {self.total.get('filed', 0)}/{self.total.get('enterprises', 0)}"}
        jur_total = {"no": "", "jurisdiction": "合计", **self.total}
        return [
            Table("企业明细", ENTERPRISE_COLUMNS, [*self.enterprises, ent_total]),
            Table("辖区汇总", JURISDICTION_COLUMNS, [*self.jurisdictions, jur_total]),
        ]


def _count(*conditions: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)


def _in_scope_enterprises(scope: Scope) -> Select[Any]:
    stmt = select(ENTERPRISE.c.id).join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
    covers = scope.covers(JURISDICTION.c.path)
    return stmt if covers is None else stmt.where(covers)


def _hazard_figures(period: Period, end: datetime, scope: Scope) -> Select[Any]:
    """Per enterprise: the hazard counts and funds of the period (one GROUP BY)."""
    h, lst = HAZARD, LISTING
    closed = and_(h.c.state == "closed", h.c.closed_at < end)
    overdue = and_(not_(closed), h.c.deadline.is_not(None), h.c.deadline < end)
    general, major = h.c.grade == "general", h.c.grade == "major"
    stmt = (
        select(
            h.c.enterprise_id,
            _count(general).label("general"),
            _count(general, closed).label("general_fixed"),
            _count(major).label("major"),
            _count(major, closed).label("major_fixed"),
            _count(lst.c.listed_at.is_not(None), lst.c.listed_at < end).label("listed"),
            _count(overdue).label("overdue"),
            _count(overdue, major).label("overdue_major"),
            func.coalesce(func.sum(h.c.funds), 0).label("funds"),
        )
        .select_from(h.outerjoin(lst, lst.c.id == h.c.listing_id))
        .where(h.c.found_at >= period.start, h.c.found_at < end, h.c.state != "cancelled",
               *scope.sees(h))
        .group_by(h.c.enterprise_id)
    )
    if scope.key is not None:
        stmt = stmt.where(h.c.enterprise_id.in_(_in_scope_enterprises(scope)))
    return stmt


def _suspensions(period: Period, end: datetime, scope: Scope) -> Select[Any]:
    s = SUSPENSION
    stmt = (select(s.c.enterprise_id, func.count().label("suspensions"))
            .where(s.c.ordered_at >= period.start, s.c.ordered_at < end, *scope.sees(s))
            .group_by(s.c.enterprise_id))
    if scope.key is not None:
        stmt = stmt.where(s.c.enterprise_id.in_(_in_scope_enterprises(scope)))
    return stmt


def _per_enterprise(period: Period, end: datetime, scope: Scope, as_of: datetime) -> Select[Any]:
    """Every enterprise in scope (zero rows too: a silent enterprise is itself a finding)."""
    hz = _hazard_figures(period, end, scope).subquery("hz")
    so = _suspensions(period, end, scope).subquery("so")
    e, j, sr = ENTERPRISE, JURISDICTION, STAT_REPORT
    figures = [func.coalesce(hz.c[k], 0).label(k) for k in SUMMED if k not in ("suspensions", "filed")]
    stmt = (
        select(e.c.key.label("enterprise_key"), e.c.name.label("enterprise"), e.c.industry,
               j.c.key.label("jurisdiction_key"), j.c.name.label("jurisdiction"), *figures,
               func.coalesce(so.c.suspensions, 0).label("suspensions"),
               sr.c.created_at.label("filing_created_at"), sr.c.due_at, sr.c.submitted_at,
               case((sr.c.submitted_at <= as_of, 1), else_=0).label("filed"))
        .select_from(e.join(j, j.c.id == e.c.jurisdiction_id)
                     .outerjoin(hz, hz.c.enterprise_id == e.c.id)
                     .outerjoin(so, so.c.enterprise_id == e.c.id)
                     .outerjoin(sr, and_(sr.c.enterprise_id == e.c.id, sr.c.period_key == period.key,
                                         sr.c.created_at <= as_of, *scope.sees(sr))))
        .where(*scope.sees_enterprise(e.c.id))
    )
    covers = scope.covers(j.c.path)
    return stmt if covers is None else stmt.where(covers)


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    """Normalise types across backends and derive the rate (整改率 = 已整改 / 隐患数)."""
    out = dict(row)
    for key in SUMMED:
        if key != "funds":
            out[key] = int(out.get(key) or 0)
    out["funds"] = Decimal(str(out.get("funds") or 0)).quantize(CENT)
    found = out["general"] + out["major"]
    out["rate"] = (out["general_fixed"] + out["major_fixed"]) / found if found else None
    if "enterprises" in out:
        out["enterprises"] = int(out["enterprises"] or 0)
    return out


def _filing(row: Any, as_of: datetime, zone: str) -> str:
    """已报送（date） / 逾期未报 / 待报送 as of ``as_of``, or — when no report was due yet."""
    if row["filing_created_at"] is None:
        return "—"
    submitted = as_utc(row["submitted_at"])
    if submitted is not None and submitted <= as_of:
        return f"{FILING_STATES['submitted']}（{submitted.astimezone(ZoneInfo(zone)):%Y-%m-%d}）"
    due = as_utc(row["due_at"])
    return FILING_STATES["overdue" if due is not None and as_of >= due else "due"]


def build_stats(conn: Connection, period: Period, scope: Scope, *, as_of: datetime,
                zone: str) -> StatsReport:
    """Compute the per-enterprise, per-jurisdiction and total rows for ``period``."""
    end = cutoff(period, as_of)
    base = _per_enterprise(period, end, scope, as_of).subquery("ent")
    sums = [func.coalesce(func.sum(base.c[k]), 0).label(k) for k in SUMMED]
    enterprises = conn.execute(select(base).order_by(base.c.jurisdiction_key, base.c.enterprise_key))
    jurisdictions = conn.execute(
        select(base.c.jurisdiction_key, base.c.jurisdiction, func.count().label("enterprises"), *sums)
        .group_by(base.c.jurisdiction_key, base.c.jurisdiction).order_by(base.c.jurisdiction_key))
    total = conn.execute(select(func.count().label("enterprises"), *sums).select_from(base))
    report = StatsReport(scope, period, as_of, zone)
    report.enterprises = [_finish({**r, "no": i, "filing": _filing(r, as_of, zone)})
                          for i, r in enumerate(enterprises.mappings(), 1)]
    report.jurisdictions = [_finish({**r, "no": i}) for i, r in enumerate(jurisdictions.mappings(), 1)]
    report.total = _finish(dict(total.mappings().one()))
    return report
