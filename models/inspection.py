"""Inspection tables: versioned checklist templates, plans (who inspects what, how often) and
the tasks materialised from them, one per plan per period (unique on plan + period).

A task's ``code`` is ``<plan key>/<period key>`` so it can be computed set-wise by
INSERT … SELECT; ``batch`` names the materialisation run whose audit row covers its creation.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Date, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class ChecklistTemplate(SQLModel, table=True):
    __tablename__ = "checklist_template"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_template_version"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    version: int
    name: str = Field(max_length=200)
    tier: str = Field(max_length=16)
    source: str = Field(default="", description="where the items come from (citation)")
    sha256: str = Field(max_length=64, description="hash of the file content loaded")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ChecklistItem(SQLModel, table=True):
    __tablename__ = "checklist_item"
    __table_args__ = (UniqueConstraint("template_id", "code", name="uq_item_code"),)

    id: int | None = Field(default=None, primary_key=True)
    template_id: int = Field(foreign_key="checklist_template.id")
    position: int
    code: str = Field(max_length=64)
    text: str
    basis: str = Field(default="", description="the standard or rule the item checks against")
    category: str = Field(max_length=16, description="hazard category a failure implies")
    grade_if_failed: str = Field(default="general", max_length=16)
    risk_point_id: int | None = Field(default=None, description="set on risk-derived items")


class InspectionPlan(SQLModel, table=True):
    __tablename__ = "inspection_plan"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    tier: str = Field(max_length=16)
    cadence: str = Field(max_length=16, index=True)
    template_id: int = Field(foreign_key="checklist_template.id")
    # The plan's own template when ``template_id`` is one derived from it plus risk measures.
    base_template_id: int | None = Field(default=None, foreign_key="checklist_template.id")
    assignee_id: int | None = Field(default=None, foreign_key="person.id")
    assignee_role: str | None = Field(default=None, max_length=32)
    calendar_mode: str = Field(default="all_days", max_length=16)
    source: str = Field(default="inspection", max_length=16,
                        description="hazard source for failed items: inspection or regulator")
    annual_plan_id: int | None = Field(default=None, foreign_key="annual_plan.id")
    active_from: date = Field(sa_column=Column(Date, nullable=False))
    active_until: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class InspectionTask(SQLModel, table=True):
    __tablename__ = "inspection_task"
    __table_args__ = (
        UniqueConstraint("plan_id", "period_key", name="uq_task_plan_period"),
        Index("ix_task_state_period_end", "state", "period_end"),
        Index("ix_inspection_task_unit_state", "unit_id", "state", "period_end"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=100)
    plan_id: int = Field(foreign_key="inspection_plan.id")
    period_key: str = Field(max_length=32)
    period_start: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    period_end: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    unit_id: int = Field(foreign_key="unit.id")  # indexed with state: ix_*_unit_state
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    template_id: int = Field(foreign_key="checklist_template.id")
    assignee_id: int | None = Field(default=None, foreign_key="person.id")
    state: str = Field(max_length=32)
    version: int = Field(default=1)
    inspector_id: int | None = Field(default=None, foreign_key="person.id")
    reviewer_id: int | None = Field(default=None, foreign_key="person.id")
    results: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    started_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    submitted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    reviewed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    batch: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class InspectionDraft(SQLModel, table=True):
    """One checklist item's answer while the inspector is still filling the list in (web app).

    Not business state: the engine never reads it and the trail does not record it; the task's
    results are what the ``submit`` event carries. One row per task and item, overwritten on
    each save, so a reloaded page shows the draft and its size is bounded by the checklist.
    """

    __tablename__ = "inspection_draft"
    __table_args__ = (UniqueConstraint("task_id", "item", name="uq_draft_task_item"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="inspection_task.id")
    item: str = Field(max_length=64)
    outcome: str = Field(max_length=8)
    note: str = Field(default="", max_length=2000)
    evidence: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    person_id: int = Field(foreign_key="person.id")
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
