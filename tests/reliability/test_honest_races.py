"""Races that used to be reported wrongly or crash: eight sweeps at once report, between them,
exactly the escalations, reminders and missed inspections that committed (one each in the audit
trail); eight ``plan add`` of one key at once: one plan, seven clean "already exists"."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from models import AuditEntry, InspectionPlan
from tests.reliability.inspection_fixtures import (
    Children,
    HazardSpec,
    assign_hazards,
    escalate_events,
    event_counts,
    expected_escalations,
    load_base,
    report_hazards,
    verify_and_replay,
)

REPORTED = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SWEEP_AT = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
H, DAY = timedelta(hours=1), timedelta(days=1)
MIX = (("general", -12 * H), ("general", -4 * DAY), ("general", -8 * DAY), ("major", -H),
       ("general", 12 * H))
UNITS = ("jinhua-team-a", "jinhua-ws-synth", "xinfeng-team-weld")
SWEEPS = 8


def test_concurrent_sweeps_report_what_committed(session: Session, db_url: str,
                                                 tmp_path: Path) -> None:
    load_base(session)
    specs = [HazardSpec(MIX[i % len(MIX)][0], SWEEP_AT + MIX[i % len(MIX)][1],
                        UNITS[i % len(UNITS)]) for i in range(60)]
    ids = report_hazards(session, specs, REPORTED)
    assign_hazards(session, ids, specs, REPORTED)
    want = sum(len(expected_escalations(s, SWEEP_AT)) for s in specs)
    assert want > 0
    with Children("sweep", db_url, SWEEP_AT, 7, tmp_path, n=SWEEPS) as runs:
        runs.start()
        reports = runs.results()

    audited = escalate_events(session)
    per_level: Counter[int] = Counter(lv for levels in audited.values() for lv in levels)
    assert sum(per_level.values()) == want  # each ladder step once, whoever won it
    reported: Counter[int] = Counter()
    for rep in reports:
        reported.update({int(k): v for k, v in rep["escalations"].items()})
    assert reported == per_level, (reported, per_level, reports)
    reminders = sum(event_counts(session, "hazard", "remind_due").values())
    assert sum(r["reminders"] for r in reports) == reminders > 0
    verify_and_replay(session)


# ---- concurrent plan add --------------------------------------------------------------------

SPAWN = multiprocessing.get_context("spawn")


def test_concurrent_plan_adds_of_one_key(session: Session, db_url: str) -> None:
    load_base(session)
    session.rollback()
    barrier, queue = SPAWN.Barrier(SWEEPS), SPAWN.Queue()
    procs = [SPAWN.Process(target=_add_plan, args=(db_url, i, barrier, queue))
             for i in range(SWEEPS)]
    for proc in procs:
        proc.start()
    outcomes = [queue.get(timeout=180) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    kinds = Counter(kind for kind, _ in outcomes)
    assert kinds == Counter({"ok": 1, "InvalidInput": SWEEPS - 1}), outcomes
    assert all("已存在" in message for kind, message in outcomes if kind != "ok")
    conn = session.connection()
    plans = conn.execute(select(func.count()).select_from(InspectionPlan)).scalar_one()
    audited = conn.execute(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.event == "add_plan")).scalar_one()  # type: ignore[arg-type]
    session.rollback()
    assert plans == 1 and audited == 1


def _add_plan(url: str, worker: int, barrier: Any, queue: Any) -> None:
    """One ``plans.add`` of the shared key; reports ("ok" | error class, message)."""
    from core.errors import SafeloopError
    from models.db import make_engine
    from safeloop import plans

    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as s:
            spec = plans.PlanSpec(key="shared-key", unit="jinhua-team-a",
                                  name=f"worker {worker}")
            barrier.wait(timeout=120)
            try:
                plans.add(s, spec)
                queue.put(("ok", ""))
            except SafeloopError as exc:
                queue.put((type(exc).__name__, exc.message))
            except Exception as exc:  # a driver error: the failure this test is about
                queue.put(("crash", repr(exc)))
    finally:
        engine.dispose()
