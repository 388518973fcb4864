"""Risk grading and control (风险分级管控): risk points and the site-plan areas they lie in.

A risk point's ``state``/``version`` are written only by ``states.engine``. ``grade`` is the
latest evaluation; ``approved_grade`` is the grade in force (the one that decides the control
tier and which inspection checklists carry its measures) until a new evaluation is approved.
``checklist_dirty`` marks points whose approved grade or measures changed since the inspection
checklists were last derived from them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, Float, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=True, index=index)


class SiteArea(SQLModel, table=True):
    """An area of an enterprise's site plan (厂区平面图), drawn on the four-colour map."""

    __tablename__ = "site_area"
    __table_args__ = (UniqueConstraint("enterprise_id", "name", name="uq_site_area_name"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id")
    name: str = Field(max_length=100)
    polygon: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RiskPoint(SQLModel, table=True):
    __tablename__ = "risk_point"
    __table_args__ = (
        Index("ix_risk_point_state_review_due", "state", "review_due"),
        Index("ix_risk_point_dirty", "checklist_dirty", "enterprise_id"),
        Index("ix_risk_point_unit_state", "unit_id", "state", "review_due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")  # indexed with state: ix_*_unit_state
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16, description="facility 设备设施/场所区域 | operation 作业活动")
    area_id: int | None = Field(default=None, foreign_key="site_area.id")
    hazard_factors: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    accident_types: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    consequences: str = Field(default="")
    measures: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    responsible_id: int | None = Field(default=None, foreign_key="person.id")
    contacts: str = Field(default="", max_length=200)
    emergency_contacts: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    state: str = Field(max_length=32)
    version: int = Field(default=1)
    method: str | None = Field(default=None, max_length=8)
    factors: dict | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    score: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    grade: str | None = Field(default=None, max_length=16, index=True)
    evaluated_by_id: int | None = Field(default=None, foreign_key="person.id")
    evaluated_at: datetime | None = Field(default=None, sa_column=_ts())
    approved_grade: str | None = Field(default=None, max_length=16)
    control_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    approved_by_id: int | None = Field(default=None, foreign_key="person.id")
    approved_at: datetime | None = Field(default=None, sa_column=_ts())
    review_due: datetime | None = Field(default=None, sa_column=_ts())
    review_reason: str | None = Field(default=None, max_length=200)
    checklist_dirty: bool = Field(default=False)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
