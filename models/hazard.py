"""The hazard ledger (隐患台账): one row per hazard with the fields 原安监总局令第16号 asks for.

``state`` and ``version`` are written only by ``states.engine``; everything else that an event
changes is recorded in that event's audit data, so the ledger can be replayed from the trail.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Column, DateTime, Index, Numeric, text
from sqlmodel import Field, SQLModel


def _ts(**kw: object) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), **kw)  # type: ignore[arg-type]


# The hazards the overdue sweep may still escalate: not yet at the top level (3), by state and
# deadline as ix_hazard_state_deadline. The sweep's query repeats this text word for word, so
# SQLite and PostgreSQL both see it implies the partial index's condition (a bound parameter in
# its place would not), and SQLite then prefers it over the full index of the same columns.
OVERDUE_CANDIDATES = "escalation_level < 3"


class Hazard(SQLModel, table=True):
    __table_args__ = (Index("ix_hazard_state_deadline", "state", "deadline"),
                      Index("ix_hazard_unit_state", "unit_id", "state", "deadline"),
                      Index("ix_hazard_overdue", "state", "deadline",
                            sqlite_where=text(OVERDUE_CANDIDATES),
                            postgresql_where=text(OVERDUE_CANDIDATES)))

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=32)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")  # indexed with state: ix_*_unit_state
    title: str = Field(max_length=200)
    description: str = Field(default="")
    category: str = Field(max_length=16)
    grade: str = Field(max_length=16)
    location: str = Field(default="", max_length=200)
    source: str = Field(default="ad_hoc", max_length=16)
    state: str = Field(max_length=32)  # indexed as the prefix of ix_hazard_state_deadline
    version: int = Field(default=1)
    found_at: datetime = Field(sa_column=_ts(nullable=False))
    finder_id: int = Field(foreign_key="person.id")
    owner_id: int | None = Field(default=None, foreign_key="person.id")
    acceptor_id: int | None = Field(default=None, foreign_key="person.id")
    rectifier_id: int | None = Field(default=None, foreign_key="person.id")
    measures: str = Field(default="")
    funds: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    deadline: datetime | None = Field(default=None, sa_column=_ts(nullable=True, index=True))
    plan: dict | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    reinspected_by_id: int | None = Field(default=None, foreign_key="person.id")
    reinspected_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    accepted_by_id: int | None = Field(default=None, foreign_key="person.id")
    accepted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    escalation_level: int = Field(default=0)
    due_reminded_for: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="the deadline last reminded of")
    cancel_reason: str | None = Field(default=None)
    inspection_task_id: int | None = Field(default=None, index=True)
    listing_id: int | None = Field(default=None, index=True)
    checklist_item: str | None = Field(default=None, max_length=64)
    risk_point_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
