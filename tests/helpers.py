"""Small builders for tests: report a hazard and walk it to a given state through the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from states import engine
from states.engine import FireResult
from states.hazard import HAZARD, PLAN_PARTS

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Asia/Shanghai
EVIDENCE = [{"sha256": "a" * 64, "name": "photo.jpg", "size": 10}]
FULL_PLAN = {key: f"{label}：已落实" for key, label in PLAN_PARTS.items()}


def report(session: Session, grade: str = "general", unit: str = "jinhua-team-a",
           actor: str = "sun.banzhang", **extra: Any) -> FireResult:
    data = {"unit": unit, "title": "压力表失效", "category": "thing", "grade": grade, **extra}
    return engine.create(session, HAZARD, actor=actor, data=data, as_of=NOW)


def fire(session: Session, hazard: int | str, event: str, actor: str, **kw: Any) -> FireResult:
    kw.setdefault("as_of", NOW)
    return engine.fire(session, HAZARD, hazard, event, actor=actor, **kw)


def assign(session: Session, hazard: int, owner: str = "sun.banzhang") -> FireResult:
    data = {"owner": owner, "deadline": NOW + timedelta(days=7)}
    return fire(session, hazard, "assign", "li.anquan", data=data)


def walk_to(session: Session, state: str, grade: str = "general") -> int:
    """Create a hazard and drive it to ``state`` with the demo org's people."""
    hid = report(session, grade).entity_id
    if state == "reported":
        return hid
    if state == "cancelled":
        fire(session, hid, "cancel", "li.anquan", comment="误报")
        return hid
    assign(session, hid)
    if state == "planning":
        assert grade == "major"
        return hid
    if grade == "major":
        fire(session, hid, "approve_plan", "wang.zhuren", data=FULL_PLAN)
    if state == "rectifying":
        return hid
    fire(session, hid, "submit", "sun.banzhang")
    if state == "pending_acceptance":
        return hid
    fire(session, hid, "accept", "wang.zhuren")
    assert state == "closed"
    return hid


def table_counts(session: Session) -> dict[str, int]:
    """Row counts of every table, to prove a refused operation wrote nothing."""
    conn = session.connection()
    counts = {
        name: conn.execute(select(func.count()).select_from(table)).scalar_one()
        for name, table in SQLModel.metadata.tables.items()
    }
    session.rollback()
    return counts
