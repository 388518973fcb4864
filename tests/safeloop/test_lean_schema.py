"""Migration 0012 (lean audit schema) keeps an existing chain whole: it still verifies, the trail
stays append-only, the head still moves only forward, and the engine appends after it."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session

from safeloop import orgfile
from safeloop.schema import alembic_config, upgrade
from states.audit import verify
from tests.conftest import DEMO_ORG
from tests.helpers import assign, fire, report, seed_evidence


def _migrate(engine, revision: str, down: bool = False) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def test_existing_chain_survives_the_lean_migration(engine):
    _migrate(engine, "0011", down=True)
    with Session(engine, expire_on_commit=False) as s:
        orgfile.load(s, DEMO_ORG)
        seed_evidence(s)
        for _ in range(3):
            hid = report(s).entity_id
            assign(s, hid)
            fire(s, hid, "submit", "sun.banzhang")
        before = verify(s.connection())
        s.rollback()
    assert before.ok and before.count >= 10
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as s:
        conn = s.connection()
        after = verify(conn)
        assert after.to_dict() == before.to_dict()
        if engine.dialect.name == "sqlite":  # seq is the rowid: no index of its own
            names = {r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'audit_entry'"))}
            assert not any(n.startswith("sqlite_autoindex") for n in names)
        assert inspect(conn).get_unique_constraints("audit_entry") == []
        s.rollback()
        with pytest.raises(DatabaseError, match="append-only"):
            s.connection().execute(text("DELETE FROM audit_entry WHERE seq = 1"))
        s.rollback()
        with pytest.raises(DatabaseError, match="only moves forward"):
            s.connection().execute(text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1"))
        s.rollback()
        assign(s, report(s).entity_id)
        grown = verify(s.connection())
        assert grown.ok and grown.count == before.count + 2
        s.rollback()
    _migrate(engine, "0011", down=True)  # and back: the old shape holds the same chain
    with engine.connect() as conn:
        assert verify(conn).ok
