"""The sweep's duty part (履职任务): reminders before the deadline, missed once the deadline has
passed, and each level of the kind's escalation ladder once.

Called by the ``sweep-deadlines`` flow next to ``states.jobs.sweep``. Each part selects only the
rows that need an event now (on the (state, due_at) index) and fires them through
``engine.fire_many`` as the system actor; the workflow's guards make every event fire once
however often the sweep runs (a reminder once, missed once, each level once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from core.rules import Rules, rules_for, set_rules
from models.db import as_utc, utcnow
from models.tables import DUTY as DT
from states import engine
from states.engine import FireRequest
from states.workflows.duty import DUTY

SYSTEM = engine.SYSTEM_ACTOR


@dataclass
class DutySweepReport:
    duty_reminders: int = 0
    duties_missed: int = 0
    duty_escalations: dict[int, int] = field(default_factory=dict)  # level -> events
    duty_refused: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"duty_reminders": self.duty_reminders, "duties_missed": self.duties_missed,
                "duty_escalations": self.duty_escalations, "duty_refused": self.duty_refused}


def sweep_duties(session: Session, *, as_of: datetime | None = None, rules: Rules | None = None,
                 batch_size: int = 5_000, enterprise_ids: Sequence[int] | None = None,
                 flow_run_id: str | None = None) -> DutySweepReport:
    """Remind, miss and escalate the duties that need it at ``as_of``."""
    moment = as_utc(as_of) or utcnow()
    if rules is None:
        rules = rules_for(session)
    else:
        set_rules(session, rules)
    kinds = rules.duties.kinds
    report = DutySweepReport()
    scope = [DT.c.enterprise_id.in_(list(enterprise_ids))] if enterprise_ids is not None else []

    windows = [and_(DT.c.kind == k.key, DT.c.due_at <= moment + timedelta(hours=k.remind_before_hours))
               for k in kinds.values() if k.remind_before_hours]
    if windows:
        soon = select(DT.c.id).where(DT.c.state == "due", DT.c.reminded_at.is_(None),
                                     DT.c.due_at > moment, or_(*windows), *scope).order_by(DT.c.id)
        requests = [FireRequest(i, "remind", SYSTEM) for i in _ids(session, soon)]
        report.duty_reminders = _fire(session, requests, moment, batch_size, flow_run_id, report)

    late = select(DT.c.id).where(DT.c.state == "due", DT.c.due_at <= moment, *scope).order_by(DT.c.id)
    requests = [FireRequest(i, "miss", SYSTEM) for i in _ids(session, late)]
    report.duties_missed = _fire(session, requests, moment, batch_size, flow_run_id, report)

    reached = [and_(DT.c.kind == k.key, DT.c.escalation_level < level,
                    DT.c.due_at <= moment - timedelta(hours=step.after_hours))
               for k in kinds.values() for level, step in enumerate(k.ladder, start=1)]
    if not reached:
        return report
    overdue = select(DT.c.id, DT.c.kind, DT.c.due_at, DT.c.escalation_level).where(
        DT.c.state == "missed", or_(*reached), *scope).order_by(DT.c.id)
    requests = []
    for did, kind, due, level in session.connection().execute(overdue).all():
        late_by = moment - as_utc(due)
        target = sum(1 for step in kinds[kind].ladder if late_by >= timedelta(hours=step.after_hours))
        requests += [FireRequest(did, "escalate", SYSTEM, data={"level": step})
                     for step in range(level + 1, target + 1)]
    session.rollback()
    _fire(session, requests, moment, batch_size, flow_run_id, report,
          by_level=report.duty_escalations)
    return report


def _ids(session: Session, stmt: object) -> list[int]:
    ids = list(session.connection().execute(stmt).scalars())  # type: ignore[call-overload]
    session.rollback()
    return ids


def _fire(session: Session, requests: list[FireRequest], moment: datetime, batch_size: int,
          flow_run_id: str | None, report: DutySweepReport,
          by_level: dict[int, int] | None = None) -> int:
    """Fire in batches (one transaction each); a refused item is counted, not fatal."""
    applied = 0
    for start in range(0, len(requests), batch_size):
        chunk = requests[start:start + batch_size]
        result = engine.fire_many(session, DUTY, chunk, as_of=moment, flow_run_id=flow_run_id,
                                  skip_refused=True)
        applied += len(result.applied)
        report.duty_refused += len(result.refused)
        if by_level is not None:
            refused = {id(request) for request, _ in result.refused}
            for request in chunk:
                if id(request) not in refused:
                    level = request.data["level"]
                    by_level[level] = by_level.get(level, 0) + 1
    return applied
