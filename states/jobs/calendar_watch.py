"""The working-day calendar's end: what depends on it, and one alert a day when it runs short.

A year no schedule covers stops working-day plans (skipped) and working-day clocks (refused). The
materialisation flow calls ``alert`` every day: 60 days before coverage ends, or on a day a plan
or clock was skipped for lack of it, auditors and the routing file's alert channels get one
message (``calendar.coverage``), recorded in the trail, never one per item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, and_, func, insert, or_, select
from sqlmodel import Session

from core.calendar import CC_YEARS, WorkCalendar, local_date
from models.db import as_utc, utcnow
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import INSPECTION_PLAN as PLAN
from models.tables import LISTING, OUTBOX
from states.records import Act, record_many

ALERT_DAYS = 60  # the lead time: the State Council publishes next year's schedule in Nov.
ENTITY = "calendar"
TEMPLATE = "calendar.coverage"
PRE_HOLIDAY = "pre_holiday"
WORKING_DAYS = "working_days"


@dataclass
class CoverageStatus:
    """Where coverage ends as seen from ``today``, and what stops there."""

    today: date
    covered_years: list[int]
    national_years: list[int]  # chinesecalendar's own range
    first_uncovered: date
    days_left: int  # 0: today itself is not covered
    depends: dict[str, int] = field(default_factory=dict)

    @property
    def short(self) -> bool:
        return self.days_left <= ALERT_DAYS

    def to_dict(self) -> dict[str, object]:
        raw = asdict(self)
        raw.update(today=self.today.isoformat(), first_uncovered=self.first_uncovered.isoformat(),
                   alert_days=ALERT_DAYS, short=self.short)
        return raw


DEPENDS_LABELS = {
    "working_day_plans": "按工作日生成的每日排查计划",
    "pre_holiday_plans": "节前检查计划",
    "open_listings": "未摘牌的挂牌督办（报备、公示、进展、核查按工作日计时）",
}


def status(conn: Connection, calendar: WorkCalendar, today: date) -> CoverageStatus:
    """Coverage from ``today`` and counts of what runs on working days (set-wise, three counts)."""
    first = calendar.first_uncovered_day(today)
    active = and_(PLAN.c.active_from <= today,
                  or_(PLAN.c.active_until.is_(None), PLAN.c.active_until >= today))
    plans = conn.execute(select(
        func.count().filter(PLAN.c.calendar_mode == WORKING_DAYS),
        func.count().filter(PLAN.c.cadence == PRE_HOLIDAY),
    ).where(active)).one()
    listings = conn.execute(select(func.count()).select_from(LISTING)
                            .where(LISTING.c.state != "delisted")).scalar_one()
    return CoverageStatus(
        today=today, covered_years=sorted(calendar.covered_years),
        national_years=[min(CC_YEARS), max(CC_YEARS)], first_uncovered=first,
        days_left=(first - today).days,
        depends={"working_day_plans": int(plans[0] or 0), "pre_holiday_plans": int(plans[1] or 0),
                 "open_listings": int(listings or 0)})


def alert(session: Session, *, calendar: WorkCalendar, zone: str, as_of: datetime | None = None,
          skipped: Sequence[str] = (), flow_run_id: str | None = None) -> int | None:
    """Queue today's coverage alert if one is due and none was sent today; its audit seq or None.

    Runs in its own transaction (committed here), after the day's materialisation, so the
    skipped plans it reports are the ones that day's run actually skipped.
    """
    moment = as_utc(as_of) or utcnow()
    today = local_date(moment, zone)
    try:
        conn = session.connection()
        found = status(conn, calendar, today)
        if not (found.short or skipped) or _sent_today(conn, today):
            session.rollback()
            return None
        payload = {**found.to_dict(), "skipped": list(skipped)[:10], "skipped_count": len(skipped),
                   "depends_labels": DEPENDS_LABELS}
        facts = {k: payload[k] for k in ("first_uncovered", "days_left", "depends", "skipped_count")}
        [seq] = record_many(session, [Act(ENTITY, _code(today), "coverage_alert", facts)],
                            actor="system", role="system", as_of=moment, flow_run_id=flow_run_id)
        session.connection().execute(insert(OUTBOX).values(
            created_at=moment, audit_seq=seq, entity_type=ENTITY, entity_id=0,
            event="coverage_alert", recipient="role:auditor", template=TEMPLATE,
            payload=json.dumps(payload, ensure_ascii=False), status="pending", attempts=0))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return seq


def _code(today: date) -> str:
    return f"coverage-{today.isoformat()}"


def _sent_today(conn: Connection, today: date) -> bool:
    """One alert per local day: the day's audit row is the marker (few rows: one a day)."""
    return conn.execute(select(AUDIT.c.seq).where(
        AUDIT.c.entity_type == ENTITY, AUDIT.c.entity_id == 0,
        AUDIT.c.entity_code == _code(today)).limit(1)).first() is not None
