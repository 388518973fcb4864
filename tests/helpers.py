"""Small builders for tests: report a hazard and walk it to a given state through the engine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from models import AuditEntry
from models.db import make_engine
from models.tables import EVIDENCE as EVIDENCE_TABLE
from safeloop import orgfile
from safeloop.schema import upgrade
from states import engine
from states.engine import FireResult
from states.workflows.hazard import HAZARD, PLAN_PARTS

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Asia/Shanghai
EVIDENCE = [{"sha256": "a" * 64, "name": "photo.jpg", "size": 10}]
FULL_PLAN = {key: f"{label}：已落实" for key, label in PLAN_PARTS.items()}
DEMO_ORG_PATH = Path(__file__).resolve().parents[1] / "safeloop" / "data" / "demo_org.yaml"


# Files the tests cite as evidence, as if uploaded: the engine refuses references to anything
# not in the evidence store (tests/states/test_integrity.py shows that).
SEEDED_EVIDENCE = [
    {"sha256": "a" * 64, "name": "photo.jpg", "size": 10},
    {"sha256": "b" * 64, "name": "评估报告.pdf", "size": 1024},
    {"sha256": "c" * 64, "name": "整改报告.pdf", "size": 2048},
]


def seed_evidence(session: Session) -> None:
    """Register the test evidence files in the store (rows only; no test reads their bytes)."""

    table = EVIDENCE_TABLE
    now = datetime.now(UTC)
    conn = session.connection()
    present = set(conn.execute(select(table.c.sha256)).scalars())
    missing = [e for e in SEEDED_EVIDENCE if e["sha256"] not in present]
    if missing:
        conn.execute(table.insert(), [
            {**e, "stored_path": f"evidence/{e['sha256'][:2]}/{e['sha256']}", "created_at": now}
            for e in missing])
    session.commit()


def report(session: Session, grade: str = "general", unit: str = "jinhua-team-a",
           actor: str = "sun.banzhang", **extra: Any) -> FireResult:
    data = {"unit": unit, "title": "压力表失效", "category": "thing", "grade": grade, **extra}
    return engine.create(session, HAZARD, actor=actor, data=data, as_of=NOW)


def fire(session: Session, hazard: int | str, event: str, actor: str, **kw: Any) -> FireResult:
    kw.setdefault("as_of", NOW)
    return engine.fire(session, HAZARD, hazard, event, actor=actor, **kw)


def assign(session: Session, hazard: int, owner: str = "sun.banzhang") -> FireResult:
    data = {"owner": owner, "deadline": NOW + timedelta(days=7)}
    return fire(session, hazard, "assign", "li.anquan", data=data)


def walk_to(session: Session, state: str, grade: str = "general") -> int:
    """Create a hazard and drive it to ``state`` with the demo org's people."""
    hid = report(session, grade).entity_id
    if state == "reported":
        return hid
    if state == "cancelled":
        fire(session, hid, "cancel", "li.anquan", comment="误报")
        return hid
    assign(session, hid)
    if state == "planning":
        assert grade == "major"
        return hid
    if grade == "major":
        fire(session, hid, "approve_plan", "wang.zhuren", data=FULL_PLAN)
    if state == "rectifying":
        return hid
    fire(session, hid, "submit", "sun.banzhang")
    if state == "pending_acceptance":
        return hid
    fire(session, hid, "accept", "wang.zhuren")
    assert state == "closed"
    return hid


def table_counts(session: Session) -> dict[str, int]:
    """Row counts of every table, to prove a refused operation wrote nothing."""
    conn = session.connection()
    counts = {
        name: conn.execute(select(func.count()).select_from(table)).scalar_one()
        for name, table in SQLModel.metadata.tables.items()
    }
    session.rollback()
    return counts


# ---- added for the rules-table, property, reliability and bad-input tests -------------------

CJK = re.compile(r"[\u4e00-\u9fff]")

# One person per role holding only that role in jinhua-team-a's scope (demo hazards live there).
SOLO_ORG = """\
jurisdictions:
  - {id: xz, name: 忻州市}
  - {id: xz-edz, name: 忻州经济开发区, parent: xz}
people:
  - {id: solo.inspector, name: 单检查, roles: [{role: inspector, unit: jinhua-team-a}]}
  - {id: solo.rectifier, name: 单整改, roles: [{role: rectifier, unit: jinhua-team-a}]}
  - {id: solo.safety, name: 单安全, roles: [{role: safety_officer, unit: jinhua-team-a}]}
  - {id: solo.head, name: 单负责, roles: [{role: unit_head, unit: jinhua-team-a}]}
  - {id: solo.principal, name: 单主要, roles: [{role: principal, unit: jinhua-group}]}
  - {id: solo.regulator, name: 单监管, roles: [{role: regulator, jurisdiction: xz-edz}]}
"""
SOLO_ACTORS: dict[str, str] = {
    "inspector": "solo.inspector",
    "rectifier": "solo.rectifier",
    "safety_officer": "solo.safety",
    "unit_head": "solo.head",
    "principal": "solo.principal",
    "regulator": "solo.regulator",
    "auditor": "he.shenji",  # the demo auditor holds only that role
    "system": engine.SYSTEM_ACTOR,
}


def load_solo_people(session: Session, directory: Path) -> dict[str, str]:
    """Add one single-role person per role (on top of the demo org); returns role -> actor key."""
    path = directory / "solo_org.yaml"
    path.write_text(SOLO_ORG, encoding="utf-8")
    orgfile.load(session, path)
    seed_evidence(session)
    return dict(SOLO_ACTORS)


def is_zh(message: str) -> bool:
    """User-facing messages are zh-CN: they must contain Chinese characters."""
    return bool(CJK.search(message))


@contextmanager
def fresh_database(backend: str, directory: Path, *, with_org: bool = True) -> Iterator[str]:
    """A new migrated database outside the fixtures (one per hypothesis example, say)."""
    pg_url = os.environ.get("SAFELOOP_TEST_DATABASE_URL")
    admin: Engine | None = None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite:///{directory / f'{schema}.db'}"
    else:
        assert pg_url, "SAFELOOP_TEST_DATABASE_URL is not set"
        admin = make_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    eng = make_engine(url)
    try:
        upgrade(eng)
        if with_org:
            with Session(eng, expire_on_commit=False) as s:
                orgfile.load(s, DEMO_ORG_PATH)
                seed_evidence(s)
        eng.dispose()
        yield url
    finally:
        eng.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def audit_count(session: Session) -> int:
    """Rows in the audit trail (rolled back after, like table_counts)."""
    count = session.connection().execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    session.rollback()
    return int(count)


def row_counts(session: Session) -> dict[str, int]:
    """``table_counts`` in one round trip (scalar subqueries), for tests that check it per cell."""
    names = sorted(SQLModel.metadata.tables)
    sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{n}")' for n in names)
    values = session.connection().exec_driver_sql(sql).one()
    session.rollback()
    return {name: int(v) for name, v in zip(names, values, strict=True)}


class TemplateDatabases:
    """Fresh databases for one test, one per hypothesis example say, each with the demo org and
    the solo people, cloned from a template built once by the real migrations and org loader:
    a file copy on SQLite; on PostgreSQL a fresh schema restored from ``pg_dump`` of a template
    schema (about 0.2 s against 1 s or more for migrating and loading again; without pg_dump it
    falls back to exactly that)."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self.name = f"tpl_{uuid.uuid4().hex[:12]}"  # unique token, safe to substitute in a dump
        self.template = directory / f"{self.name}.db"
        self.pg_url = os.environ.get("SAFELOOP_TEST_DATABASE_URL", "")
        self.dump: str | None = None

    def _pg(self) -> Any:
        import psycopg

        return psycopg.connect(self.pg_url, autocommit=True)

    def __enter__(self) -> TemplateDatabases:
        if self.backend == "sqlite":
            url = f"sqlite:///{self.template}"
        elif shutil.which("pg_dump"):
            with self._pg() as conn:
                conn.execute(f"CREATE SCHEMA {self.name}")
            url = f"{self.pg_url}{'&' if '?' in self.pg_url else '?'}options=-csearch_path%3D{self.name}"
        else:
            return self
        eng = make_engine(url)
        try:
            upgrade(eng)
            with Session(eng, expire_on_commit=False) as s:
                orgfile.load(s, DEMO_ORG_PATH)
                load_solo_people(s, self.directory)
        finally:
            eng.dispose()  # on SQLite the last connection checkpoints the WAL into the file
        if self.backend != "sqlite":
            out = subprocess.run(
                ["pg_dump", f"--dbname={self.pg_url}", f"--schema={self.name}", "--no-owner",
                 "--no-privileges", "--inserts"],
                capture_output=True, text=True, check=True).stdout
            self.dump = "\n".join(line for line in out.splitlines() if not line.startswith("\\"))
        return self

    def __exit__(self, *_exc: object) -> None:
        self.template.unlink(missing_ok=True)
        if self.dump is not None:
            with self._pg() as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")

    @contextmanager
    def new(self) -> Iterator[str]:
        if self.backend == "sqlite":
            target = self.directory / f"ex_{uuid.uuid4().hex[:10]}.db"
            shutil.copyfile(self.template, target)
            try:
                yield f"sqlite:///{target}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
        elif self.dump is None:
            with fresh_database(self.backend, self.directory) as url:
                eng = make_engine(url)
                with Session(eng, expire_on_commit=False) as s:
                    load_solo_people(s, self.directory)
                eng.dispose()
                yield url
        else:
            schema = f"ex_{uuid.uuid4().hex[:12]}"
            with self._pg() as conn:
                conn.execute(self.dump.replace(self.name, schema).encode())
            try:
                yield f"{self.pg_url}{'&' if '?' in self.pg_url else '?'}options=-csearch_path%3D{schema}"
            finally:
                with self._pg() as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
