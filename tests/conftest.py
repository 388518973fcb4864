"""Shared fixtures: a migrated database on a real SQLite file and, when
``SAFELOOP_TEST_DATABASE_URL`` is set, the same tests again on PostgreSQL (a fresh schema each).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import make_engine
from safeloop import orgfile
from safeloop.schema import upgrade
from tests.helpers import seed_evidence
from tests.worktree_guard import working_tree_unchanged  # noqa: F401  (session-wide, autouse)

# The suite's scenarios run on fixed dates (2026-11-02 …): it is a simulation, so it says so
# with the product's explicit switch, as the demo and imports do; tests of the real clock
# (tests/states/test_integrity.py) turn it off.
os.environ.setdefault("SAFELOOP_SIMULATE_TIME", "true")
PG_URL = os.environ.get("SAFELOOP_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
DEMO_ORG = Path(__file__).resolve().parents[1] / "safeloop" / "data" / "demo_org.yaml"


def _pg_url_with_schema(schema: str) -> str:
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty, migrated database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'safeloop.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL or "")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = _pg_url_with_schema(schema)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def org(session: Session) -> Session:
    """The demo organisation loaded; returns the session for convenience."""
    orgfile.load(session, DEMO_ORG)
    seed_evidence(session)
    return session
