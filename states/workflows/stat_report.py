"""The hazard-statistics report as a tracked duty (原安监总局令第16号 第十四条).

    due ─submit (principal signs)─▶ submitted
     └─mark_overdue (system, past due)─▶ overdue ─submit─▶ submitted

Reports are created set-wise for every enterprise once a period has ended: the quarter's by
the 15th of the following month, the year's by 31 January (local end of day). One audit row
per creation batch, like inspection tasks.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import DateTime, and_, literal, select
from sqlmodel import Session

from core.calendar import Cadence, local_date, local_midnight_utc, period_of
from models.db import as_utc, utcnow
from models.tables import ENTERPRISE, UNIT
from models.tables import STAT_REPORT as REPORT
from states import engine
from states.workflow import STRICT, Branch, Context, EmptyParams, EventRule, Subject, Workflow
from states.workflows.hazard import EvidenceRef

STATES = {"due": "待报送", "overdue": "逾期未报", "submitted": "已报送"}
STALE_AFTER = timedelta(days=60)


class SubmitParams(BaseModel):
    model_config = STRICT
    summary: str = ""
    attachments: list[EvidenceRef] = Field(default=[], description="盖章签字的统计表")



def past_due(subject: Subject, ctx: Context) -> str | None:
    due = as_utc(subject.row["due_at"])
    return None if due is not None and ctx.as_of >= due else "尚未到报送期限"


def on_submit(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"submitted_at": ctx.as_of, "signed_by_id": ctx.actor_id}


def notify_principal(subject: Subject, _ctx: Context) -> list[str]:
    return [f"role:principal@unit:{subject.row['unit_id']}"]


def notify_regulator(subject: Subject, _ctx: Context) -> list[str]:
    return [f"role:regulator@unit:{subject.row['unit_id']}", *notify_principal(subject, _ctx)]


_events = [
    EventRule(
        name="submit", label="签字报送", sources=("due", "overdue"), branches=(Branch("submitted"),),
        roles=("principal",), params=SubmitParams, effect=on_submit, notify=notify_regulator,
    ),
    EventRule(
        name="mark_overdue", label="逾期未报", sources=("due",), branches=(Branch("overdue"),),
        roles=("system",), params=EmptyParams, guards=(past_due,), notify=notify_regulator,
    ),
]

STAT_REPORT = Workflow(
    name="stat_report",
    label="隐患统计报表",
    table=REPORT,
    code_prefix="TJ",
    states=STATES,
    terminal=frozenset({"submitted"}),
    create_event=EventRule(
                     name="materialize", label="生成报送任务", sources=(), branches=(Branch("due"),),
                     roles=("system",),
                 ),
    events={rule.name: rule for rule in _events},
    materialized=True,
)


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
