"""Reading requests never wait for the write lock (SQLite: the read-only engine's deferred
transactions in WAL), may not write, and still record a credential's use beside their read."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import make_engine, read_only
from models.tables import API_TOKEN, AUDIT_ENTRY
from safeloop.api.admission import Gates, gates_for
from tests.api.conftest import auth


def test_a_read_answers_while_a_writer_holds_the_lock(client: TestClient, engine: Engine,
                                                      db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL readers never wait for writers")
    client.get("/api/v1/hazard", headers=auth("li.anquan"))  # the token's use recorded: no write now
    holder = make_engine(db_url, busy_timeout_s=1)
    with holder.connect() as conn:
        conn.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock, held until rollback
        conn.execute(update(API_TOKEN).values(name=API_TOKEN.c.name))
        started = time.perf_counter()
        listed = client.get("/api/v1/hazard", headers=auth("li.anquan"))
        inbox = client.get("/api/v1/inbox", headers=auth("li.anquan"))
        waited = time.perf_counter() - started
        conn.rollback()
    holder.dispose()
    assert listed.status_code == 200 and inbox.status_code == 200, (listed.text, inbox.text)
    assert waited < 5, f"the reads waited {waited:.1f} s for the writer"  # busy timeout is 30 s


def test_the_read_only_engine_refuses_writes(engine: Engine, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("only SQLite's engine has a read-only form")
    with Session(read_only(engine)) as session:
        assert session.execute(select(func.count()).select_from(AUDIT_ENTRY)).scalar() is not None
        with pytest.raises(Exception, match="readonly"):
            session.execute(update(API_TOKEN).values(name="x"))
        session.rollback()
    with Session(engine) as session:  # the same pooled connection writes again afterwards
        session.execute(update(API_TOKEN).values(name=API_TOKEN.c.name))
        session.commit()


def test_a_read_records_the_tokens_use_once_a_minute(client: TestClient, engine: Engine) -> None:
    def uses() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AUDIT_ENTRY).where(
                AUDIT_ENTRY.c.event == "token_use", AUDIT_ENTRY.c.entity_code == "li.anquan")).scalar_one())

    before = uses()
    with engine.begin() as conn:  # the last use over a minute ago: the next request records one
        conn.execute(text("UPDATE api_token SET last_used_at = :t"), {"t": "2000-01-01 00:00:00"})
    assert client.get("/api/v1/hazard", headers=auth("li.anquan")).status_code == 200
    assert client.get("/api/v1/inbox", headers=auth("li.anquan")).status_code == 200
    assert uses() == before + 1


def test_gates_leave_room_for_a_readers_second_connection(engine: Engine) -> None:
    gates = gates_for(engine)
    assert gates.reads * 2 + gates.writes <= 15
    if engine.dialect.name == "sqlite":
        assert gates == Gates(reads=7, writes=1)
