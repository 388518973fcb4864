"""``states.jobs.materialize.materialize``: one day's inspection tasks for 100,000 plans.

The plans are inserted set-wise with Core, spread over the demo org's units against the shipped
general checklist of each unit's tier: mostly daily, some weekly / monthly / quarterly, a tenth of
them "working days only", all active from 2026-01-01. ``as_of`` is Monday 2026-11-02 09:00 in
Asia/Shanghai (a working day; chinesecalendar covers 2026 but not 2027), the first day of a new
week, so every plan gets a task. The engine runs with ``batch_size=50_000`` (one transaction and
audit row per cadence window and plan-id range); the baseline, on an identical copy of the file in
the same process, is raw sqlite3: one ``INSERT INTO inspection_task … SELECT … FROM
inspection_plan … ON CONFLICT DO NOTHING`` per cadence, all in one transaction, no audit rows.
Rounds alternate which side goes first, each on fresh copies. Afterwards (untimed) the two files
must hold the same task rows (batch ids and row ids aside) and the engine's audit chain verifies.
Target: <= 10 s per run and <= 3x the baseline's time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlmodel import Session

from bench.common import (
    PERSON_TABLE,
    UNIT_TABLE,
    Result,
    Stopwatch,
    check_chain,
    copy_database,
    new_database,
    raw_connect,
    remove_database,
    scratch_dir,
)
from bench.rawsql import db_time
from core.calendar import Cadence, WorkCalendar, local_date, period_of
from models.db import make_engine
from models.tables import INSPECTION_PLAN as PLAN_TABLE
from safeloop import checklists
from states.jobs.materialize import WORKING_DAYS, materialize

NAME = "materialize"
MAX_SECONDS = 10.0
MAX_SLOWDOWN = 3.0
BATCH_SIZE = 50_000
ZONE = "Asia/Shanghai"
AS_OF = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 local: a new day and a new week
ACTIVE_FROM = date(2026, 1, 1)
CADENCES = (Cadence.daily, Cadence.weekly, Cadence.monthly, Cadence.quarterly)
_CHUNK = 20_000

_INSERT_SQL = (
    "INSERT INTO inspection_task (code, plan_id, period_key, period_start, period_end, unit_id, "
    "enterprise_id, template_id, assignee_id, state, version, batch, created_at, updated_at) "
    "SELECT key || '/' || ?, id, ?, ?, ?, unit_id, enterprise_id, template_id, assignee_id, "
    "'scheduled', 1, ?, ?, ? FROM inspection_plan "
    "WHERE cadence = ? AND active_from <= ? AND (active_until IS NULL OR active_until >= ?)"
)
_CONFLICT_SQL = " ON CONFLICT (plan_id, period_key) DO NOTHING"
_TASK_FIELDS = ("code, plan_id, period_key, period_start, period_end, unit_id, enterprise_id, "
                "template_id, assignee_id, state, version, created_at, updated_at")


def cadence_of(index: int) -> Cadence:
    """85 % daily, 8 % weekly, 5 % monthly, 2 % quarterly."""
    k = index % 100
    if k < 85:
        return Cadence.daily
    if k < 93:
        return Cadence.weekly
    return Cadence.monthly if k < 98 else Cadence.quarterly


def seed_plans(path: Path, count: int) -> Counter[str]:
    """A migrated file with the demo org, the shipped checklists and ``count`` plans."""
    engine = new_database(path)
    cadences: Counter[str] = Counter()
    try:
        with Session(engine, expire_on_commit=False) as session:
            checklists.load_shipped(session)
            conn = session.connection()
            units = conn.execute(select(UNIT_TABLE.c.id, UNIT_TABLE.c.enterprise_id,
                                        UNIT_TABLE.c.tier).order_by(UNIT_TABLE.c.id)).all()
            people = list(conn.execute(select(PERSON_TABLE.c.id).order_by(PERSON_TABLE.c.id))
                          .scalars())
            templates = {tier: checklists.latest(session, f"general-{tier}")
                         for tier in {u.tier for u in units}}
            created = datetime(2025, 12, 20, 2, 0, tzinfo=UTC)
            for start in range(0, count, _CHUNK):
                rows = []
                for i in range(start, min(start + _CHUNK, count)):
                    unit = units[i % len(units)]
                    cadence = cadence_of(i)
                    cadences[cadence.value] += 1
                    rows.append({
                        "key": f"bench-plan-{i:06d}", "name": f"基准排查计划 {i}",
                        "unit_id": unit.id, "enterprise_id": unit.enterprise_id,
                        "tier": unit.tier, "cadence": cadence.value,
                        "template_id": templates[unit.tier],
                        "assignee_id": people[i % len(people)] if i % 2 else None,
                        "assignee_role": None if i % 2 else "inspector",
                        "calendar_mode": WORKING_DAYS if i % 10 == 3 else "all_days",
                        "active_from": ACTIVE_FROM,
                        "active_until": date(2026, 12, 31) if i % 100 == 42 else None,
                        "created_at": created,
                    })
                conn.execute(insert(PLAN_TABLE), rows)
            session.commit()
    finally:
        engine.dispose()
    return cadences


def baseline(path: Path, watch: Stopwatch) -> int:
    """The hand-written set-wise insert, one statement per cadence, one transaction."""
    today = local_date(AS_OF, ZONE)
    working_today = WorkCalendar().is_working_day(today)
    batch, moment = uuid.uuid4().hex, db_time(AS_OF)
    statements = []
    for cadence in CADENCES:
        period = period_of(cadence, AS_OF, ZONE)
        sql = _INSERT_SQL
        if cadence is Cadence.daily and not working_today:
            sql += f" AND calendar_mode != '{WORKING_DAYS}'"
        statements.append((sql + _CONFLICT_SQL, (
            period.key, period.key, db_time(period.start), db_time(period.end), batch, moment,
            moment, cadence.value, today.isoformat(), today.isoformat())))
    conn = raw_connect(path)
    try:
        with watch.lap():
            created = 0
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                created += conn.execute(sql, params).rowcount
            conn.execute("COMMIT")
    finally:
        conn.close()
    return created


def measured_run(path: Path, watch: Stopwatch) -> tuple[int, int]:
    """``materialize`` on a fresh engine and session; returns (tasks created, batches)."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        with Session(engine, expire_on_commit=False) as session, watch.lap():
            report = materialize(session, as_of=AS_OF, zone=ZONE, batch_size=BATCH_SIZE)
    finally:
        engine.dispose()
    if report.warnings:
        raise AssertionError(f"materialize warned: {report.warnings}")
    return report.total, report.batches


def task_digest(path: Path) -> tuple[int, str]:
    """Count and SHA-256 of every task row's content (row ids and batch ids left out)."""
    conn = raw_connect(path)
    try:
        digest, count = hashlib.sha256(), 0
        for row in conn.execute(f"SELECT {_TASK_FIELDS} FROM inspection_task "
                                "ORDER BY plan_id, period_key"):
            digest.update(repr(row).encode())
            count += 1
        return count, digest.hexdigest()
    finally:
        conn.close()


def audit_seq(path: Path) -> int:
    conn = raw_connect(path)
    try:
        return int(conn.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()[0])
    finally:
        conn.close()


def run(quick: bool = False, profile: bool = False) -> Result:
    plans, rounds = (10_000, 1) if quick else (100_000, 3)
    with scratch_dir(NAME) as tmp:
        seed = tmp / "seed.db"
        cadences = seed_plans(seed, plans)
        seeded_seq = audit_seq(seed)
        measured, reference = Stopwatch(profile), Stopwatch()
        times: list[tuple[float, float]] = []
        batches = 0
        for k in range(rounds):
            ours, theirs = tmp / f"engine-{k}.db", tmp / f"baseline-{k}.db"
            for dst in (ours, theirs):
                copy_database(seed, dst)
            before = (measured.seconds, reference.seconds)
            for side in ((0, 1) if k % 2 == 0 else (1, 0)):
                if side == 0:
                    created, batches = measured_run(ours, measured)
                else:
                    expected = baseline(theirs, reference)
            times.append((measured.seconds - before[0], reference.seconds - before[1]))
            if created != plans or expected != plans:
                raise AssertionError(f"created {created} (engine) / {expected} (baseline), "
                                     f"expected {plans}")
            mine, theirs_digest = task_digest(ours), task_digest(theirs)
            if mine != theirs_digest:
                raise AssertionError(f"task rows differ: engine {mine}, baseline {theirs_digest}")
            check_chain(ours, seeded_seq + batches)
            remove_database(ours)
            remove_database(theirs)
        measured.print_profile(NAME)
    split = ", ".join(f"{c} {n:,}" for c, n in cadences.items())
    laps = "; ".join(f"{a:.2f}/{b:.2f}" for a, b in times)
    return Result.of(NAME, plans, measured, reference, 0.0, 1 / MAX_SLOWDOWN, runs=rounds,
                     max_seconds=MAX_SECONDS,
                     notes=f"{plans:,} plans ({split}) -> {plans:,} tasks per run, mean of "
                           f"{rounds} run(s) (engine/baseline s: {laps}); engine {batches} "
                           f"batches of <= {BATCH_SIZE:,} plan ids with audit rows, baseline one "
                           f"INSERT…SELECT per cadence in one transaction; rows identical, chain ok")
