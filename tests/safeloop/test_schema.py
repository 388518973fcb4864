"""The Alembic migrations create exactly the schema the models declare, and guard the trail."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_audit_trail_refuses_update_and_delete(org):
    conn = org.connection()
    with pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("UPDATE audit_entry SET comment = 'x' WHERE seq = 1"))
    org.rollback()
    conn = org.connection()
    with pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM audit_entry WHERE seq = 1"))
    org.rollback()
