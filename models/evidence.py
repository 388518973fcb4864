"""Evidence files, stored once by the SHA-256 of their content (content addressing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class Evidence(SQLModel, table=True):
    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    name: str = Field(max_length=255)
    stored_path: str = Field(max_length=300, description="relative to the storage folder")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
