"""Engine and session factory: SQLite (WAL, immediate write transactions) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

SCHEMA_MARKER = "alembic_version"  # written by every migration run, never by anything else


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


READ_ONLY = "safeloop_read_only"  # execution option: this engine's transactions only read


def make_engine(url: str, *, busy_timeout_s: float = 30.0, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and ``BEGIN IMMEDIATE`` so writers queue, not deadlock."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if is_sqlite(url):
        connect_args = {"timeout": busy_timeout_s, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, busy_timeout_s)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only engine (``read_only``) begins deferred: WAL readers run side by side and
        # never wait for the write lock; query_only makes a write there fail loudly instead of
        # racing for the lock. The flag stays on the DB-API connection, so it is reset (only
        # then) when the pool hands that connection to a writer.
        info = conn.connection.info
        if conn.get_execution_options().get(READ_ONLY):
            if not info.get(READ_ONLY):
                conn.exec_driver_sql("PRAGMA query_only=1")
                info[READ_ONLY] = True
            conn.exec_driver_sql("BEGIN")
            return
        if info.get(READ_ONLY):
            conn.exec_driver_sql("PRAGMA query_only=0")
            info[READ_ONLY] = False
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def read_only(bind: Engine | Connection) -> Engine | Connection:
    """The same engine (same pool) for work that only reads: on SQLite its transactions begin
    deferred and refuse writes (see ``_configure_sqlite``). Elsewhere, or given one connection
    (a test binding everything to one transaction), the bind as is: a Connection's options
    would change that connection itself."""
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        return bind.execution_options(**{READ_ONLY: True})
    return bind


def schema_ready(bind: Engine | Connection) -> bool:
    """Whether ``safeloop init`` has run here: the migrations' version table holds a revision."""
    if not inspect(bind).has_table(SCHEMA_MARKER):
        return False
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return _has_revision(conn)
    return _has_revision(bind)


def _has_revision(conn: Connection) -> bool:
    return conn.exec_driver_sql(f"SELECT 1 FROM {SCHEMA_MARKER}").first() is not None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC, so make that explicit."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
