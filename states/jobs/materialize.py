"""Materialise inspection tasks: for every active plan, the task of the current period.

Set-wise: one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` per cadence and plan-id range, each
range its own transaction with one audit row naming the batch and the ids it created. Running
twice, or two runs at once, creates nothing twice (unique plan + period); a run killed midway
leaves whole batches behind and the next run fills the gaps.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import DateTime, and_, func, literal, or_, select
from sqlmodel import Session

from core.calendar import Cadence, WorkCalendar, local_date, period_of
from core.errors import InvalidInput
from models.db import as_utc, utcnow
from models.tables import INSPECTION_PLAN as PLAN
from states import engine
from states.workflows.inspection import INSPECTION

BATCH_ENTITY = f"{INSPECTION.name}_batch"  # replay checks every task belongs to one
PRE_HOLIDAY = "pre_holiday"
SEASONAL = "seasonal"
WORKING_DAYS = "working_days"
PERIODIC = (Cadence.daily, Cadence.weekly, Cadence.monthly, Cadence.quarterly, Cadence.yearly)
_COLUMNS = ("code", "plan_id", "period_key", "period_start", "period_end", "unit_id",
            "enterprise_id", "template_id", "assignee_id", "state", "version", "batch",
            "created_at", "updated_at")


@dataclass(frozen=True)
class Window:
    """One period to materialise: the plans of ``cadence`` get a task keyed ``key``."""

    cadence: str
    key: str
    start: datetime
    end: datetime
    label: str


@dataclass
class MaterializeReport:
    created: dict[str, int] = field(default_factory=dict)  # period key -> tasks created
    batches: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.created.values())


def windows_at(as_of: datetime, zone: str, calendar: WorkCalendar,
               pre_holiday_days: int) -> list[Window]:
    """Every period open at ``as_of``: the periodic ones, the season, any pre-holiday window."""
    found = []
    for cadence in PERIODIC:
        p = period_of(cadence, as_of, zone)
        found.append(Window(cadence.value, p.key, p.start, p.end, p.label))
    season = period_of(Cadence.quarterly, as_of, zone)
    found.append(Window(SEASONAL, f"{season.key}-S", season.start, season.end,
                        f"{season.label}季节性检查"))
    try:
        for w in calendar.pre_holiday_windows_at(as_of, pre_holiday_days, zone):
            found.append(Window(PRE_HOLIDAY, w.key, w.start, w.end, w.label))
    except InvalidInput:
        pass  # the year is not covered: reported by materialize() for the plans it affects
    return found


def materialize(
    session: Session,
    *,
    as_of: datetime | None = None,
    zone: str = "Asia/Shanghai",
    calendar: WorkCalendar | None = None,
    flow_run_id: str | None = None,
    batch_size: int = 50_000,
    enterprise_ids: Sequence[int] | None = None,
    pre_holiday_days: int = 5,
) -> MaterializeReport:
    """Create the current period's task for every active plan that has none."""
    moment = as_utc(as_of) or utcnow()
    calendar = calendar or WorkCalendar()
    today = local_date(moment, zone)
    report = MaterializeReport()
    working_today = _working_today(calendar, today, report)
    conn = session.connection()
    bounds = conn.execute(select(func.min(PLAN.c.id), func.max(PLAN.c.id))).first()
    session.rollback()
    if bounds is None or bounds[0] is None:
        return report
    for window in windows_at(moment, zone, calendar, pre_holiday_days):
        for lo in range(bounds[0], bounds[1] + 1, batch_size):
            created = _batch(session, window, today, working_today, moment,
                             (lo, lo + batch_size - 1), enterprise_ids, flow_run_id)
            if created:
                report.created[window.key] = report.created.get(window.key, 0) + created
                report.batches += 1
    return report


def _working_today(calendar: WorkCalendar, today: date, report: MaterializeReport) -> bool | None:
    try:
        return calendar.is_working_day(today)
    except InvalidInput as exc:
        report.warnings.append(f"{exc.message}；按工作日生成的每日计划本次跳过")
        return None


def _batch(
    session: Session, window: Window, today: date, working_today: bool | None,
    moment: datetime, plan_ids: tuple[int, int], enterprise_ids: Sequence[int] | None,
    flow_run_id: str | None,
) -> int:
    """One plan-id range of one window in one transaction: insert tasks, audit the batch."""
    batch = uuid.uuid4().hex
    conditions = [
        PLAN.c.cadence == window.cadence,
        PLAN.c.id.between(*plan_ids),
        PLAN.c.active_from <= today,
        or_(PLAN.c.active_until.is_(None), PLAN.c.active_until >= today),
    ]
    if window.cadence == Cadence.daily and working_today is not True:
        conditions.append(PLAN.c.calendar_mode != WORKING_DAYS)
    if enterprise_ids is not None:
        conditions.append(PLAN.c.enterprise_id.in_(list(enterprise_ids)))
    ts = DateTime(timezone=True)
    source = select(
        PLAN.c.key + literal("/" + window.key), PLAN.c.id, literal(window.key),
        literal(window.start, ts), literal(window.end, ts), PLAN.c.unit_id,
        PLAN.c.enterprise_id, PLAN.c.template_id, PLAN.c.assignee_id, literal("scheduled"),
        literal(1), literal(batch), literal(moment, ts), literal(moment, ts),
    ).where(and_(*conditions))
    data = {"cadence": window.cadence, "period_key": window.key, "plans": list(plan_ids)}
    return engine.create_set(session, INSPECTION, _COLUMNS, source, batch=batch, as_of=moment,
                             comment=window.label, data=data, flow_run_id=flow_run_id)


