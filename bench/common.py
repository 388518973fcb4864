"""What every benchmark shares: scratch SQLite files, set-wise seeding, timing, profiling, results.

Seeding goes set-wise through Core plus ``states.audit.append`` (so the seeded rows carry a genuine,
verifiable chain) because creating tens of thousands of hazards through ``engine.create`` would
dominate the runtime budget without measuring anything the benchmarks are about.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import make_engine
from models.tables import HAZARD as HAZARD_TABLE
from models.tables import PERSON as PERSON_TABLE
from models.tables import UNIT as UNIT_TABLE
from safeloop import orgfile
from safeloop.schema import upgrade
from states import audit
from states.workflows.hazard import AssignParams, ReportParams

ROOT = Path(__file__).resolve().parents[1]
DEMO_ORG = ROOT / "safeloop" / "data" / "demo_org.yaml"

SEED_AT = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Asia/Shanghai
UNIT_KEY = "jinhua-team-a"
OWNER = "sun.banzhang"  # inspector + rectifier in jinhua-team-a: reports, owns and submits
MANAGER = "li.anquan"  # safety officer of the plant above: assigns and rejects
REJECT_REASON = "复查未通过：密封件未更换，压力表读数仍异常"
_SEED_CHUNK = 10_000
_PRIOR_CHUNK = 50_000


@dataclass
class Options:
    """Run-wide choices ``bench.run`` sets from its command line, read by the engine benchmarks."""

    db_url: str | None = None  # a PostgreSQL URL: engine benchmarks that support it run there
    prior_audit: int = 0  # audit rows chained before the measured events (production's trail)


OPTIONS = Options()


@dataclass
class Result:
    """One benchmark's figures; rates are derived so the table and the verdict cannot disagree."""

    name: str
    n: int
    seconds: float
    baseline_seconds: float
    target_rate: float
    target_ratio: float | None = None
    notes: str = ""
    cpu_ratio: float | None = None  # the same ratio over CPU time, for a loaded machine
    max_seconds: float | None = None  # a wall-clock budget for one run of the measured code
    max_extra_seconds: float | None = None  # seconds - baseline_seconds must stay within this
    p99_ms: float | None = None  # a latency benchmark's 99th percentile (bench/api.py)
    max_p99_ms: float | None = None  # …and its budget

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else float("inf")

    @property
    def baseline_rate(self) -> float:
        return self.n / self.baseline_seconds if self.baseline_seconds else float("inf")

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate if self.baseline_rate else 0.0

    @classmethod
    def of(cls, name: str, n: int, measured: Stopwatch, baseline: Stopwatch, target_rate: float,
           target_ratio: float | None = None, notes: str = "", *, runs: int = 1,
           max_seconds: float | None = None, max_extra_seconds: float | None = None) -> Result:
        """``runs`` laps of ``n`` items each: the seconds shown are the mean of one run."""
        cpu_ratio = (baseline.cpu_seconds / measured.cpu_seconds
                     if measured.cpu_seconds and baseline.cpu_seconds else None)
        return cls(name, n, measured.seconds / runs, baseline.seconds / runs, target_rate,
                   target_ratio, notes, cpu_ratio, max_seconds, max_extra_seconds)

    @property
    def passed(self) -> bool:
        if self.rate < self.target_rate:
            return False
        if self.target_ratio is not None and self.ratio < self.target_ratio:
            return False
        if self.max_seconds is not None and self.seconds > self.max_seconds:
            return False
        if self.max_p99_ms is not None and (self.p99_ms is None or self.p99_ms > self.max_p99_ms):
            return False
        return (self.max_extra_seconds is None
                or self.seconds - self.baseline_seconds <= self.max_extra_seconds)

    @property
    def target(self) -> str:
        """Rate targets read as rates; time budgets (``max_*``) read as seconds and slowdowns."""
        timed = (self.max_seconds is not None or self.max_extra_seconds is not None
                 or self.max_p99_ms is not None)
        parts = [f">= {self.target_rate:,.0f}/s"] if self.target_rate or not timed else []
        if self.max_seconds is not None:
            parts.append(f"<= {self.max_seconds:g} s")
        if self.target_ratio is not None:
            parts.append(f"<= {1 / self.target_ratio:.3g}x baseline time" if timed
                         else f">= {self.target_ratio:.0%} of baseline")
        if self.max_extra_seconds is not None:
            parts.append(f"<= baseline + {self.max_extra_seconds:g} s")
        if self.max_p99_ms is not None:
            parts.append(f"p99 <= {self.max_p99_ms:g} ms")
        return ", ".join(parts)


@contextmanager
def scratch_dir(tag: str) -> Iterator[Path]:
    """A temporary folder for one benchmark's database files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"safeloop-bench-{tag}-") as name:
        yield Path(name)


TODAY = "0011"  # the schema before issue 16's lean migration: "today's" engine and baseline run on it


def new_database(path: Path, *, with_org: bool = True, revision: str = "head") -> Engine:
    """A migrated SQLite file (WAL, synchronous=NORMAL via make_engine), demo org loaded."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, revision)
    if with_org:
        with Session(engine, expire_on_commit=False) as session:
            orgfile.load(session, DEMO_ORG)
    return engine


def raw_connect(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection configured exactly like ``models.db.make_engine`` does it."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def clone_database(engine: Engine, src: Path, dst: Path) -> None:
    """Copy a seeded file (WAL checkpointed first) so the baseline starts from identical data."""
    engine.dispose()
    copy_database(src, dst)


def copy_database(src: Path, dst: Path) -> None:
    """Copy a file nobody holds open any more, its WAL checkpointed into it first."""
    conn = raw_connect(src)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(src, dst)


def upgrade_file(path: Path) -> None:
    """Bring a scratch file's schema to head (as ``safeloop init`` on an existing database)."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def remove_database(path: Path) -> None:
    """Delete a scratch file with its WAL and shared-memory files (big fixtures fill /tmp)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def seed_rectifying(engine: Engine, count: int) -> list[int]:
    """Insert ``count`` general hazards in ``rectifying`` with their report and assign audit rows.

    The rows look as if ``engine.create`` and ``assign`` had made them (version 2, owner set, the
    same audit data), so the chain verifies and the benchmarks start from a realistic ledger.
    """
    deadline = SEED_AT + timedelta(days=7)
    report_data = audit.canonical_data(
        ReportParams(unit=UNIT_KEY, title="压力表失效", category="thing", grade="general")
        .model_dump(mode="json", exclude_none=True)
    )
    assign_data = audit.canonical_data(
        AssignParams(owner=OWNER, deadline=deadline).model_dump(mode="json", exclude_none=True)
    )
    at = audit.format_at(SEED_AT)
    ids: list[int] = []
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        people = dict(conn.execute(select(PERSON_TABLE.c.key, PERSON_TABLE.c.id)).all())
        unit_id, enterprise_id = conn.execute(
            select(UNIT_TABLE.c.id, UNIT_TABLE.c.enterprise_id).where(UNIT_TABLE.c.key == UNIT_KEY)
        ).one()
        first = (conn.execute(select(HAZARD_TABLE.c.id).order_by(HAZARD_TABLE.c.id.desc())).scalar()
                 or 0) + 1
        for start in range(first, first + count, _SEED_CHUNK):
            chunk = range(start, min(start + _SEED_CHUNK, first + count))
            rows = [
                {
                    "id": i, "code": f"YH-{i:06d}", "enterprise_id": enterprise_id,
                    "unit_id": unit_id, "title": "压力表失效", "description": "", "category": "thing",
                    "grade": "general", "location": "", "source": "ad_hoc", "state": "rectifying",
                    "version": 2, "found_at": SEED_AT, "finder_id": people[OWNER],
                    "owner_id": people[OWNER], "measures": "", "deadline": deadline,
                    "escalation_level": 0, "created_at": SEED_AT, "updated_at": SEED_AT,
                }
                for i in chunk
            ]
            conn.execute(insert(HAZARD_TABLE), rows)
            entries = [
                audit.PendingEntry("hazard", i, f"YH-{i:06d}", "report", None, "reported", OWNER,
                                   "inspector", at, None, report_data, None)
                for i in chunk
            ] + [
                audit.PendingEntry("hazard", i, f"YH-{i:06d}", "assign", "reported", "rectifying",
                                   MANAGER, "safety_officer", at, None, assign_data, None)
                for i in chunk
            ]
            audit.append(conn, entries)
            ids.extend(chunk)
        session.commit()
    return ids


def seed_prior_audit(engine: Engine, count: int) -> int:
    """Chain ``count`` older audit rows (as many closed hazards' histories would leave) through
    ``states.audit.append`` in big executemany chunks: a production-sized trail in seconds, still
    a genuine chain that ``verify`` accepts. Returns ``count``."""
    at = audit.format_at(SEED_AT - timedelta(days=400))
    data = audit.canonical_data({"note": "prior"})
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        for start in range(0, count, _PRIOR_CHUNK):
            entries = [
                audit.PendingEntry("hazard", 9_000_000 + i, f"YH-OLD-{i:07d}", "close",
                                   "pending_acceptance", "closed", MANAGER, "safety_officer", at,
                                   None, data, None)
                for i in range(start, min(start + _PRIOR_CHUNK, count))
            ]
            audit.append(conn, entries)
            session.commit()
            conn = session.connection()
    return count


@contextmanager
def pg_databases(url: str, *revisions: str) -> Iterator[list[Engine]]:
    """Fresh PostgreSQL schemas on ``url``, one per revision, each migrated to it with the demo
    org loaded; dropped afterwards (``--db URL`` of bench.run)."""
    import uuid

    from sqlalchemy import text

    admin = make_engine(url)
    names = [f"bench_{uuid.uuid4().hex[:10]}" for _ in revisions]
    engines: list[Engine] = []
    try:
        for name, revision in zip(names, revisions, strict=True):
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {name}"))
            sep = "&" if "?" in url else "?"
            engine = make_engine(f"{url}{sep}options=-csearch_path%3D{name}")
            upgrade(engine, revision)
            with Session(engine, expire_on_commit=False) as session:
                orgfile.load(session, DEMO_ORG)
            engines.append(engine)
        yield engines
    finally:
        for engine in engines:
            engine.dispose()
        with admin.begin() as conn:
            for name in names:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def check_engine_chain(engine: Engine, expected: int) -> None:
    """``check_chain`` for a database given by its engine (PostgreSQL)."""
    with engine.connect() as conn:
        result = audit.verify(conn)
    if not result.ok or result.count != expected:
        raise AssertionError(f"chain {result.to_dict()}, expected {expected} rows")


def check_chain(path: Path, expected: int) -> None:
    """Untimed: the chain must verify and hold every transition, or the figures mean nothing."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            result = audit.verify(conn)
    finally:
        engine.dispose()
    if not result.ok or result.count != expected:
        raise AssertionError(f"{path.name}: chain {result.to_dict()}, expected {expected} rows")


class Stopwatch:
    """Wall-clock seconds summed over laps, optionally profiling just those laps.

    Laps let a benchmark alternate blocks of the measured code and of its baseline, so both see
    the same machine load: on a shared box the ratio then stays meaningful when absolutes drift.
    """

    def __init__(self, profile: bool = False) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # this process's CPU time: less sensitive to a busy machine
        self.profiler = cProfile.Profile() if profile else None

    @contextmanager
    def lap(self) -> Iterator[None]:
        if self.profiler is not None:
            self.profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
            if self.profiler is not None:
                self.profiler.disable()

    def print_profile(self, label: str, top: int = 25) -> None:
        """cProfile's top entries by own time and by cumulative time (figures are inflated)."""
        if self.profiler is None:
            return
        out = io.StringIO()
        stats = pstats.Stats(self.profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(f"\n===== cProfile: {label} ({self.seconds:.2f}s under the profiler) =====")
        print(out.getvalue(), flush=True)
