"""Does a long trail slow the engine down? The same events on an empty chain and on one with
1,000,000 older audit rows (``--prior-audit N`` to change it), in one run.

Two copies of the same seeded file (10,000 rectifying hazards), one then given the older rows;
batches of ``fire_many`` (10,000 submit/reject, the set-wise path) and blocks of single ``fire``
alternate between them, so both see the same machine load. Measured: the long chain; baseline:
the empty one. Issue 16's goal: the long chain >= 90 % of the empty one, batch and single.
"""

from __future__ import annotations

from sqlmodel import Session

from bench.common import (
    MANAGER,
    OPTIONS,
    OWNER,
    REJECT_REASON,
    Result,
    Stopwatch,
    check_chain,
    copy_database,
    new_database,
    scratch_dir,
    seed_prior_audit,
    seed_rectifying,
)
from bench.fire_single import schedule
from models.db import make_engine
from states import engine
from states.engine import FireRequest
from states.workflows.hazard import HAZARD

NAME = "audit_growth"
BATCH = 10_000
PRIOR = 1_000_000
TARGET_RATIO = 0.9
SINGLE_BLOCK = 250


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    batches, singles = (2, 1_000) if quick else (6, 3_000)
    prior = OPTIONS.prior_audit or PRIOR
    with scratch_dir(NAME) as tmp:
        empty, long = tmp / "empty.db", tmp / "long.db"
        seeding = new_database(empty)
        ids = seed_rectifying(seeding, BATCH)
        seeding.dispose()
        copy_database(empty, long)
        grown = make_engine(f"sqlite:///{long}")
        seed_prior_audit(grown, prior)
        grown.dispose()
        engines = {"empty": make_engine(f"sqlite:///{empty}"),
                   "long": make_engine(f"sqlite:///{long}")}
        batch = {"long": Stopwatch(profile), "empty": Stopwatch()}
        single = {"long": Stopwatch(), "empty": Stopwatch()}
        plan = schedule(ids[:500], singles)
        try:
            for k in range(batches):
                event, actor, comment = (
                    ("submit", OWNER, None) if k % 2 == 0 else ("reject", MANAGER, REJECT_REASON))
                for key in (("long", "empty") if k % 2 == 0 else ("empty", "long")):
                    with Session(engines[key], expire_on_commit=False) as session, \
                            batch[key].lap():
                        requests = [FireRequest(i, event, actor, comment=comment) for i in ids]
                        result = engine.fire_many(session, HAZARD, requests)
                    assert len(result.applied) == BATCH, result.refused[:1]
            for k, start in enumerate(range(0, singles, SINGLE_BLOCK)):
                block = plan[start:start + SINGLE_BLOCK]
                for key in (("long", "empty") if k % 2 == 0 else ("empty", "long")):
                    with Session(engines[key], expire_on_commit=False) as session, \
                            single[key].lap():
                        for hid, event, actor, comment in block:
                            engine.fire(session, HAZARD, hid, event, actor=actor, comment=comment)
        finally:
            for eng in engines.values():
                eng.dispose()
        batch["long"].print_profile(NAME)
        seeded = 1 + 2 * BATCH + BATCH * batches + singles
        check_chain(empty, seeded)
        check_chain(long, seeded + prior)
    note = f"{prior:,} prior audit rows against an empty chain, same run, alternating"
    return [
        Result.of(f"{NAME} fire_many", BATCH * batches, batch["long"], batch["empty"], 0.0,
                  TARGET_RATIO, notes=f"{batches} batches of {BATCH:,}; {note}"),
        Result.of(f"{NAME} fire", singles, single["long"], single["empty"], 0.0, TARGET_RATIO,
                  notes=f"{singles:,} single fires; {note}"),
    ]
