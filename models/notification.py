"""Delivery records of the notification outbox: one row per message and channel URL.

``key`` (SHA-256 of the message identity and the URL as written in the routing, before secrets
are substituted) is unique, so a message already delivered to a URL is never sent there again,
whichever dispatcher retries it. ``channel`` is the URL with its secrets masked, for display.
A digest (many due-soon reminders to one person) is one message: ``outbox_id`` is its first
outbox row and ``covers`` lists all of them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


def _ts(nullable: bool) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class Delivery(SQLModel, table=True):
    __tablename__ = "notification_delivery"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    covers: str | None = Field(default=None, sa_type=Text, description="JSON list of outbox ids")
    channel: str = Field(max_length=500)
    scheme: str = Field(max_length=32)
    status: str = Field(max_length=16)  # sent | failed
    attempts: int = Field(default=1)
    last_error: str | None = Field(default=None, sa_type=Text)
    first_attempt_at: datetime = Field(sa_column=_ts(False))
    last_attempt_at: datetime = Field(sa_column=_ts(False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(True))
