"""Inspection plans (排查计划): which unit is inspected, how often, against which checklist, by whom.

Defaults follow the notice's tiers: team daily, workshop weekly, plant monthly, group quarterly
(班组日查、车间周查、厂矿月查、集团公司季查), each against the shipped general template of its tier.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.errors import GuardFailed, InvalidInput, NotFound
from core.timeparse import check_day
from models import Person, Unit
from models.db import utcnow
from models.enums import Role, Tier
from models.tables import INSPECTION_PLAN as PLAN
from safeloop import checklists
from states import engine
from states.jobs.materialize import PRE_HOLIDAY, SEASONAL, WORKING_DAYS
from states.workflows.inspection import INSPECTION

DEFAULT_CADENCE = {Tier.team: "daily", Tier.workshop: "weekly", Tier.plant: "monthly",
                   Tier.group: "quarterly"}
CADENCES = {"daily": "日查", "weekly": "周查", "monthly": "月查", "quarterly": "季查",
            "yearly": "年查", SEASONAL: "季节性检查", PRE_HOLIDAY: "节前检查"}
CALENDAR_MODES = {"all_days": "每天", WORKING_DAYS: "仅工作日"}
KEY_MAX = 64  # the column's width; a task's code is "<plan key>/<period key>"


@dataclass(frozen=True)
class PlanSpec:
    key: str
    unit: str
    cadence: str | None = None
    template: str | None = None
    name: str | None = None
    assignee: str | None = None
    assignee_role: str | None = None
    calendar_mode: str = "all_days"
    active_from: date | None = None
    active_until: date | None = None


def add(session: Session, spec: PlanSpec, *, actor: str = "admin") -> int:
    """Validate and insert a plan with an audit row; everything wrong is named, nothing written.

    A key taken meanwhile by a concurrent ``add`` (the unique index refuses the insert on
    PostgreSQL) is the same "already exists" refusal as one taken before.
    """
    check_key(spec.key)
    for day, option in ((spec.active_from, "--from"), (spec.active_until, "--until")):
        if day is not None:
            check_day(day, day.isoformat(), option)
    try:
        conn = session.connection()
        unit = conn.execute(select(Unit.id, Unit.tier, Unit.name, Unit.enterprise_id)  # type: ignore[call-overload]
                            .where(Unit.key == spec.unit)).first()
        if unit is None:
            raise NotFound(f"单位「{spec.unit}」不存在")
        tier = Tier(unit.tier)
        cadence = spec.cadence or DEFAULT_CADENCE[tier]
        if cadence not in CADENCES:
            raise InvalidInput(f"未知的排查频次「{cadence}」，可用：{'、'.join(CADENCES)}")
        if spec.calendar_mode not in CALENDAR_MODES:
            raise InvalidInput(f"未知的日历模式「{spec.calendar_mode}」，可用：{'、'.join(CALENDAR_MODES)}")
        if spec.assignee_role is not None and spec.assignee_role not in {r.value for r in Role}:
            raise InvalidInput(f"未知角色「{spec.assignee_role}」")
        if _exists(session, spec.key):
            raise _taken(spec.key)
        assignee_id = None
        if spec.assignee is not None:
            assignee_id = conn.execute(select(Person.id).where(Person.key == spec.assignee)).scalar()  # type: ignore[call-overload]
            if assignee_id is None:
                raise NotFound(f"人员「{spec.assignee}」不存在")
            held = engine.roles_in_scope(conn, INSPECTION, spec.assignee, {"unit": spec.unit})
            if not held.intersection(INSPECTION.events["start"].roles):
                raise GuardFailed(f"检查人「{spec.assignee}」在单位「{spec.unit}」没有可执行排查的角色"
                                  f"（审计员、其他企业或其他单位的人员不能被指定为检查人）")
        template_id = checklists.latest(session, spec.template or f"general-{tier.value}")
        start = spec.active_from or date.today()
        if spec.active_until is not None and spec.active_until < start:
            raise InvalidInput("计划结束日期早于开始日期")
        name = spec.name or f"{unit.name}{CADENCES[cadence]}"
        plan_id = conn.execute(insert(PLAN).values(
            key=spec.key, name=name, unit_id=unit.id, enterprise_id=unit.enterprise_id,
            tier=tier.value, cadence=cadence, template_id=template_id, assignee_id=assignee_id,
            assignee_role=spec.assignee_role, calendar_mode=spec.calendar_mode,
            active_from=start, active_until=spec.active_until, created_at=utcnow(),
        ).returning(PLAN.c.id)).scalar_one()
        engine.record(session, entity_type="inspection_plan", entity_code=spec.key,
                      event="add_plan", actor=actor, role="admin",
                      data={"unit": spec.unit, "cadence": cadence, "template_id": template_id,
                            "assignee": spec.assignee, "calendar_mode": spec.calendar_mode,
                            "active_from": start.isoformat()})
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        try:
            taken = _exists(session, spec.key)
        finally:
            session.rollback()
        if taken:
            raise _taken(spec.key) from exc
        raise
    except BaseException:
        session.rollback()
        raise
    return int(plan_id)


def check_key(key: str) -> str:
    """A plan key people can type and the task codes can embed: refused otherwise, named."""
    if not key or not key.strip():
        raise InvalidInput("排查计划编号不能为空")
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in key):
        raise InvalidInput(f"排查计划编号「{key!r}」不能含空白或控制字符")
    if "/" in key or "\\" in key:
        raise InvalidInput(f"排查计划编号「{key}」不能含「/」或「\\」（任务编号为“计划编号/周期”）")
    if len(key) > KEY_MAX:
        raise InvalidInput(f"排查计划编号「{key[:20]}…」过长（最多 {KEY_MAX} 个字符）")
    return key


def _exists(session: Session, key: str) -> bool:
    return session.connection().execute(select(PLAN.c.id).where(PLAN.c.key == key)).first() is not None


def _taken(key: str) -> InvalidInput:
    return InvalidInput(f"排查计划「{key}」已存在")
