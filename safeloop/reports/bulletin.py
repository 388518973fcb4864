"""The monthly violation bulletin (安全生产违规行为通报, 忻开管发〔2020〕1号 违规行为通报制度).

Four sections, each read set-wise from the tables and the audit trail for one local month:
enterprises with major hazards overdue at month end; escalations in the month (hazard escalate
events with their level, listing escalate events 督办函 / 约谈 / 移送处罚 from ``audit_entry``);
referrals for the maximum penalty (listing escalation level 3); orders to suspend production
(``suspension_order`` rows ordered in the month).

The output is a function of the data and the month only: rows are sorted on stable keys and no
generation time is printed (an issue date is a parameter), so a published bulletin can be
re-rendered byte for byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Connection, and_, not_, select
from sqlalchemy.sql import Select

from core.calendar import Period
from models.db import as_utc
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import ENTERPRISE, HAZARD, LISTING, PERSON, UNIT
from models.tables import SUSPENSION_ORDER as SUSPENSION
from safeloop.reports.scope import JURISDICTION, Scope, cutoff, zh_date
from states.audit import format_at
from states.workflows.hazard import ESCALATION_LEVELS
from states.workflows.listing import LEVELS as LISTING_LEVELS

TEMPLATES = Path(__file__).resolve().parent / "templates"
REFERRAL_LEVEL = 3  # 移送处罚（按上限处罚）
SCOPES = {"full": "全部停产停业", "partial": "部分停产停业"}
GRADES = {"general": "一般隐患", "major": "重大隐患"}
Format = Literal["md", "html"]


@dataclass(frozen=True)
class OverdueHazard:
    enterprise: str
    code: str
    title: str
    unit: str
    deadline: str
    days: int
    listing: str


@dataclass(frozen=True)
class Escalation:
    at: str
    enterprise: str
    code: str
    hazard_code: str
    title: str
    grade: str
    level: int
    level_label: str
    actor: str


@dataclass(frozen=True)
class Suspension:
    at: str
    enterprise: str
    code: str
    unit: str
    scope: str
    reason: str
    hazard: str


@dataclass
class Bulletin:
    issuer: str
    scope: Scope
    period: Period
    issued_on: date | None
    as_of: str | None  # set only while the month is still running
    overdue: list[OverdueHazard] = field(default_factory=list)
    hazard_escalations: list[Escalation] = field(default_factory=list)
    listing_escalations: list[Escalation] = field(default_factory=list)
    suspensions: list[Suspension] = field(default_factory=list)

    @property
    def referrals(self) -> list[Escalation]:
        return [e for e in self.listing_escalations if e.level == REFERRAL_LEVEL]

    @property
    def overdue_enterprises(self) -> list[tuple[str, int]]:
        """(enterprise, number of overdue major hazards), in the order of the table."""
        counts: dict[str, int] = {}
        for row in self.overdue:
            counts[row.enterprise] = counts.get(row.enterprise, 0) + 1
        return list(counts.items())

    @property
    def month_label(self) -> str:
        return self.period.label

    @property
    def range_label(self) -> str:
        return f"{zh_date(self.period.first_day)}至{zh_date(self.period.last_day)}"


def _in_scope(stmt: Select[Any], scope: Scope) -> Select[Any]:
    covers = scope.covers(JURISDICTION.c.path)
    return stmt if covers is None else stmt.where(covers)


def _local(value: datetime | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    moment = as_utc(value)
    return moment.astimezone(zone).strftime(fmt) if moment else ""


def _audit_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _overdue(conn: Connection, period: Period, end: datetime, scope: Scope,
             zone: ZoneInfo) -> list[OverdueHazard]:
    """Major hazards open at month end past their deadline (found before the end, any month)."""
    h, e, u, lst = HAZARD, ENTERPRISE, UNIT, LISTING
    closed = and_(h.c.state == "closed", h.c.closed_at < end)
    stmt = _in_scope(
        select(e.c.name.label("enterprise"), h.c.code, h.c.title, u.c.name.label("unit"),
               h.c.deadline, lst.c.code.label("listing"))
        .select_from(h.join(e, e.c.id == h.c.enterprise_id)
                     .join(JURISDICTION, JURISDICTION.c.id == e.c.jurisdiction_id)
                     .join(u, u.c.id == h.c.unit_id)
                     .outerjoin(lst, lst.c.id == h.c.listing_id))
        .where(h.c.grade == "major", h.c.state != "cancelled", h.c.found_at < end, not_(closed),
               h.c.deadline.is_not(None), h.c.deadline < end, *scope.sees(h))
        .order_by(e.c.key, h.c.code), scope)
    last_day = period.last_day if end >= period.end else end.astimezone(zone).date()
    rows = []
    for r in conn.execute(stmt).mappings():
        deadline = as_utc(r["deadline"])
        assert deadline is not None
        rows.append(OverdueHazard(r["enterprise"], r["code"], r["title"], r["unit"],
                                  _local(deadline, zone, "%Y-%m-%d"),
                                  (last_day - deadline.astimezone(zone).date()).days,
                                  r["listing"] or ""))
    return rows


def _escalations(conn: Connection, period: Period, end: datetime, scope: Scope, zone: ZoneInfo,
                 entity: Literal["hazard", "listing"]) -> list[Escalation]:
    """``escalate`` events of the month from the audit trail (``at`` is sortable UTC text)."""
    a, h, e, p = AUDIT, HAZARD, ENTERPRISE, PERSON
    if entity == "hazard":
        joined = a.join(h, h.c.id == a.c.entity_id)
        code = a.c.entity_code.label("hazard_code")
    else:
        joined = a.join(LISTING, LISTING.c.id == a.c.entity_id).join(h, h.c.id == LISTING.c.hazard_id)
        code = h.c.code.label("hazard_code")
    stmt = _in_scope(
        select(a.c.at, a.c.entity_code, a.c.data, a.c.actor, p.c.name.label("actor_name"), code,
               h.c.title, h.c.grade, e.c.name.label("enterprise"))
        .select_from(joined.join(e, e.c.id == h.c.enterprise_id)
                     .join(JURISDICTION, JURISDICTION.c.id == e.c.jurisdiction_id)
                     .outerjoin(p, p.c.key == a.c.actor))
        .where(a.c.entity_type == entity, a.c.event == "escalate",
               a.c.at >= format_at(period.start), a.c.at < format_at(end),
               *scope.sees(h if entity == "hazard" else LISTING))
        .order_by(a.c.at, a.c.seq), scope)
    rows = []
    for r in conn.execute(stmt).mappings():
        level = int(json.loads(r["data"]).get("level", 0))
        if entity == "hazard":
            label = f"第{level}级（{ESCALATION_LEVELS.get(level, '未知')}）"
        else:
            label = LISTING_LEVELS.get(level, f"第{level}级")
        actor = r["actor_name"] or ("系统（逾期自动升级）" if r["actor"] == "system" else r["actor"])
        rows.append(Escalation(_local(_audit_time(r["at"]), zone), r["enterprise"], r["entity_code"],
                               r["hazard_code"], r["title"], GRADES.get(r["grade"], r["grade"]),
                               level, label, actor))
    return rows


def _suspensions(conn: Connection, period: Period, end: datetime, scope: Scope,
                 zone: ZoneInfo) -> list[Suspension]:
    s, e, u, h = SUSPENSION, ENTERPRISE, UNIT, HAZARD
    stmt = _in_scope(
        select(s.c.ordered_at, s.c.code, s.c.scope, s.c.reason, e.c.name.label("enterprise"),
               u.c.name.label("unit"), h.c.code.label("hazard"))
        .select_from(s.join(e, e.c.id == s.c.enterprise_id)
                     .join(JURISDICTION, JURISDICTION.c.id == e.c.jurisdiction_id)
                     .join(u, u.c.id == s.c.unit_id)
                     .outerjoin(h, h.c.id == s.c.hazard_id))
        .where(s.c.ordered_at >= period.start, s.c.ordered_at < end, *scope.sees(s))
        .order_by(s.c.ordered_at, s.c.code), scope)
    return [Suspension(_local(r["ordered_at"], zone), r["enterprise"], r["code"], r["unit"],
                       SCOPES.get(r["scope"], r["scope"]), r["reason"], r["hazard"] or "")
            for r in conn.execute(stmt).mappings()]


def build_bulletin(conn: Connection, period: Period, scope: Scope, *, zone: str,
                   as_of: datetime, issuer: str | None = None,
                   issued_on: date | None = None) -> Bulletin:
    """Read the month's four sections; ``as_of`` matters only while the month is running."""
    tz = ZoneInfo(zone)
    end = cutoff(period, as_of)
    running = _local(end, tz) if end < period.end else None
    return Bulletin(
        issuer=issuer or scope.name, scope=scope, period=period, issued_on=issued_on,
        as_of=running,
        overdue=_overdue(conn, period, end, scope, tz),
        hazard_escalations=_escalations(conn, period, end, scope, tz, "hazard"),
        listing_escalations=_escalations(conn, period, end, scope, tz, "listing"),
        suspensions=_suspensions(conn, period, end, scope, tz),
    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def md_escape(value: object) -> str:
    """Make a value safe inside Markdown (and a table cell): escape markup, fold newlines."""
    text = "" if value is None else str(value)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def template_environment(fmt: Format) -> Environment:
    options: dict[str, Any] = {"loader": FileSystemLoader(TEMPLATES), "undefined": StrictUndefined,
                               "keep_trailing_newline": True, "trim_blocks": True,
                               "lstrip_blocks": True}
    if fmt == "html":
        return Environment(autoescape=True, **options)
    return Environment(autoescape=False, finalize=md_escape, **options)


def render_bulletin(bulletin: Bulletin, fmt: Format) -> str:
    """Markdown or a printable HTML page; every value from the data is escaped."""
    template = template_environment(fmt).get_template(f"bulletin.{fmt}.j2")
    issued = zh_date(bulletin.issued_on) if bulletin.issued_on else None
    return template.render(b=bulletin, issued=issued)
