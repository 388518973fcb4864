"""``states.jobs.sweep.sweep``: the deadline sweep over a big ledger with 1 % of it overdue.

Fixture: 1,000,000 open hazards in ``rectifying`` (version 2, as if reported and assigned),
Core bulk-inserted straight into the hazard table over the demo org's units (their enterprise,
owner and finder ids valid); no audit rows for them, so ``audit_head`` stays at the org load's
row and the chain stays consistent. Every 100th hazard (10,000) is overdue, its deadline placed so
the sweep escalates it: 70 % less than 3 days late (level 1), 20 % 3-7 days (levels 1 and 2), 10 %
more than 7 days (levels 1, 2, 3), and one in 50 of them major (straight to level 3). Every other
deadline lies 2-62 days ahead, beyond the 24 h due-soon window.

Measured: ``sweep(session, as_of=..., batch_size=5_000)`` on a fresh engine and session.
Baseline, on an identical copy in the same process, hand-written sqlite3 in one transaction: the
same indexed selects (due soon, overdue), then executemany of the hazard UPDATEs (escalation
level, version, updated_at), of the sha256-chained audit rows and of the outbox rows the engine
writes too (two recipients per escalation), and the head update. Both files must end identical:
same hazard rows, same audit rows (version 2, as the engine writes them; compared without the
recorded_at of each run and so without hashes, and each chain verified), same outbox rows.
Rounds alternate which side goes first, each on fresh copies.
Target: <= 5 s per run. ``--profile`` profiles the measured part.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlmodel import Session

from bench import rawsql
from bench.common import (
    HAZARD_TABLE,
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
from models.db import make_engine
from states.jobs.sweep import sweep

NAME = "sweep"
MAX_SECONDS = 5.0
BATCH_SIZE = 5_000
AS_OF = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # Monday 18:00 in Asia/Shanghai
LADDER = (0, 3, 7)  # the default settings.escalation_days
DUE_SOON = timedelta(hours=24)
OVERDUE_EVERY = 100
_CHUNK = 20_000
_MINUTE = timedelta(minutes=1)

_DUE_SQL = (
    "SELECT id FROM hazard WHERE state IN ('planning', 'rectifying') AND deadline > ? "
    "AND deadline <= ? AND (due_reminded_for IS NULL OR due_reminded_for != deadline) ORDER BY id"
)
_OVERDUE_SQL = (
    "SELECT id, code, title, grade, deadline, escalation_level, version, unit_id, owner_id "
    "FROM hazard WHERE state IN ('planning', 'rectifying') AND deadline <= ? "
    "AND escalation_level < 3 AND (grade = 'major' OR (escalation_level < 1 AND deadline <= ?) "
    "OR (escalation_level < 2 AND deadline <= ?) OR (escalation_level < 3 AND deadline <= ?)) "
    "ORDER BY id"
)
_MISSED_SQL = (
    "SELECT id FROM inspection_task WHERE state IN ('scheduled', 'in_progress') "
    "AND period_end <= ? ORDER BY id"
)
_UPDATE_SQL = (
    "UPDATE hazard SET escalation_level = ?, state = ?, updated_at = ?, version = ? "
    "WHERE id = ? AND version = ?"
)
_ROLE_AT_LEVEL = {1: "unit_head", 2: "principal", 3: "regulator"}
_LEVEL_LABELS = {1: "单位负责人", 2: "主要负责人", 3: "监管部门"}  # the payload labels the engine writes


@dataclass
class Fixture:
    hazards: int
    overdue: int
    events: Counter[int] = field(default_factory=Counter)  # level -> escalations expected

    @property
    def total_events(self) -> int:
        return sum(self.events.values())


def _overdue_deadline(ordinal: int) -> tuple[datetime, list[int], str]:
    """(deadline, levels the sweep must fire, grade) of the ``ordinal``-th overdue hazard."""
    if ordinal % 50 == 25:
        return AS_OF - timedelta(hours=1 + ordinal % 200), [3], "major"
    bucket = ordinal % 20
    if bucket < 14:  # 1 minute to 3 days minus a minute late
        return AS_OF - _MINUTE * (1 + (ordinal * 37) % (3 * 1440 - 2)), [1], "general"
    if bucket < 18:  # 3 days and a minute to 7 days minus a minute late
        return AS_OF - timedelta(days=3) - _MINUTE * (1 + (ordinal * 37) % (4 * 1440 - 2)), \
            [1, 2], "general"
    return AS_OF - timedelta(days=7) - _MINUTE * (1 + (ordinal * 37) % (23 * 1440)), \
        [1, 2, 3], "general"


_SEED_COLUMNS = ("id", "code", "enterprise_id", "unit_id", "title", "description", "category",
                 "grade", "location", "source", "state", "version", "found_at", "finder_id",
                 "owner_id", "measures", "deadline", "escalation_level", "created_at",
                 "updated_at")
_SEED_INSERT = insert(HAZARD_TABLE).values({c: bindparam(c) for c in _SEED_COLUMNS})


def _text(moment: datetime) -> str:
    """``rawsql.db_time`` without strftime (a third of the seeding time): the same text."""
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def seed_hazards(path: Path, count: int, every: int = OVERDUE_EVERY) -> Fixture:
    """A migrated file with the demo org and ``count`` rectifying hazards, every ``every``-th
    overdue (see the module docstring); returns what the sweep must do on it.

    A fixture, so built for speed: the Core INSERT runs as one driver-level executemany over
    tuples with the datetimes already in SQLAlchemy's SQLite text form, and the hazard table's
    secondary indexes are dropped for the load and re-created from their own DDL (as read from
    ``sqlite_master``) afterwards: a sorted index build instead of a million random inserts.
    """
    engine = new_database(path)
    fixture = Fixture(count, 0)
    seeded_at = _text(AS_OF - timedelta(days=40))
    try:
        with Session(engine, expire_on_commit=False) as session:
            conn = session.connection()
            conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB for the index builds
            units = conn.execute(select(UNIT_TABLE.c.id, UNIT_TABLE.c.enterprise_id)
                                 .order_by(UNIT_TABLE.c.id)).all()
            people = list(conn.execute(select(PERSON_TABLE.c.id).order_by(PERSON_TABLE.c.id))
                          .scalars())
            indexes = [sql for (sql,) in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'hazard' "
                "AND sql IS NOT NULL")]
            for ddl in indexes:
                conn.exec_driver_sql("DROP INDEX " + ddl.split(" INDEX ", 1)[1].split()[0])
            sql = str(_SEED_INSERT.compile(dialect=conn.dialect))
            for start in range(0, count, _CHUNK):
                rows: list[tuple[Any, ...]] = []
                for k in range(start, min(start + _CHUNK, count)):
                    hid = k + 1
                    if k % every == 0:
                        when, levels, grade = _overdue_deadline(k // every)
                        fixture.overdue += 1
                        fixture.events.update(levels)
                    else:
                        when = AS_OF + timedelta(days=2, minutes=(k * 7919) % (60 * 1440))
                        grade = "major" if k % 50 == 25 else "general"
                    unit_id, enterprise_id = units[k % len(units)]
                    person = people[k % len(people)]
                    rows.append((
                        hid, f"YH-{hid:07d}", enterprise_id, unit_id, "压力表失效", "", "thing",
                        grade, "合成车间二层", "ad_hoc", "rectifying", 2, seeded_at, person,
                        person, "", _text(when), 0, seeded_at, seeded_at,
                    ))
                conn.exec_driver_sql(sql, rows)
            for ddl in indexes:
                conn.exec_driver_sql(ddl)
            session.commit()
    finally:
        engine.dispose()
    return fixture


def measured_run(path: Path, watch: Stopwatch) -> dict[str, Any]:
    """``sweep`` on a fresh engine and session, as the flow's task runs it."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        with Session(engine, expire_on_commit=False) as session, watch.lap():
            report = sweep(session, as_of=AS_OF, ladder=LADDER, due_soon=DUE_SOON,
                           batch_size=BATCH_SIZE)
    finally:
        engine.dispose()
    return report.to_dict()


def _escalations(row: sqlite3.Row | tuple[Any, ...]) -> list[int]:
    """The levels to fire for one overdue row (``states.jobs.sweep.target_level``, restated)."""
    _, _, _, grade, deadline, level, *_ = row
    if grade == "major":
        return [3]
    late = AS_OF - datetime.fromisoformat(deadline).replace(tzinfo=UTC)
    target = sum(1 for days in LADDER if late >= timedelta(days=days))
    return list(range(level + 1, target + 1))


def baseline(path: Path, watch: Stopwatch) -> Counter[int]:
    """The raw-sqlite3 sweep in one transaction; returns level -> escalations."""
    moment = db_time(AS_OF)
    at_text = AS_OF.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    recorded_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn = raw_connect(path)
    fired: Counter[int] = Counter()
    try:
        with watch.lap():
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                due = cur.execute(_DUE_SQL, (moment, db_time(AS_OF + DUE_SOON))).fetchall()
                assert not due, "the fixture has no due-soon hazards"
                bounds = [db_time(AS_OF - timedelta(days=d)) for d in LADDER]
                rows = cur.execute(_OVERDUE_SQL, (moment, *bounds)).fetchall()
                seq, prev = cur.execute(rawsql.HEAD_SQL).fetchone()
                updates, audits, outboxes = [], [], []
                for row in rows:
                    hid, code, title, _, deadline, _, version, unit_id, owner_id = row
                    levels = _escalations(row)
                    deadline_iso = datetime.fromisoformat(deadline).replace(tzinfo=UTC).isoformat()
                    for level in levels:
                        seq += 1
                        # a flow's row: channel "flow", no credential, business time simulated
                        values = (2, seq, "hazard", hid, code, "escalate", "rectifying",
                                  "rectifying", "system", "system", at_text, None,
                                  f'{{"level":{level}}}', None, recorded_at, "flow", None, True,
                                  prev)
                        prev = rawsql.raw_hash(values)
                        audits.append((*values, prev))
                        payload = json.dumps(
                            {"code": code, "title": title, "event": "escalate",
                             "event_label": "逾期升级", "state": "rectifying",
                             "state_label": "整改中", "actor": "system",
                             "deadline": deadline_iso, "entity_label": "隐患",
                             "level_label": _LEVEL_LABELS[level]},
                            ensure_ascii=False)
                        for recipient in (f"role:{_ROLE_AT_LEVEL[level]}@unit:{unit_id}",
                                          f"person:{owner_id}"):
                            outboxes.append((moment, seq, hid, "escalate", recipient,
                                             "hazard.escalate", payload))
                        fired[level] += 1
                    updates.append((levels[-1], "rectifying", moment, version + len(levels),
                                    hid, version))
                cur.executemany(_UPDATE_SQL, updates)
                if cur.rowcount != len(updates):
                    raise RuntimeError("concurrent update")
                cur.executemany(rawsql.AUDIT_V2_SQL, audits)
                cur.execute(rawsql.HEAD_UPDATE_SQL, (seq, prev))
                cur.executemany(rawsql.OUTBOX_SQL, outboxes)
                assert not cur.execute(_MISSED_SQL, (moment,)).fetchall()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
    finally:
        conn.close()
    return fired


def outcome(path: Path) -> tuple[int, str, str, str]:
    """(audit head seq, digests of the hazards' mutable columns, the outbox and the audit rows).

    Audit rows are compared without recorded_at (the real clock of each run) and so without the
    hashes, which cover it; ``check_chain`` verifies each file's chain on its own.
    """
    conn = raw_connect(path)
    try:
        head = conn.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()
        digests = []
        for sql in ("SELECT id, state, version, escalation_level, updated_at FROM hazard "
                    "ORDER BY id",
                    "SELECT hash_version, seq, entity_type, entity_id, entity_code, event, "
                    "from_state, to_state, actor, actor_role, at, comment, data, flow_run_id, "
                    "channel, credential, simulated FROM audit_entry ORDER BY seq",
                    "SELECT audit_seq, entity_id, event, recipient, template, payload, status, "
                    "created_at FROM outbox ORDER BY id"):
            digest = hashlib.sha256()
            for row in conn.execute(sql):
                digest.update(repr(row).encode())
            digests.append(digest.hexdigest())
        return int(head[0]), digests[0], digests[1], digests[2]
    finally:
        conn.close()


def query_plans(path: Path) -> str:
    """How SQLite runs the overdue select (an unindexed scan of 1M rows would show here)."""
    conn = raw_connect(path)
    try:
        bounds = [db_time(AS_OF - timedelta(days=d)) for d in LADDER]
        plan = conn.execute("EXPLAIN QUERY PLAN " + _OVERDUE_SQL,
                            (db_time(AS_OF), *bounds)).fetchall()
        return "; ".join(str(r[-1]) for r in plan)
    finally:
        conn.close()


def run(quick: bool = False, profile: bool = False) -> Result:
    hazards, rounds = (100_000, 1) if quick else (1_000_000, 2)
    with scratch_dir(NAME) as tmp:
        seed = tmp / "seed.db"
        fixture = seed_hazards(seed, hazards)
        plan = query_plans(seed)
        seeded_seq = 1  # the org load's audit row: the fixture adds none
        measured, reference = Stopwatch(profile), Stopwatch()
        times: list[tuple[float, float]] = []
        for k in range(rounds):
            ours, theirs = tmp / f"engine-{k}.db", tmp / f"baseline-{k}.db"
            copy_database(seed, ours)
            copy_database(seed, theirs)
            before = (measured.seconds, reference.seconds)
            for side in ((0, 1) if k % 2 == 0 else (1, 0)):
                if side == 0:
                    report = measured_run(ours, measured)
                else:
                    fired = baseline(theirs, reference)
            times.append((measured.seconds - before[0], reference.seconds - before[1]))
            if report["escalations"] != dict(fixture.events) or report["refused"] \
                    or fired != fixture.events:
                raise AssertionError(f"engine {report}, baseline {dict(fired)}, "
                                     f"expected {dict(fixture.events)}")
            mine, their = outcome(ours), outcome(theirs)
            if mine != their:
                raise AssertionError(f"files differ after the sweep: engine {mine}, "
                                     f"baseline {their}")
            check_chain(ours, seeded_seq + fixture.total_events)
            check_chain(theirs, seeded_seq + fixture.total_events)
            remove_database(ours)
            remove_database(theirs)
        measured.print_profile(NAME)
    mean_ours = measured.seconds / rounds
    mean_theirs = reference.seconds / rounds
    laps = "; ".join(f"{a:.2f}/{b:.2f}" for a, b in times)
    levels = ", ".join(f"L{level} {n:,}" for level, n in sorted(fixture.events.items()))
    return Result.of(NAME, fixture.total_events, measured, reference, 0.0, runs=rounds,
                     max_seconds=MAX_SECONDS,
                     notes=f"{fixture.hazards:,} rectifying hazards, {fixture.overdue:,} overdue "
                           f"-> {fixture.total_events:,} escalations ({levels}) with "
                           f"{2 * fixture.total_events:,} outbox rows; mean of {rounds} run(s) "
                           f"(engine/baseline s: {laps}); engine/baseline = "
                           f"{mean_ours / mean_theirs:.1f}x; files identical after both, chains "
                           f"ok; overdue select plan: {plan}")
