"""Transactional outbox: notifications written in the same transaction as the transition.

Sending happens later (flows/notifications); a failed send never undoes a transition.
The dispatcher leases rows (``lease_owner``/``leased_until``) so two dispatchers never work on
the same row, and a killed one's rows are taken over once the lease ends. ``digest_of`` names the
first row of the digest a row was folded into (fixed once formed, so a retry resends the same
digest).
``recipient`` is a routing spec resolved at dispatch time: ``person:<person id>``,
``role:<role>@unit:<unit id>`` (holders of the role covering that unit), or ``role:<role>``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    audit_seq: int = Field(index=True, sa_type=BigInteger)
    entity_type: str = Field(max_length=32)
    entity_id: int
    event: str = Field(max_length=32)
    recipient: str = Field(max_length=128)
    template: str = Field(max_length=64)
    payload: str = Field(default="{}", sa_type=Text)
    status: str = Field(default="pending", max_length=16)  # the prefix of ix_outbox_due
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_type=Text)
    lease_owner: str | None = Field(default=None, max_length=64)
    leased_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    digest_of: int | None = Field(default=None, index=True)
