"""``engine.fire_many``: the scheduled sweeps' path, many events in one transaction.

Pre-seeded rectifying hazards get one event each per batch (submit, then reject, then submit …),
every batch one transaction with its audit and outbox rows. Four identical copies of the seeded
file, batch for batch in rotating order so all see the same machine load:

- measured: ``fire_many`` (its set-wise path) on the current schema;
- baseline: hand-written sqlite3 with executemany (``bench.rawsql``) on the schema as it was
  before issue 16 (revision ``TODAY``): the baseline kept as it was, so the gain is visible;
- today's engine: ``fire_many(set_wise=False)`` (the general path) on that same old schema;
- the raw baseline again on the current schema (how much of the gain is the schema's).

``--prior-audit N`` (bench.run) chains N older audit rows first. Target from the issue: >= 50,000/s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench import rawsql
from bench.common import (
    MANAGER,
    OPTIONS,
    OWNER,
    REJECT_REASON,
    TODAY,
    Result,
    Stopwatch,
    check_chain,
    check_engine_chain,
    copy_database,
    new_database,
    pg_databases,
    raw_connect,
    scratch_dir,
    seed_prior_audit,
    seed_rectifying,
    upgrade_file,
)
from models.db import make_engine
from states import audit, engine, rows
from states.engine import FireRequest
from states.workflows.hazard import HAZARD

NAME = "fire_batch"
TARGET_RATE = 50_000.0
TARGET_RATIO = 1.2  # issue 16: >= 120 % of today's rawsql baseline
BATCH = 10_000


def run(quick: bool = False, profile: bool = False) -> Result:
    batches = 2 if quick else 10
    if OPTIONS.db_url:
        return run_pg(OPTIONS.db_url, batches, profile)
    n = BATCH * batches
    with scratch_dir(NAME) as tmp:
        files = {k: tmp / f"{k}.db" for k in ("setwise", "baseline", "general", "raw_lean")}
        seeding = new_database(files["baseline"], revision=TODAY)
        ids = seed_rectifying(seeding, BATCH)
        prior = seed_prior_audit(seeding, OPTIONS.prior_audit)
        seeding.dispose()
        for key in ("setwise", "general", "raw_lean"):
            copy_database(files["baseline"], files[key])
        for key in ("setwise", "raw_lean"):
            upgrade_file(files[key])
        watches = {"setwise": Stopwatch(profile), "baseline": Stopwatch(),
                   "general": Stopwatch(), "raw_lean": Stopwatch()}
        engines = {k: make_engine(f"sqlite:///{files[k]}") for k in ("setwise", "general")}
        raws = {k: raw_connect(files[k]) for k in ("baseline", "raw_lean")}
        order = list(watches)
        try:
            for k in range(batches):
                event, actor, comment = (
                    ("submit", OWNER, None) if k % 2 == 0 else ("reject", MANAGER, REJECT_REASON))
                for key in order[k % 4:] + order[:k % 4]:
                    step = (_engine_step(engines[key], key == "setwise") if key in engines
                            else _raw_step(raws[key]))
                    with watches[key].lap():
                        step(ids, event, actor, comment)
        finally:
            for raw in raws.values():
                raw.close()
            for eng in engines.values():
                eng.dispose()
        watches["setwise"].print_profile(NAME)
        seeded = prior + 1 + 2 * BATCH  # the org load's row + report and assign per hazard
        for path in files.values():
            check_chain(path, seeded + n)
    rate = {k: n / w.seconds for k, w in watches.items()}
    return Result.of(
        NAME, n, watches["setwise"], watches["baseline"], TARGET_RATE, TARGET_RATIO,
        notes=f"{batches} batches of {BATCH:,} submit/reject, one commit each, with outbox rows"
              + (f", after {prior:,} prior audit rows" if prior else "")
              + f"; baseline = rawsql on the schema before issue 16 ({TODAY}); today's engine "
              f"(general path, that schema) {rate['general']:,.0f}/s -> set-wise "
              f"{rate['setwise'] / rate['general']:.2f}x; rawsql on the lean schema "
              f"{rate['raw_lean']:,.0f}/s (set-wise = {rate['setwise'] / rate['raw_lean']:.0%} "
              "of it)")


@contextmanager
def _copy_allowed(allowed: bool) -> Iterator[None]:
    """Today's engine wrote audit and outbox rows with executemany: so it does in its laps."""
    saved = audit._COPY_MIN, rows._COPY_MIN
    if not allowed:
        audit._COPY_MIN = rows._COPY_MIN = 1 << 62
    try:
        yield
    finally:
        audit._COPY_MIN, rows._COPY_MIN = saved


Step = Callable[[list[int], str, str, str | None], None]


def _engine_step(eng: Engine, set_wise: bool) -> Step:
    def step(ids: list[int], event: str, actor: str, comment: str | None) -> None:
        # Building the requests is timed: the sweeps have to build them too.
        with Session(eng, expire_on_commit=False) as session:
            requests = [FireRequest(i, event, actor, comment=comment) for i in ids]
            result = engine.fire_many(session, HAZARD, requests, set_wise=set_wise)
        assert len(result.applied) == len(ids), result.refused[:1]
    return step


def _raw_step(raw: sqlite3.Connection) -> Step:
    def step(ids: list[int], event: str, actor: str, comment: str | None) -> None:
        rawsql.fire_batch(raw, ids, event, actor, comment)
    return step


def run_pg(url: str, batches: int, profile: bool) -> Result:
    """PostgreSQL (``--db URL``): the set-wise path on the current schema against today's engine
    (the general path on the schema before issue 16), fresh schemas, batches alternating."""
    n = BATCH * batches
    with pg_databases(url, "head", TODAY) as (lean, today):
        prior = 0
        for eng in (lean, today):
            ids = seed_rectifying(eng, BATCH)
            prior = seed_prior_audit(eng, OPTIONS.prior_audit)
        measured, baseline = Stopwatch(profile), Stopwatch()
        for k in range(batches):
            event, actor, comment = (
                ("submit", OWNER, None) if k % 2 == 0 else ("reject", MANAGER, REJECT_REASON))
            for turn in ((0, 1) if k % 2 == 0 else (1, 0)):
                eng, watch = (lean, measured) if turn == 0 else (today, baseline)
                step = _engine_step(eng, turn == 0)
                with watch.lap(), _copy_allowed(turn == 0):
                    step(ids, event, actor, comment)
        measured.print_profile(NAME)
        seeded = prior + 1 + 2 * BATCH
        check_engine_chain(lean, seeded + n)
        check_engine_chain(today, seeded + n)
    return Result.of(
        f"{NAME} (PostgreSQL)", n, measured, baseline, 0.0, 2.0,
        notes=f"{batches} batches of {BATCH:,} submit/reject on PostgreSQL"
              + (f", after {prior:,} prior audit rows" if prior else "")
              + f"; baseline = today's engine: fire_many's general path on the schema before "
              f"issue 16 ({TODAY}), executemany for audit and outbox rows; target >= 2x")
