"""Several processes firing on the same hazards at once, on a SQLite file and on PostgreSQL.

No update may be lost: every successful event shows in the version, the audit trail and the
fields it changed; of two simultaneous acceptances exactly one wins and the other is refused.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from queue import Empty
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from models import AuditEntry, Hazard, Person
from models.db import as_utc
from states import engine
from states.audit import verify
from states.jobs.replay import replay
from states.workflows.hazard import HAZARD
from tests.helpers import NOW, audit_count, fire, report, walk_to
from tests.reliability import workers

pytestmark = pytest.mark.slow
SPAWN = multiprocessing.get_context("spawn")


def run_workers(target: Callable[..., None], jobs: list[tuple[Any, ...]]) -> dict[Any, list[Any]]:
    """Start one process per job (each gets the barrier and the result queue appended) and
    collect their reports; a worker that dies without reporting fails the test at once."""
    barrier = SPAWN.Barrier(len(jobs))
    queue = SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*job, barrier, queue)) for job in jobs]
    for p in procs:
        p.start()
    results: dict[Any, list[Any]] = {}
    deadline = time.monotonic() + 300
    try:
        while len(results) < len(procs):
            try:
                key, out = queue.get(timeout=1)
                results[key] = out
            except Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"a worker died with exit code {dead}"
                assert time.monotonic() < deadline, "workers did not finish in 300 s"
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return results


def trail_ok(session: Session) -> None:
    conn = session.connection()
    result, replayed = verify(conn), replay(conn)
    session.rollback()
    assert result.ok, result
    assert replayed.ok, replayed.differences[:5]


def test_no_lost_update(db_url: str, org: Session) -> None:
    """3 processes x 30 logged events on 3 major hazards in planning, half of them sent with
    the version the worker read just before (so some are refused as concurrent updates)."""
    hazards = []
    for _ in range(3):
        hid = report(org, "major").entity_id
        fire(org, hid, "assign", "li.anquan",
             data={"owner": "zhou.weixiu", "deadline": NOW + timedelta(days=7)})
        hazards.append(hid)
    audit_before = audit_count(org)

    results = run_workers(workers.random_events, [(db_url, w, hazards, 30) for w in range(3)])

    outcomes = [o for out in results.values() for o in out]
    crashes = [o for o in outcomes if o[2] == "crash"]
    assert not crashes, crashes[:3]
    assert len(outcomes) == 90
    kinds = Counter(o[2] for o in outcomes)
    assert kinds["ok"] > 0 and set(kinds) <= {"ok", "GuardFailed", "ConcurrentUpdate"}, kinds
    # the row lock (PostgreSQL) / write lock (SQLite) makes writers queue: an event sent without
    # a version is never refused because someone else wrote first
    assert not [o for o in outcomes if o[2] == "ConcurrentUpdate" and o[5] is None]
    ok = [o for o in outcomes if o[2] == "ok"]
    assert audit_count(org) == audit_before + len(ok)
    org.expire_all()
    for hid in hazards:
        mine = sorted((o for o in ok if o[0] == hid), key=lambda o: o[3])
        row = org.get(Hazard, hid)
        assert row is not None and row.state == "planning"
        # report + assign + every success, each exactly one version step
        assert row.version == 2 + len(mine)
        assert [o[3] for o in mine] == list(range(3, row.version + 1))
        entries = org.connection().execute(
            select(func.count()).select_from(AuditEntry)
            .where(AuditEntry.entity_type == "hazard", AuditEntry.entity_id == hid)).scalar_one()
        assert entries == row.version
        # and no field lost its last successful write
        plan: dict[str, str] = {}
        level, deadline = 0, NOW + timedelta(days=7)
        for _, kind, _, _, data, _ in mine:
            if kind == "draft_plan":
                plan.update(data)
            elif kind == "escalate":
                level = data["level"]
            else:
                deadline = data["deadline"]
        assert row.plan == plan
        assert row.escalation_level == level
        assert as_utc(row.deadline) == deadline
    trail_ok(org)


def test_two_acceptors_race(db_url: str, org: Session) -> None:
    """Principal and unit head accept the same pending hazard at the same instant, 6 times: three
    plain, three with the version both read beforehand (the web form's optimistic path)."""
    hazards = [walk_to(org, "pending_acceptance") for _ in range(6)]
    versions: list[int | None] = [
        engine.row_of(org, HAZARD, h)["version"] if i % 2 else None for i, h in enumerate(hazards)]
    org.rollback()
    audit_before = audit_count(org)

    results = run_workers(workers.accept_each, [
        (db_url, "wang.zhuren", hazards, versions), (db_url, "zhao.chejian", hazards, versions)])

    people = dict(org.exec(select(Person.key, Person.id)).all())
    org.expire_all()
    for i, hid in enumerate(hazards):
        pair = [results["wang.zhuren"][i], results["zhao.chejian"][i]]
        assert {o[0] for o in pair} == {hid}
        won = [o for o in pair if o[2] == "ok"]
        lost = [o for o in pair if o[2] != "ok"]
        assert len(won) == 1 and len(lost) == 1, pair
        # with a version read beforehand the loser's version is stale; without, the state is
        assert lost[0][2] == ("ConcurrentUpdate" if versions[i] else "TransitionNotAllowed"), lost
        winner = "wang.zhuren" if pair[0][2] == "ok" else "zhao.chejian"
        row = org.get(Hazard, hid)
        assert row is not None and row.state == "closed" and row.version == 4
        assert row.accepted_by_id == people[winner]
    assert audit_count(org) == audit_before + len(hazards)
    trail_ok(org)
