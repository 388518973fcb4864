"""``engine.fire_many``: the scheduled sweeps' path, many events in one transaction.

Pre-seeded rectifying hazards get one event each per batch (submit, then reject, then submit …),
every batch one transaction with its audit and outbox rows; the baseline is hand-written sqlite3
with executemany (``bench.rawsql``) on an identical copy of the file, batch for batch alternating
with the engine so both see the same machine load. Target from the issue: >= 50,000/s.
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
from states.engine import FireRequest
from states.workflows.hazard import HAZARD

NAME = "fire_batch"
TARGET_RATE = 50_000.0
BATCH = 10_000


def run(quick: bool = False, profile: bool = False) -> Result:
    batches = 2 if quick else 10
    n = BATCH * batches
    with scratch_dir(NAME) as tmp:
        ours, theirs = tmp / "engine.db", tmp / "baseline.db"
        seeding = new_database(ours)
        ids = seed_rectifying(seeding, BATCH)
        prior = seed_prior_audit(seeding, OPTIONS.prior_audit)
        clone_database(seeding, ours, theirs)
        measured, baseline = Stopwatch(profile), Stopwatch()
        eng, raw = make_engine(f"sqlite:///{ours}"), raw_connect(theirs)
        try:
            with Session(eng, expire_on_commit=False) as session:
                for k in range(batches):
                    event, actor, comment = (
                        ("submit", OWNER, None) if k % 2 == 0 else ("reject", MANAGER, REJECT_REASON)
                    )
                    for turn in ((0, 1) if k % 2 == 0 else (1, 0)):
                        if turn == 0:
                            with baseline.lap():
                                rawsql.fire_batch(raw, ids, event, actor, comment)
                        else:
                            # Building the requests is timed: the sweeps have to build them too.
                            with measured.lap():
                                requests = [FireRequest(i, event, actor, comment=comment)
                                            for i in ids]
                                result = engine.fire_many(session, HAZARD, requests)
                            assert len(result.applied) == BATCH, result.refused[:1]
        finally:
            raw.close()
            eng.dispose()
        measured.print_profile(NAME)
        seeded = prior + 1 + 2 * BATCH  # the org load's row + report and assign per hazard
        check_chain(ours, seeded + n)
        check_chain(theirs, seeded + n)
    return Result.of(NAME, n, measured, baseline, TARGET_RATE,
                     notes=f"{batches} batches of {BATCH:,} submit/reject, one commit each, "
                           "with outbox rows" + (f", after {prior:,} prior audit rows" if prior else ""))
