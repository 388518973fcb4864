"""Transactional outbox: notifications written in the same transaction as the transition.

Sending happens later (flows/notifications); a failed send never undoes a transition.
``recipient`` is a routing spec resolved at dispatch time: ``person:<person id>``,
``role:<role>@unit:<unit id>`` (holders of the role covering that unit), or ``role:<role>``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Text
from sqlmodel import Field, SQLModel


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    audit_seq: int = Field(index=True, sa_type=BigInteger)
    entity_type: str = Field(max_length=32)
    entity_id: int
    event: str = Field(max_length=32)
    recipient: str = Field(max_length=128)
    template: str = Field(max_length=64)
    payload: str = Field(default="{}", sa_type=Text)
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    last_error: str | None = Field(default=None, sa_type=Text)
