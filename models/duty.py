"""Recurring duties (履职任务): one row per duty kind, subject (a unit) and period.

Rows are created set-wise per kind and period (``states.jobs.duties``), coded
``<unit key>/<kind>@<period>`` (one slash, as API paths allow); the unique key
(kind, unit, period) makes reruns create nothing twice. The kind's rules (cadence, role, evidence,
ladder) live in the rule pack (``core.duty_rules``); the row keeps what was true when it was
created: its due moment, responsible role and whether evidence is required.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(index: bool = False, nullable: bool = True) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class Duty(SQLModel, table=True):
    __tablename__ = "duty"
    __table_args__ = (UniqueConstraint("kind", "unit_id", "period_key", name="uq_duty"),
                      Index("ix_duty_unit_state", "unit_id", "state", "due_at"),
                      Index("ix_duty_state_due", "state", "due_at"))

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=160)
    kind: str = Field(max_length=40)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    period_key: str = Field(max_length=16)
    period_end: datetime = Field(sa_column=_ts(nullable=False))
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    role: str = Field(max_length=32)
    evidence_required: bool = Field(default=False)
    state: str = Field(max_length=32)
    version: int = Field(default=1)
    escalation_level: int = Field(default=0)
    reminded_at: datetime | None = Field(default=None, sa_column=_ts())
    done_at: datetime | None = Field(default=None, sa_column=_ts())
    done_by_id: int | None = Field(default=None, foreign_key="person.id")
    late: bool = Field(default=False)
    missed_at: datetime | None = Field(default=None, sa_column=_ts())
    batch: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
