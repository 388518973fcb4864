"""Simulate a development zone day by day: the real Prefect flows run with ``as_of`` each day,
inspectors complete most tasks, some are missed, failed items become hazards that move through
their lifecycle, overdue ones are escalated. Seeded, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlmodel import Session

from core.errors import SafeloopError
from models import ChecklistItem, Hazard, InspectionPlan, InspectionTask, Person, RoleGrant, Unit
from models.db import as_utc
from states import engine
from states.workflows.hazard import HAZARD, PLAN_PARTS
from states.workflows.inspection import INSPECTION

INSPECTORS = ("inspector", "unit_head", "safety_officer", "principal")
REVIEWERS = ("safety_officer", "unit_head", "principal")
MANAGERS = ("safety_officer", "unit_head", "principal")
RECTIFIERS = ("rectifier", "unit_head")
# chance per day that a task of this cadence is done (daily tasks: once, on their day)
DAILY_CHANCE = {"daily": 0.85, "weekly": 0.3, "monthly": 0.15, "quarterly": 0.08}
FAIL_CHANCE = {"general": 0.03, "major": 0.004}
NOTES = ("现场检查发现不符合要求", "记录缺失，未按规定填写", "设施损坏未及时维修", "人员未按规程作业",
         "警示标识缺失", "防护装置被拆除")


@dataclass
class Stats:
    actions: Counter[str] = field(default_factory=Counter)
    refusals: int = 0
    flow_runs: int = 0


@dataclass
class World:
    """Who may act where: person keys per (unit id, role), from the role grants and unit paths."""

    session: Session
    zone: ZoneInfo
    rng: random.Random
    people: dict[tuple[int, str], list[str]]
    keys: dict[int, str]
    items: dict[int, list[tuple[str, str]]]  # template id -> (code, grade_if_failed)
    stats: Stats = field(default_factory=Stats)

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), self.zone).astimezone(UTC)

    def pick(self, unit_id: int, roles: tuple[str, ...], exclude: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
        for role in roles:
            candidates = [p for p in self.people.get((unit_id, role), []) if p not in exclude]
            if candidates:
                return self.rng.choice(candidates)
        return None

    def checklist(self, template_id: int) -> list[tuple[str, str]]:
        """A template's items; risk-derived templates appear as the days go by, so load late."""
        if template_id not in self.items:
            self.items[template_id] = [tuple(r) for r in self.session.connection().execute(  # type: ignore[misc]
                select(ChecklistItem.code, ChecklistItem.grade_if_failed)  # type: ignore[call-overload]
                .where(ChecklistItem.template_id == template_id).order_by(ChecklistItem.position))]
            self.session.rollback()
        return self.items[template_id]

    def act(self, label: str, action: Callable[[], Any]) -> Any:
        try:
            result = action()
        except SafeloopError:
            self.stats.refusals += 1
            return None
        self.stats.actions[label] += 1
        return result


def build_world(session: Session, zone: str, seed: int) -> World:
    conn = session.connection()
    units = {u.id: u.path for u in conn.execute(select(Unit.id, Unit.path))}  # type: ignore[call-overload]
    keys = {p.id: p.key for p in conn.execute(select(Person.id, Person.key))}  # type: ignore[call-overload]
    people: dict[tuple[int, str], list[str]] = defaultdict(list)
    for grant in conn.execute(select(RoleGrant.person_id, RoleGrant.role, RoleGrant.unit_id)):  # type: ignore[call-overload]
        if grant.unit_id is None:
            continue
        for unit_id, path in units.items():
            if f"/{grant.unit_id}/" in path:
                people[(unit_id, grant.role)].append(keys[grant.person_id])
    items: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for row in conn.execute(select(ChecklistItem.template_id, ChecklistItem.code,  # type: ignore[call-overload]
                                   ChecklistItem.grade_if_failed).order_by(ChecklistItem.position)):
        items[row.template_id].append((row.code, row.grade_if_failed))
    session.rollback()
    return World(session, ZoneInfo(zone), random.Random(seed), dict(people), keys, dict(items))


def simulate(session: Session, console: Console, *, start: date, days: int, database_url: str,
             zone: str = "Asia/Shanghai", seed: int = 20201,
             checkpoint_file: str | None = None) -> Stats:
    """Run ``days`` days: materialise in the morning, people act, sweep in the evening."""
    from flows.common import prefect_defaults, use_database

    prefect_defaults()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.audit_checkpoint import audit_checkpoint
    from flows.materialize_inspections import materialize_inspections
    from flows.sweep_deadlines import sweep_deadlines

    world = build_world(session, zone, seed)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
            use_database(database_url), Progress(*columns, console=console) as progress:
        bar = progress.add_task("模拟运行（Prefect 流程逐日运行）", total=days)
        for offset in range(days):
            day = start + timedelta(days=offset)
            progress.update(bar, description=f"模拟 {day:%Y-%m-%d}")
            materialize_inspections(as_of=world.at(day, 0, 5))
            _inspect(world, day)
            _review(world, day)
            _work_hazards(world, day)
            sweep_deadlines(as_of=world.at(day, 18))
            world.stats.flow_runs += 2
            if offset % 7 == 6 or offset == days - 1:
                audit_checkpoint(as_of=world.at(day, 23, 30), checkpoint_file=checkpoint_file)
                world.stats.flow_runs += 1
            progress.advance(bar)
    return world.stats


def _open_tasks(world: World, day: date) -> list[Any]:
    moment = world.at(day, 9)
    rows = world.session.connection().execute(
        select(InspectionTask.id, InspectionTask.unit_id, InspectionTask.template_id,  # type: ignore[call-overload]
               InspectionTask.assignee_id, InspectionPlan.cadence)
        .join(InspectionPlan, InspectionPlan.id == InspectionTask.plan_id)
        .where(InspectionTask.state.in_(("scheduled", "in_progress")),  # type: ignore[attr-defined]
               InspectionTask.period_start <= moment, InspectionTask.period_end > moment)
        .order_by(InspectionTask.id)).all()
    world.session.rollback()
    return rows


def _inspect(world: World, day: date) -> None:
    for task in _open_tasks(world, day):
        if world.rng.random() > DAILY_CHANCE.get(task.cadence, 0.1):
            continue
        inspector = world.keys.get(task.assignee_id) or world.pick(task.unit_id, INSPECTORS)
        if inspector is None:
            continue
        moment = world.at(day, world.rng.randint(9, 16), world.rng.randint(0, 59))
        results = []
        for code, grade in world.checklist(task.template_id):
            if world.rng.random() < FAIL_CHANCE[grade]:
                results.append({"item": code, "outcome": "fail",
                                "note": world.rng.choice(NOTES)})
            else:
                results.append({"item": code, "outcome": "pass"})
        world.act("开始检查", lambda t=task, i=inspector, m=moment: engine.fire(
            world.session, INSPECTION, t.id, "start", actor=i, as_of=m))
        world.act("提交检查结果", lambda t=task, i=inspector, m=moment, r=results: engine.fire(
            world.session, INSPECTION, t.id, "submit", actor=i, as_of=m + timedelta(minutes=40),
            data={"results": r}))


def _review(world: World, day: date) -> None:
    rows = world.session.connection().execute(
        select(InspectionTask.id, InspectionTask.unit_id, InspectionTask.inspector_id)  # type: ignore[call-overload]
        .where(InspectionTask.state == "submitted").order_by(InspectionTask.id)).all()
    world.session.rollback()
    for task in rows:
        if world.rng.random() > 0.8:
            continue
        reviewer = world.pick(task.unit_id, REVIEWERS, {world.keys.get(task.inspector_id, "")})
        if reviewer is None:
            continue
        world.act("审核", lambda t=task, r=reviewer: engine.fire(
            world.session, INSPECTION, t.id, "review", actor=r, as_of=world.at(day, 17)))


def _work_hazards(world: World, day: date) -> None:
    rows = world.session.connection().execute(
        select(Hazard.id, Hazard.unit_id, Hazard.state, Hazard.grade, Hazard.owner_id,  # type: ignore[call-overload]
               Hazard.rectifier_id, Hazard.deadline)
        .where(Hazard.state.in_(("reported", "planning", "rectifying", "pending_acceptance")))  # type: ignore[attr-defined]
        .order_by(Hazard.id)).all()
    world.session.rollback()
    for h in rows:
        _advance(world, day, h)


def _advance(world: World, day: date, h: Any) -> None:
    rng = world.rng
    at = world.at(day, rng.randint(10, 16))

    def go(label: str, event: str, actor: str | None, **kw: Any) -> None:
        if actor is not None:
            world.act(label, lambda: engine.fire(world.session, HAZARD, h.id, event,
                                                 actor=actor, as_of=at, **kw))

    if h.state == "reported" and rng.random() < 0.8:
        owner = world.pick(h.unit_id, RECTIFIERS)
        deadline = world.at(day + timedelta(days=rng.randint(2, 8)), 18)
        go("分派整改", "assign", world.pick(h.unit_id, MANAGERS),
           data={"owner": owner, "deadline": deadline})
    elif h.state == "planning":
        plan = {key: f"{label}：已落实（模拟）" for key, label in PLAN_PARTS.items()}
        go("批准治理方案", "approve_plan", world.pick(h.unit_id, ("principal",)), data=plan)
    elif h.state == "rectifying" and rng.random() < 0.3:
        owner = world.keys.get(h.owner_id)
        go("提交验收", "submit", owner, data={"measures": "已按要求整改（模拟）"})
    elif h.state == "pending_acceptance":
        exclude = {world.keys.get(h.rectifier_id, "")}
        roles = ("principal",) if h.grade == "major" else MANAGERS
        acceptor = world.pick(h.unit_id, roles, exclude)
        roll = rng.random()
        if roll < 0.75:
            go("验收销号", "accept", acceptor)
        elif roll < 0.85:
            go("验收不通过", "reject", acceptor, comment="整改不彻底，退回（模拟）")


def summary_rows(session: Session, end: datetime) -> dict[str, Any]:
    """Completion per tier and hazard outcomes for the closing table."""
    conn = session.connection()
    tiers: dict[str, Counter[str]] = defaultdict(Counter)
    for tier, state in conn.execute(
        select(InspectionPlan.tier, InspectionTask.state)  # type: ignore[call-overload]
        .join(InspectionPlan, InspectionPlan.id == InspectionTask.plan_id)
    ):
        tiers[tier][state] += 1
    hazards = Counter()
    overdue = 0
    for state, deadline in conn.execute(select(Hazard.state, Hazard.deadline)):  # type: ignore[call-overload]
        hazards[state] += 1
        if state in ("planning", "rectifying") and deadline and as_utc(deadline) < end:
            overdue += 1
    session.rollback()
    return {"tiers": tiers, "hazards": hazards, "overdue": overdue}
