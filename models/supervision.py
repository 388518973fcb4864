"""The regulator's side: listed supervision of major hazards (挂牌督办), orders to suspend
production (责令停产停业整顿) and annual supervision-inspection plans (年度监督检查计划).

A listing carries its statutory duties as due/done/overdue column triples (filing, publication,
progress reports, extension decisions, on-site verification, delisting publication), so the
deadline sweep finds every missed duty with one indexed query per duty.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def _ts(index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=True, index=index)


# A hazard has at most one listing that is not delisted (the terminal state): refused by the
# propose guard, and by the database when two proposals race.
OPEN_LISTING = text("state <> 'delisted'")


class Listing(SQLModel, table=True):
    __table_args__ = (Index("uq_listing_open_hazard", "hazard_id", unique=True,
                            postgresql_where=OPEN_LISTING, sqlite_where=OPEN_LISTING),
                      Index("ix_listing_unit_state", "unit_id", "state", "deadline"))

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")  # indexed with state: ix_*_unit_state
    department_id: int | None = Field(default=None, foreign_key="department.id")
    state: str = Field(max_length=32, index=True)
    version: int = Field(default=1)
    escalation_level: int = Field(default=0)
    progress_every_days: int = Field(default=20, description="working days between reports")
    deadline: datetime | None = Field(default=None, sa_column=_ts(index=True))
    listed_at: datetime | None = Field(default=None, sa_column=_ts())
    file_due: datetime | None = Field(default=None, sa_column=_ts(index=True))
    filed_at: datetime | None = Field(default=None, sa_column=_ts())
    file_overdue_at: datetime | None = Field(default=None, sa_column=_ts())
    publish_due: datetime | None = Field(default=None, sa_column=_ts(index=True))
    published_at: datetime | None = Field(default=None, sa_column=_ts())
    publish_overdue_at: datetime | None = Field(default=None, sa_column=_ts())
    progress_due: datetime | None = Field(default=None, sa_column=_ts(index=True))
    last_progress_at: datetime | None = Field(default=None, sa_column=_ts())
    progress_overdue_at: datetime | None = Field(default=None, sa_column=_ts())
    requested_deadline: datetime | None = Field(default=None, sa_column=_ts())
    extension_due: datetime | None = Field(default=None, sa_column=_ts(index=True))
    extension_overdue_at: datetime | None = Field(default=None, sa_column=_ts())
    delisting_requested_at: datetime | None = Field(default=None, sa_column=_ts())
    verification_due: datetime | None = Field(default=None, sa_column=_ts(index=True))
    verification_overdue_at: datetime | None = Field(default=None, sa_column=_ts())
    delisted_at: datetime | None = Field(default=None, sa_column=_ts())
    delist_publish_due: datetime | None = Field(default=None, sa_column=_ts(index=True))
    delist_published_at: datetime | None = Field(default=None, sa_column=_ts())
    delist_publish_overdue_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SuspensionOrder(SQLModel, table=True):
    __tablename__ = "suspension_order"
    __table_args__ = (Index("ix_suspension_order_unit_state", "unit_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")  # indexed with state: ix_*_unit_state
    hazard_id: int | None = Field(default=None, foreign_key="hazard.id")
    state: str = Field(max_length=32, index=True)
    version: int = Field(default=1)
    reason: str = Field(default="")
    scope: str = Field(default="full", max_length=16, description="full 全部 / partial 部分")
    ordered_at: datetime | None = Field(default=None, sa_column=_ts())
    resumption_requested_at: datetime | None = Field(default=None, sa_column=_ts())
    resumed_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AnnualPlan(SQLModel, table=True):
    __tablename__ = "annual_plan"
    __table_args__ = (UniqueConstraint("jurisdiction_id", "department_id", "year",
                                       name="uq_annual_plan"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id")
    department_id: int | None = Field(default=None, foreign_key="department.id")
    year: int
    state: str = Field(max_length=32, index=True)
    version: int = Field(default=1)
    entries: list | None = Field(default=None, sa_column=Column(JSON))  # type: ignore[type-arg]
    filed_at: datetime | None = Field(default=None, sa_column=_ts())
    activated_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class StatReport(SQLModel, table=True):
    """A due hazard-statistics report (隐患排查治理统计): quarterly by the 15th of the month after
    the quarter, yearly by 31 January, signed by the principal; created set-wise per period."""

    __tablename__ = "stat_report"
    __table_args__ = (UniqueConstraint("enterprise_id", "period_key", name="uq_stat_report"),
                      Index("ix_stat_report_unit_state", "unit_id", "state", "due_at"))

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=100)
    enterprise_id: int = Field(foreign_key="enterprise.id")
    unit_id: int = Field(foreign_key="unit.id")
    period_key: str = Field(max_length=16)
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    state: str = Field(max_length=32, index=True)
    version: int = Field(default=1)
    submitted_at: datetime | None = Field(default=None, sa_column=_ts())
    signed_by_id: int | None = Field(default=None, foreign_key="person.id")
    batch: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
