"""The statistics-report batch: every enterprise's report for each period that has ended.

Reports are created set-wise once a period has ended: the quarter's by the 15th of the following
month, the year's by 31 January (local end of day). One audit row per creation batch, like
inspection tasks. The workflow itself is ``states.workflows.stat_report``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import DateTime, and_, literal, select
from sqlmodel import Session

from core.calendar import Cadence, local_date, local_midnight_utc, period_of
from models.db import as_utc, utcnow
from models.tables import ENTERPRISE, UNIT
from states import engine
from states.workflows.stat_report import STAT_REPORT

STALE_AFTER = timedelta(days=60)


def due_periods(as_of: datetime, zone: str) -> list[tuple[str, datetime]]:
    """The last ended quarter and year with their due moments (end of the due day, local)."""
    today = local_date(as_of, zone)
    this_quarter = period_of(Cadence.quarterly, as_of, zone)
    last_quarter = period_of(Cadence.quarterly, this_quarter.start - timedelta(seconds=1), zone)
    quarter_due = date(this_quarter.first_day.year, this_quarter.first_day.month, 15)
    year_due = date(today.year, 1, 31)
    periods = [
        (last_quarter.key, local_midnight_utc(quarter_due + timedelta(days=1), zone)),
        (str(today.year - 1), local_midnight_utc(year_due + timedelta(days=1), zone)),
    ]
    # a duty long past (e.g. on a fresh install) is not created after the fact
    return [(key, due) for key, due in periods if as_of < due + STALE_AFTER]


def materialize_reports(session: Session, *, as_of: datetime | None = None,
                        zone: str = "Asia/Shanghai", flow_run_id: str | None = None) -> int:
    """Create the due reports of every enterprise (idempotent, one transaction per period)."""
    moment = as_utc(as_of) or utcnow()
    created = 0
    for period_key, due in due_periods(moment, zone):
        created += _batch(session, period_key, due, moment, flow_run_id)
    return created


def _batch(session: Session, period_key: str, due: datetime, moment: datetime,
           flow_run_id: str | None) -> int:
    batch = uuid.uuid4().hex
    ts = DateTime(timezone=True)
    top = (select(UNIT.c.id).where(and_(UNIT.c.enterprise_id == ENTERPRISE.c.id,
                                        UNIT.c.parent_id.is_(None)))
           .order_by(UNIT.c.id).limit(1).scalar_subquery())
    source = select(
        ENTERPRISE.c.key + literal("/" + period_key), ENTERPRISE.c.id, top, literal(period_key),
        literal(due, ts), literal("due"), literal(1), literal(batch), literal(moment, ts),
        literal(moment, ts),
    ).where(top.is_not(None))
    columns = ("code", "enterprise_id", "unit_id", "period_key", "due_at", "state", "version",
               "batch", "created_at", "updated_at")
    return engine.create_set(session, STAT_REPORT, columns, source, batch=batch, as_of=moment,
                             comment=f"{period_key} 隐患统计报表",
                             data={"period_key": period_key, "due_at": due.isoformat()},
                             flow_run_id=flow_run_id)
