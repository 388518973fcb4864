"""One ``engine.fire`` per commit: the interactive path (CLI, web) on the embedded SQLite file.

Pre-seeded rectifying hazards are cycled submit → reject → submit …, each event its own transaction
with its audit and outbox row; the same sequence runs as hand-written sqlite3 (``bench.rawsql``) on
an identical copy of the file, in alternating blocks so both see the same machine load.
Target from the issue: >= 2,000 transitions/s and >= 25 % of the baseline.
"""

from __future__ import annotations

from sqlmodel import Session

from bench import rawsql
from bench.common import (
    MANAGER,
    OPTIONS,
    OWNER,
    REJECT_REASON,
    Result,
    Stopwatch,
    check_chain,
    clone_database,
    new_database,
    raw_connect,
    scratch_dir,
    seed_prior_audit,
    seed_rectifying,
)
from models.db import make_engine
from states import engine
from states.workflows.hazard import HAZARD

NAME = "fire_single"
TARGET_RATE = 2_000.0
TARGET_RATIO = 0.25
BLOCK = 250  # transitions per lap before switching between engine and baseline

Step = tuple[int, str, str, str | None]  # hazard, event, actor, comment


def schedule(ids: list[int], n: int) -> list[Step]:
    """n transitions cycling over the hazards: a full round of submits, then of rejects, …"""
    plan: list[Step] = []
    for i in range(n):
        rnd, k = divmod(i, len(ids))
        if rnd % 2 == 0:
            plan.append((ids[k], "submit", OWNER, None))
        else:
            plan.append((ids[k], "reject", MANAGER, REJECT_REASON))
    return plan


def run(quick: bool = False, profile: bool = False) -> Result:
    n, hazards = (1_500, 500) if quick else (4_000, 1_000)
    with scratch_dir(NAME) as tmp:
        ours, theirs = tmp / "engine.db", tmp / "baseline.db"
        seeding = new_database(ours)
        ids = seed_rectifying(seeding, hazards)
        prior = seed_prior_audit(seeding, OPTIONS.prior_audit)
        clone_database(seeding, ours, theirs)
        plan = schedule(ids, n)
        measured, baseline = Stopwatch(profile), Stopwatch()
        eng, raw = make_engine(f"sqlite:///{ours}"), raw_connect(theirs)
        try:
            with Session(eng, expire_on_commit=False) as session:
                for k, start in enumerate(range(0, n, BLOCK)):
                    block = plan[start : start + BLOCK]
                    for turn in ((0, 1) if k % 2 == 0 else (1, 0)):
                        if turn == 0:
                            with baseline.lap():
                                for hid, event, actor, comment in block:
                                    rawsql.fire_one(raw, hid, event, actor, comment)
                        else:
                            with measured.lap():
                                for hid, event, actor, comment in block:
                                    engine.fire(session, HAZARD, hid, event, actor=actor,
                                                comment=comment)
        finally:
            raw.close()
            eng.dispose()
        measured.print_profile(NAME)
        seeded = prior + 1 + 2 * hazards  # the org load's row + report and assign per hazard
        check_chain(ours, seeded + n)
        check_chain(theirs, seeded + n)
    return Result.of(NAME, n, measured, baseline, TARGET_RATE, TARGET_RATIO,
                     notes=f"submit/reject over {hazards:,} hazards, one commit each, "
                           "with outbox row" + (f", after {prior:,} prior audit rows" if prior else ""))
