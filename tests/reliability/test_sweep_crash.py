"""The deadline sweep survives SIGKILL and repetition: every hazard ends at exactly the level the
0/3/7-day ladder gives (major hazards straight to level 3), each escalation, reminder and missed
inspection is in the audit trail exactly once, outbox rows exist for exactly the audited events,
the chain verifies and the trail replays.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from states import engine
from states.engine import FireRequest
from states.jobs.materialize import materialize
from states.jobs.sweep import sweep
from states.workflows.hazard import HAZARD
from states.workflows.inspection import INSPECTION
from tests.reliability.inspection_fixtures import (
    HAZ,
    PRINCIPAL,
    TASK,
    Children,
    HazardSpec,
    KillOutcome,
    assign_hazards,
    counter,
    escalate_events,
    event_counts,
    expected_escalations,
    insert_plans,
    kill_midway,
    ladder_level,
    load_base,
    outbox_matches_audit,
    plan_rows,
    report_hazards,
    verify_and_replay,
)

REPORTED = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SWEEP_AT = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # Thursday 10:00 in Asia/Shanghai
H = timedelta(hours=1)
DAY = timedelta(days=1)
# (grade, deadline relative to SWEEP_AT): levels 1, 2 (on the day-3 boundary), 2, 3 (on the
# day-7 boundary), 3, major (twice), due soon (reminder, no escalation), not yet due.
MIX = (("general", -12 * H), ("general", -3 * DAY), ("general", -4 * DAY), ("general", -7 * DAY),
       ("general", -8 * DAY - 5 * H), ("major", -H), ("major", -9 * DAY), ("general", 12 * H),
       ("general", 2 * DAY))
UNITS = ("jinhua-team-a", "jinhua-ws-synth", "jinhua-team-tank", "xinfeng-team-weld")


@pytest.fixture
def base(session: Session) -> Session:
    load_base(session)
    return session


def seed(session: Session, specs: list[HazardSpec]) -> dict[int, HazardSpec]:
    ids = report_hazards(session, specs, REPORTED)
    assign_hazards(session, ids, specs, REPORTED)
    return dict(zip(ids, specs, strict=True))


def crash_specs(n: int) -> list[HazardSpec]:
    return [HazardSpec(MIX[i % len(MIX)][0], SWEEP_AT + MIX[i % len(MIX)][1],
                       UNITS[i % len(UNITS)]) for i in range(n)]


def levels(session: Session) -> dict[int, int]:
    rows = session.connection().execute(select(HAZ.c.id, HAZ.c.escalation_level)).all()
    session.rollback()
    return dict(rows)


def check_hazards(session: Session, hazards: dict[int, HazardSpec], at: datetime,
                  *, complete: bool = True) -> None:
    """Escalate events per hazard: exactly the ladder's (or, after a kill, a prefix of them),
    never one twice, and the stored level is the last one audited."""
    events = escalate_events(session)
    stored = levels(session)
    for hid, spec in hazards.items():
        want = expected_escalations(spec, at)
        got = events.get(hid, [])
        if complete:
            assert got == want, (hid, spec, got, want)
            assert stored[hid] == ladder_level(spec, at), (hid, spec)
        else:
            assert got == want[:len(got)], (hid, spec, got, want)
            assert stored[hid] == (got[-1] if got else 0), (hid, got, stored[hid])
    outbox_matches_audit(session, "escalate")
    outbox_matches_audit(session, "remind_due")


@pytest.mark.slow
def test_sweep_killed_midway_then_rerun(base: Session, db_url: str, tmp_path: Path) -> None:
    read, close = counter(
        db_url, "SELECT count(*) FROM audit_entry WHERE event = 'escalate'")
    hazards: dict[int, HazardSpec] = {}
    outcome: KillOutcome | None = None
    try:
        # if the sweep finishes before the poll sees it half done, add more hazards to the
        # same database and sweep again with smaller batches
        for n, batch in ((3_600, 50), (7_200, 25), (14_400, 10)):
            with Children("sweep", db_url, SWEEP_AT, batch, tmp_path) as run:
                added = seed(base, crash_specs(n))
                hazards.update(added)
                done = read()
                total = sum(len(expected_escalations(s, SWEEP_AT)) for s in hazards.values())
                run.start()
                outcome = kill_midway(run, read, done, total)
            if outcome.killed:
                break
        assert outcome is not None and outcome.killed, f"never killed mid-way: {outcome}"
        assert done < outcome.seen <= outcome.after < total, outcome
    finally:
        close()

    # whole batches only: every hazard has a prefix of its ladder, the rows match the trail
    check_hazards(base, hazards, SWEEP_AT, complete=False)
    verify_and_replay(base)

    report = sweep(base, as_of=SWEEP_AT, batch_size=1_000)
    assert report.refused == 0
    assert sum(report.escalations.values()) == total - outcome.after
    check_hazards(base, hazards, SWEEP_AT)
    due_soon = {h for h, s in hazards.items() if SWEEP_AT < s.deadline <= SWEEP_AT + DAY}
    assert event_counts(base, "hazard", "remind_due") == Counter(dict.fromkeys(due_soon, 1))
    verify_and_replay(base)

    again = sweep(base, as_of=SWEEP_AT, batch_size=1_000)
    assert again.to_dict() == {"reminders": 0, "escalations": {}, "missed": 0, "refused": 0,
                              "duties_overdue": 0, "listing_escalations": {},
                              "reports_overdue": 0, "risk_reviews": 0}


# ---- repeated sweeps ------------------------------------------------------------------------

D = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)  # the hazards' deadline: Wednesday 10:00 local
MATERIALIZED = D - 12 * H  # 22:00 local on Tuesday 9 June: the day's tasks end at 16:00 UTC
PERIOD_END = {  # local midnights in UTC, written out
    "2026-06-09": datetime(2026, 6, 9, 16, tzinfo=UTC),
    "2026-W24": datetime(2026, 6, 14, 16, tzinfo=UTC),
    "2026-06": datetime(2026, 6, 30, 16, tzinfo=UTC),
    "2026-Q2": datetime(2026, 6, 30, 16, tzinfo=UTC),
}
PLANT1 = ["jinhua-plant1", "jinhua-ws-synth", "jinhua-team-a", "jinhua-team-b",
          "jinhua-ws-storage", "jinhua-team-tank"]  # where li.anquan is safety officer


def test_repeated_sweeps_fire_each_event_once(base: Session) -> None:
    general = seed(base, [HazardSpec("general", D, UNITS[i % 4]) for i in range(30)])
    major = seed(base, [HazardSpec("major", D, UNITS[i % 4]) for i in range(10)])
    extended = seed(base, [HazardSpec("general", D, UNITS[i % 4]) for i in range(10)])
    G, M, X = set(general), set(major), set(extended)

    insert_plans(base, plan_rows(60, "S"), PLANT1)
    made = materialize(base, as_of=MATERIALIZED)
    conn = base.connection()
    tasks = {row[0]: (row[1], row[2]) for row in conn.execute(
        select(TASK.c.id, TASK.c.period_key, TASK.c.period_end))}
    base.rollback()
    assert made.total == len(tasks) and set(made.created) == set(PERIOD_END)
    for key, end in tasks.values():
        assert end.replace(tzinfo=UTC) == PERIOD_END[key]
    daily = sorted(t for t, (k, _) in tasks.items() if k == "2026-06-09")
    weekly = sorted(t for t, (k, _) in tasks.items() if k == "2026-W24")
    # some tasks are under way (still open: they can be missed), some cancelled (never missed)
    cancelled = {daily[0], weekly[0]}
    engine.fire_many(base, INSPECTION, [FireRequest(t, "start", "li.anquan")
                                        for t in (daily[1], daily[2], weekly[1])],
                     as_of=MATERIALIZED)
    engine.fire_many(base, INSPECTION, [FireRequest(t, "cancel", "li.anquan", comment="停产检修")
                                        for t in sorted(cancelled)], as_of=MATERIALIZED)

    extend = {"deadline": D + 3 * DAY + 12 * H}  # due soon again at D + 3 days

    def extend_x() -> None:
        unit_of = {h: s.unit for h, s in extended.items()}
        engine.fire_many(base, HAZARD, [
            FireRequest(h, "extend_deadline", PRINCIPAL[_enterprise(unit_of[h])],
                        comment="等待备件到货", data=extend) for h in sorted(X)],
            as_of=D - H)

    # (as_of, reminded, {level: hazards}, missed); an action runs before the sweep
    steps: list[tuple[datetime, set[int], dict[int, set[int]], set[int]]] = [
        (D - 12 * H, G | M | X, {}, set()),
        (D - 6 * H, set(), {}, set(daily) - cancelled),
        (D, set(), {1: G, 3: M}, set()),
        (D + DAY, set(), {}, set()),
        (D + 3 * DAY, X, {2: G}, set()),
        (D + 3 * DAY, set(), {}, set()),
        (D + 7 * DAY, set(), {3: G, 1: X, 2: X}, set(weekly) - cancelled),
        (D + 8 * DAY, set(), {}, set()),
    ]
    seen_esc: set[tuple[int, int]] = set()
    seen_remind: Counter[int] = Counter()
    seen_miss: Counter[int] = Counter()
    for n, (at, reminded, escalated, missed) in enumerate(steps):
        if n == 2:
            extend_x()
        report = sweep(base, as_of=at, batch_size=7)
        assert report.refused == 0, (at, report)
        assert report.reminders == len(reminded), (at, report)
        assert report.escalations == {lv: len(hs) for lv, hs in escalated.items()}, (at, report)
        assert report.missed == len(missed), (at, report)

        events = escalate_events(base)
        now_esc = {(h, lv) for h, lvs in events.items() for lv in lvs}
        assert sum(len(v) for v in events.values()) == len(now_esc)  # no level twice
        assert now_esc - seen_esc == {(h, lv) for lv, hs in escalated.items() for h in hs}, at
        seen_esc = now_esc
        remind = event_counts(base, "hazard", "remind_due")
        assert remind - seen_remind == Counter(dict.fromkeys(reminded, 1)), at
        seen_remind = remind
        miss = event_counts(base, "inspection", "miss")
        assert miss - seen_miss == Counter(dict.fromkeys(missed, 1)), at
        seen_miss = miss

    # the end state: the ladder's level for all, level 3 only for major hazards, one reminder
    # per deadline (two for the extended ones), each ended open task missed once
    final = escalate_events(base)
    assert all(final[h] == [1, 2, 3] for h in G)
    assert all(final[h] == [3] for h in M)
    assert all(final[h] == [1, 2] for h in X)
    assert levels(base) == {**dict.fromkeys(G | M, 3), **dict.fromkeys(X, 2)}
    assert seen_remind == Counter({**dict.fromkeys(G | M, 1), **dict.fromkeys(X, 2)})
    assert seen_miss == Counter(dict.fromkeys((set(daily) | set(weekly)) - cancelled, 1))
    states = dict(base.connection().execute(select(TASK.c.id, TASK.c.state)).all())
    base.rollback()
    assert {t for t, s in states.items() if s == "missed"} == set(seen_miss)
    assert {t for t, s in states.items() if s == "cancelled"} == cancelled
    assert all(s == "scheduled" for t, s in states.items()
               if tasks[t][0] in ("2026-06", "2026-Q2"))
    outbox_matches_audit(base, "escalate")
    outbox_matches_audit(base, "remind_due")
    verify_and_replay(base)


def _enterprise(unit: str) -> str:
    return unit.split("-", 1)[0]

