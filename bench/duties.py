"""``states.jobs.duties.materialize_duties``: a month of recurring duties for 10,000 enterprises.

The demo org plus 10,000 enterprises inserted set-wise with Core, each with a top unit (tier
group) and one workshop: 30 % 化工 (every enterprise kind of the shipped pack applies: duty days,
leader shifts on working days, daily risk commitments, drills, major-hazard-source checks, plan
evaluation), 20 % 冶金 (high-risk, no hazardous chemicals) and 50 % 工贸 (the all-industry kinds).
``as_of`` is 2026-12-01 00:05 Asia/Shanghai and ``until`` 2026-12-31 23:00, so every daily kind
gets 31 days (leader shifts the working days only), the weekly check five ISO weeks, the others
their current period: one INSERT…SELECT, transaction and audit row per kind and period through
``engine.create_set``.

The baseline, on an identical copy in the same process, is raw sqlite3: the same INSERT…SELECT per
kind and period, hand-written, every statement in one transaction, no audit rows. Rounds
alternate which side goes first, each on fresh copies. Afterwards (untimed) the two files must hold
the same duty rows (batch ids and row ids aside) and the engine's audit chain verifies with one row
per batch. Target: <= 10 s per run and <= 3x the baseline's time.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlmodel import Session

from bench.common import (
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
from core.calendar import WorkCalendar
from core.duty_rules import applies_on, due_at, load_pack
from core.rules import Rules
from models.db import make_engine
from models.tables import ENTERPRISE, JURISDICTION, UNIT
from states.jobs.duties import COLUMNS, materialize_duties, materialized_kinds, periods

NAME = "duties"
MAX_SECONDS = 10.0
MAX_SLOWDOWN = 3.0
ZONE = "Asia/Shanghai"
AS_OF = datetime(2026, 11, 30, 16, 5, tzinfo=UTC)  # 2026-12-01 00:05 local
UNTIL = datetime(2026, 12, 31, 15, 0, tzinfo=UTC)  # 2026-12-31 23:00 local
_CHUNK = 20_000
_SELECT = ("SELECT unit.key || p.suffix, ?, unit.enterprise_id, unit.id, p.period_key, p.period_end, "
           "p.due_at, ?, ?, 'due', 1, 0, 0, ?, ?, ? FROM unit JOIN enterprise ON enterprise.id = "
           "unit.enterprise_id JOIN ({values}) AS p ON 1 = 1 WHERE 1 = 1")
_TOP = (" AND unit.parent_id IS NULL AND unit.id IN (SELECT min(top_unit.id) FROM unit AS top_unit "
        "WHERE top_unit.parent_id IS NULL GROUP BY top_unit.enterprise_id)")
_FIELDS = ("code, kind, enterprise_id, unit_id, period_key, period_end, due_at, role, "
           "evidence_required, state, version, escalation_level, late, created_at, updated_at")


def industry_of(index: int) -> str:
    k = index % 10
    return "化工" if k < 3 else ("冶金" if k < 5 else "工贸")


def seed(path: Path, count: int) -> None:
    """A migrated file with the demo org and ``count`` enterprises of two units each."""
    engine = new_database(path)
    try:
        with Session(engine, expire_on_commit=False) as session:
            conn = session.connection()
            jurisdiction = conn.execute(select(JURISDICTION.c.id).where(
                JURISDICTION.c.key == "xz-edz")).scalar_one()
            first = int(conn.execute(select(func.max(ENTERPRISE.c.id))).scalar() or 0) + 1
            for start in range(0, count, _CHUNK):
                stop = min(start + _CHUNK, count)
                conn.execute(insert(ENTERPRISE), [
                    {"id": first + i, "key": f"bench-e{i:05d}", "name": f"基准企业 {i}",
                     "industry": industry_of(i), "jurisdiction_id": jurisdiction}
                    for i in range(start, stop)])
            base = int(conn.execute(select(func.max(UNIT.c.id))).scalar() or 0) + 1
            for start in range(0, count, _CHUNK):
                stop = min(start + _CHUNK, count)
                tops = [{"id": base + 2 * i, "key": f"bench-e{i:05d}-top", "name": f"基准企业 {i}",
                         "tier": "group", "enterprise_id": first + i, "parent_id": None,
                         "path": f"/{base + 2 * i}/"} for i in range(start, stop)]
                shops = [{"id": base + 2 * i + 1, "key": f"bench-e{i:05d}-ws", "name": "生产车间",
                          "tier": "workshop", "enterprise_id": first + i, "parent_id": base + 2 * i,
                          "path": f"/{base + 2 * i}/{base + 2 * i + 1}/"} for i in range(start, stop)]
                conn.execute(insert(UNIT), tops)
                conn.execute(insert(UNIT), shops)
            session.commit()
    finally:
        engine.dispose()


def statements(rules: Rules) -> list[tuple[str, tuple[object, ...]]]:
    """The baseline's INSERT…SELECT per kind over its periods, parameters ready (built untimed)."""
    pack, made = rules.duties, []
    batch, moment = uuid.uuid4().hex, db_time(AS_OF)
    for kind in materialized_kinds(pack):
        sql, where = _SELECT, []
        industries = pack.industries(kind)
        if industries is not None:
            sql += f" AND enterprise.industry IN ({', '.join('?' * len(industries))})"
            where += list(industries)
        if kind.applies_to.scope == "enterprise":
            sql += _TOP
        elif kind.applies_to.tiers:
            sql += f" AND unit.tier IN ({', '.join('?' * len(kind.applies_to.tiers))})"
            where += list(kind.applies_to.tiers)
        dated = [(period, due_at(kind, period, rules.calendar, ZONE))
                 for period in periods(kind, AS_OF, UNTIL, ZONE)
                 if applies_on(kind, period, rules.calendar)]
        values = " UNION ALL ".join(["SELECT ? AS suffix, ? AS period_key, ? AS period_end, ? AS due_at"]
                                    * len(dated))
        params: list[object] = [kind.key, kind.role, int(kind.evidence_required), batch, moment,
                                moment]
        period_params = [v for period, due in dated
                         for v in (f"/{kind.key}@{period.key}", period.key, db_time(period.end),
                                   db_time(due))]
        made.append((f"INSERT INTO duty ({', '.join(COLUMNS)}) {sql.format(values=values)} "
                     "ORDER BY unit.id, p.period_key ON CONFLICT DO NOTHING",
                     (*params, *period_params, *where)))
    return made


def baseline(path: Path, watch: Stopwatch, rules: Rules) -> int:
    todo = statements(rules)
    conn = raw_connect(path)
    try:
        with watch.lap():
            created = 0
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in todo:
                created += conn.execute(sql, params).rowcount
            conn.execute("COMMIT")
    finally:
        conn.close()
    return created


def measured_run(path: Path, watch: Stopwatch, rules: Rules) -> tuple[int, int]:
    engine = make_engine(f"sqlite:///{path}")
    try:
        with Session(engine, expire_on_commit=False) as session, watch.lap():
            report = materialize_duties(session, as_of=AS_OF, until=UNTIL, rules=rules)
    finally:
        engine.dispose()
    if report.warnings:
        raise AssertionError(f"materialize_duties warned: {report.warnings}")
    return report.created, report.batches


def duty_digest(path: Path) -> tuple[int, str]:
    conn = raw_connect(path)
    try:
        digest, count = hashlib.sha256(), 0
        for row in conn.execute(f"SELECT {_FIELDS} FROM duty ORDER BY kind, unit_id, period_key"):
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
    enterprises, rounds = (2_000, 1) if quick else (10_000, 3)
    rules = Rules(zone=ZONE, calendar=WorkCalendar(), duties=load_pack())
    with scratch_dir(NAME) as tmp:
        seeded = tmp / "seed.db"
        seed(seeded, enterprises)
        seeded_seq = audit_seq(seeded)
        measured, reference = Stopwatch(profile), Stopwatch()
        times: list[tuple[float, float]] = []
        created = expected = batches = 0
        for k in range(rounds):
            ours, theirs = tmp / f"engine-{k}.db", tmp / f"baseline-{k}.db"
            for dst in (ours, theirs):
                copy_database(seeded, dst)
            before = (measured.seconds, reference.seconds)
            for side in ((0, 1) if k % 2 == 0 else (1, 0)):
                if side == 0:
                    created, batches = measured_run(ours, measured, rules)
                else:
                    expected = baseline(theirs, reference, rules)
            times.append((measured.seconds - before[0], reference.seconds - before[1]))
            if created != expected or not created:
                raise AssertionError(f"created {created} (engine) / {expected} (baseline)")
            mine, theirs_digest = duty_digest(ours), duty_digest(theirs)
            if mine != theirs_digest:
                raise AssertionError(f"duty rows differ: engine {mine}, baseline {theirs_digest}")
            check_chain(ours, seeded_seq + batches)
            remove_database(ours)
            remove_database(theirs)
        measured.print_profile(NAME)
    laps = "; ".join(f"{a:.2f}/{b:.2f}" for a, b in times)
    return Result.of(NAME, created, measured, reference, 0.0, 1 / MAX_SLOWDOWN, runs=rounds,
                     max_seconds=MAX_SECONDS,
                     notes=f"{enterprises:,} enterprises (+demo org), December 2026 -> "
                           f"{created:,} duties in {batches} batches (one per kind) per run, mean "
                           f"of {rounds} run(s) (engine/baseline s: {laps}); baseline the same "
                           f"INSERT…SELECT per kind in one transaction, no audit; "
                           f"rows identical, chain ok")
