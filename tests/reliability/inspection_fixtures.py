"""Data builders, checks and child processes for the materialise and sweep reliability tests.

Plans and reported hazards are written set-wise (SQLAlchemy Core) so that tens of thousands of
them cost a second, not minutes; every hazard's ``report`` audit row is written beside it exactly
as ``states.engine.create`` would (same fields, same canonical data), and assignment goes through
the real engine (``fire_many``), so ``states.jobs.replay`` can check the result.

``Children`` runs the crash and overlap tests' subprocesses (``CHILD``: materialise or sweep on
a URL), released by a signal file so that two start at the same instant.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.engine import Engine, create_engine
from sqlmodel import Session

from models.db import is_sqlite, make_engine
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import HAZARD as HAZ
from models.tables import INSPECTION_PLAN as PLAN
from models.tables import INSPECTION_TASK as TASK
from models.tables import OUTBOX, PERSON
from safeloop import checklists, orgfile
from states import audit, engine
from states.engine import FireRequest
from states.jobs.materialize import BATCH_ENTITY
from states.jobs.replay import replay
from states.workflows.hazard import HAZARD, ReportParams
from tests.conftest import DEMO_ORG

ROOT = Path(__file__).resolve().parents[2]

CADENCES = ("daily", "weekly", "monthly", "quarterly")
ACTIVE_FROM = date(2026, 1, 1)
# Who manages each enterprise's hazards in the demo org (principal over the whole enterprise).
PRINCIPAL = {"jinhua": "wang.zhuren", "xinfeng": "zheng.changzhang"}
# An owner must be able to submit in the hazard's unit: the plants' safety officers cover every
# unit the fixtures use (a workshop's rectifier would not cover the tank farm).
OWNER = {"jinhua": "li.anquan", "xinfeng": "chen.anyuan"}


# ---- setup ----------------------------------------------------------------------------------


def load_base(session: Session) -> None:
    """The demo organisation and the shipped checklist templates."""
    orgfile.load(session, DEMO_ORG)
    checklists.load_shipped(session)


@dataclass(frozen=True)
class UnitRow:
    id: int
    key: str
    tier: str
    enterprise_id: int
    enterprise_key: str


def units(session: Session, keys: Sequence[str] | None = None) -> list[UnitRow]:
    rows = session.connection().exec_driver_sql(
        "SELECT u.id, u.key, u.tier, u.enterprise_id, e.key FROM unit u "
        "JOIN enterprise e ON e.id = u.enterprise_id ORDER BY u.id").all()
    session.rollback()
    found = [UnitRow(*r) for r in rows]
    return [u for u in found if keys is None or u.key in keys]


@dataclass(frozen=True)
class PlanRow:
    key: str
    cadence: str
    calendar_mode: str
    active_from: date
    active_until: date | None


def plan_rows(n: int, prefix: str) -> list[PlanRow]:
    """``n`` plans cycling through the cadences; one in 13 not yet active, one in 17 ended, one in
    5 daily plans on working days only (the test dates are working days)."""
    rows = []
    for i in range(n):
        cadence = CADENCES[i % len(CADENCES)]
        mode = "working_days" if cadence == "daily" and i % 5 == 0 else "all_days"
        start, until = ACTIVE_FROM, None
        if i % 13 == 7:
            start = date(2026, 12, 1)
        elif i % 17 == 3:
            until = date(2026, 2, 1)
        rows.append(PlanRow(f"{prefix}{i:06d}", cadence, mode, start, until))
    return rows


def insert_plans(session: Session, rows: Sequence[PlanRow],
                 unit_keys: Sequence[str] | None = None) -> None:
    """Insert plans set-wise, spread round-robin over the units, each with its tier's template."""
    spread = units(session, unit_keys)
    templates = {tier: checklists.latest(session, f"general-{tier}")
                 for tier in {u.tier for u in spread}}
    session.rollback()
    now = datetime(2025, 12, 20, tzinfo=UTC)
    values = []
    for i, row in enumerate(rows):
        unit = spread[i % len(spread)]
        values.append({
            "key": row.key, "name": f"压测计划 {row.key}", "unit_id": unit.id,
            "enterprise_id": unit.enterprise_id, "tier": unit.tier, "cadence": row.cadence,
            "template_id": templates[unit.tier], "assignee_id": None, "assignee_role": None,
            "calendar_mode": row.calendar_mode, "active_from": row.active_from,
            "active_until": row.active_until, "created_at": now,
        })
    conn = session.connection()
    for start in range(0, len(values), 5_000):
        conn.execute(insert(PLAN), values[start:start + 5_000])
    session.commit()


def expected_pairs(session: Session, today: date, keys: dict[str, str]) -> set[tuple[int, str]]:
    """(plan id, period key) of every plan active on ``today``, computed here, not by the code
    under test; ``keys`` maps cadence -> the period key the test expects.  ``today`` must be a
    working day (working-days-only daily plans count)."""
    rows = session.connection().execute(select(
        PLAN.c.id, PLAN.c.cadence, PLAN.c.active_from, PLAN.c.active_until)).all()
    session.rollback()
    found = set()
    for pid, cadence, start, until in rows:
        if start > today or (until is not None and until < today):
            continue
        found.add((pid, keys[cadence]))
    return found


# ---- hazards --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HazardSpec:
    grade: str  # general | major
    deadline: datetime
    unit: str = "jinhua-team-a"


def report_hazards(session: Session, specs: Sequence[HazardSpec], at: datetime) -> list[int]:
    """Insert ``reported`` hazards set-wise with their ``report`` audit rows (as engine.create)."""
    by_key = {u.key: u for u in units(session)}
    conn = session.connection()
    people = dict(conn.execute(select(PERSON.c.key, PERSON.c.id)).all())
    run = uuid.uuid4().hex[:8]
    rows, entries_data = [], []
    for n, spec in enumerate(specs):
        unit = by_key[spec.unit]
        params = ReportParams(unit=spec.unit, title=f"压测隐患 {n}", category="thing",
                              grade=spec.grade)  # type: ignore[arg-type]
        rows.append({
            "code": f"tmp-{run}-{n:07d}", "enterprise_id": unit.enterprise_id,
            "unit_id": unit.id, "title": params.title, "description": "", "category": "thing",
            "grade": spec.grade, "location": "", "source": "ad_hoc", "state": "reported",
            "version": 1, "found_at": at, "finder_id": people[PRINCIPAL[unit.enterprise_key]],
            "escalation_level": 0, "created_at": at, "updated_at": at,
        })
        entries_data.append((PRINCIPAL[unit.enterprise_key], audit.canonical_data(
            params.model_dump(mode="json", exclude_none=True))))
    conn.execute(insert(HAZ), rows)  # executemany: no RETURNING, so the ids are read back
    by_code = dict(conn.execute(select(HAZ.c.code, HAZ.c.id)
                                .where(HAZ.c.code.like(f"tmp-{run}-%"))).all())
    ids = [by_code[row["code"]] for row in rows]
    conn.execute(update(HAZ).where(HAZ.c.id == bindparam("b_id")).values(code=bindparam("b_code")),
                 [{"b_id": i, "b_code": f"YH-{i:06d}"} for i in ids])
    at_text = audit.format_at(at)
    audit.append(conn, [
        audit.PendingEntry("hazard", i, f"YH-{i:06d}", "report", None, "reported", actor,
                           "principal", at_text, None, data, None)
        for i, (actor, data) in zip(ids, entries_data, strict=True)
    ])
    session.commit()
    return ids


def assign_hazards(session: Session, ids: Sequence[int], specs: Sequence[HazardSpec],
                   at: datetime, chunk: int = 2_000) -> None:
    """Assign through the engine (general → rectifying, major → planning)."""
    by_key = {u.key: u for u in units(session)}
    requests = []
    for hid, spec in zip(ids, specs, strict=True):
        ent = by_key[spec.unit].enterprise_key
        requests.append(FireRequest(hid, "assign", PRINCIPAL[ent],
                                    data={"owner": OWNER[ent], "deadline": spec.deadline}))
    for start in range(0, len(requests), chunk):
        result = engine.fire_many(session, HAZARD, requests[start:start + chunk], as_of=at)
        assert len(result.applied) == len(requests[start:start + chunk])


def ladder_level(spec: HazardSpec, as_of: datetime, ladder: Sequence[int] = (0, 3, 7)) -> int:
    """The level the 0/3/7-day ladder gives, computed independently of states.jobs.sweep."""
    if spec.deadline > as_of:
        return 0
    if spec.grade == "major":
        return 3
    overdue = as_of - spec.deadline
    return sum(1 for days in ladder if overdue >= timedelta(days=days))


def expected_escalations(spec: HazardSpec, as_of: datetime) -> list[int]:
    level = ladder_level(spec, as_of)
    if level == 0:
        return []
    return [3] if spec.grade == "major" else list(range(1, level + 1))


def escalate_events(session: Session) -> dict[int, list[int]]:
    """hazard id -> the levels of its escalate audit rows, in chain order."""
    rows = session.connection().execute(
        select(AUDIT.c.entity_id, AUDIT.c.data).where(
            AUDIT.c.entity_type == "hazard", AUDIT.c.event == "escalate").order_by(AUDIT.c.seq)
    ).all()
    session.rollback()
    found: dict[int, list[int]] = {}
    for hid, data in rows:
        found.setdefault(hid, []).append(json.loads(data)["level"])
    return found


def event_counts(session: Session, entity_type: str, event: str) -> Counter[int]:
    rows = session.connection().execute(
        select(AUDIT.c.entity_id).where(AUDIT.c.entity_type == entity_type, AUDIT.c.event == event)
    ).scalars().all()
    session.rollback()
    return Counter(rows)


def outbox_matches_audit(session: Session, event: str) -> None:
    """Every audit row of ``event`` has its outbox rows and no outbox row lacks its audit row:
    a killed batch left neither half behind."""
    conn = session.connection()
    seqs = set(conn.execute(select(AUDIT.c.seq).where(AUDIT.c.event == event,
                                                      AUDIT.c.entity_type == "hazard")).scalars())
    sent = set(conn.execute(select(OUTBOX.c.audit_seq).where(
        OUTBOX.c.event == event, OUTBOX.c.entity_type == "hazard")).scalars())
    session.rollback()
    assert sent == seqs, "outbox and audit rows disagree"


# ---- checks ---------------------------------------------------------------------------------


def verify_and_replay(session: Session) -> None:
    conn = session.connection()
    result = audit.verify(conn)
    session.rollback()
    assert result.ok, result.to_dict()
    report = replay(session.connection())
    session.rollback()
    assert report.ok, report.differences[:5]


def task_pairs(session: Session) -> Counter[tuple[int, str]]:
    rows = session.connection().execute(select(TASK.c.plan_id, TASK.c.period_key)).all()
    session.rollback()
    return Counter((r[0], r[1]) for r in rows)


def check_tasks(session: Session, expected: set[tuple[int, str]]) -> None:
    """Exactly one task per expected (plan, period), none else; codes; batches and audit agree."""
    pairs = task_pairs(session)
    duplicated = [p for p, n in pairs.items() if n > 1]
    assert not duplicated, f"duplicate tasks: {duplicated[:5]}"
    missing = expected - pairs.keys()
    extra = pairs.keys() - expected
    assert not missing, f"{len(missing)} gaps, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected tasks, e.g. {sorted(extra)[:5]}"
    conn = session.connection()
    wrong = conn.execute(
        select(TASK.c.code, PLAN.c.key, TASK.c.period_key)
        .join(PLAN, PLAN.c.id == TASK.c.plan_id)
        .where(TASK.c.code != PLAN.c.key + "/" + TASK.c.period_key).limit(5)).all()
    assert not wrong, wrong
    not_scheduled = conn.execute(select(func.count()).select_from(TASK).where(
        TASK.c.state != "scheduled")).scalar_one()
    assert not_scheduled == 0
    # The batch audit rows partition the tasks: each id in exactly one batch's ranges, that
    # batch is the one the task row names, and the counts add up.
    batches = conn.execute(select(AUDIT.c.entity_code, AUDIT.c.data).where(
        AUDIT.c.entity_type == BATCH_ENTITY, AUDIT.c.event == "materialize")).all()
    tasks = dict(conn.execute(select(TASK.c.id, TASK.c.batch)).all())
    session.rollback()
    covered: dict[int, str] = {}
    for batch, raw in batches:
        data = json.loads(raw)
        ids = [i for lo, hi in data["ids"] for i in range(lo, hi + 1)]
        assert len(ids) == data["count"]
        for i in ids:
            assert i not in covered, f"task {i} claimed by two batches"
            covered[i] = batch
    assert covered == tasks, "batch audit rows do not match the task rows"


# ---- subprocesses ---------------------------------------------------------------------------


class Children:
    """``n`` child processes each running ``kind`` (materialize | sweep) at ``as_of`` on ``url``.

    A child imports and connects, then waits for the start signal (``start``), so the caller
    can seed data meanwhile and release every child at the same instant."""

    def __init__(self, kind: str, url: str, as_of: datetime, batch_size: int,
                 directory: Path, n: int = 1) -> None:
        assert kind in ("materialize", "sweep")
        self.tag = f"sync-{uuid.uuid4().hex[:8]}"
        self.url = url
        self.go = directory / f"{self.tag}-go"
        self.ready = [directory / f"{self.tag}-{i}" for i in range(n)]
        # on PostgreSQL the children's sessions carry the tag, so ``settle`` can find them
        sep = "&" if "?" in url else "?"
        child_url = url if is_sqlite(url) else f"{url}{sep}application_name={self.tag}"
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, kind, child_url, as_of.isoformat(),
                 str(batch_size), str(ready), str(self.go)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for ready in self.ready
        ]

    def start(self, timeout: float = 120) -> None:
        """Wait until every child is ready, then start them all."""
        limit = time.monotonic() + timeout
        while not all(r.exists() for r in self.ready):
            for proc in self.procs:
                if proc.poll() is not None:
                    raise AssertionError(f"child exited early:\n{proc.communicate()[1][-3000:]}")
            assert time.monotonic() < limit, "children never became ready"
            time.sleep(0.005)
        self.go.touch()

    def results(self, timeout: float = 300) -> list[dict[str, Any]]:
        """Each child's report; waits for all, then asserts every one succeeded."""
        outputs = [(proc, *proc.communicate(timeout=timeout)) for proc in self.procs]
        for proc, _out, err in outputs:
            assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{err[-3000:]}"
        return [json.loads(out.strip().splitlines()[-1]) for _proc, out, _err in outputs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout is not None and not proc.stdout.closed:
                proc.communicate()

    def settle(self, timeout: float = 60) -> None:
        """After a kill: wait until the server has ended the children's sessions (PostgreSQL
        finishes or rolls back a killed client's transaction on its own time)."""
        if is_sqlite(self.url):
            return  # the process is gone, and with it its lock and open transaction
        eng = make_engine(self.url, isolation_level="AUTOCOMMIT")
        limit = time.monotonic() + timeout
        try:
            with eng.connect() as conn:
                while conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = :tag"),
                                   {"tag": self.tag}).scalar_one():
                    assert time.monotonic() < limit, "killed child's session never ended"
                    time.sleep(0.01)
        finally:
            eng.dispose()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def poll_engine(url: str) -> Engine:
    """A reader that does not take SQLite's write lock (make_engine begins IMMEDIATE)."""
    if is_sqlite(url):
        return create_engine(url)
    return make_engine(url, isolation_level="AUTOCOMMIT")


@dataclass
class KillOutcome:
    killed: bool
    seen: int  # the count read just before the kill
    after: int  # the count once the child was dead
    returncode: int | None


def kill_midway(children: Children, count: Callable[[], int], low: int, high: int,
                fraction: float = 0.25, interval: float = 0.002,
                timeout: float = 120) -> KillOutcome:
    """Poll ``count`` until it is past ``fraction`` of the way from low to high (and still short
    of high), then SIGKILL the (only) child.

    ``killed`` is true only if the child really died before finishing (its work was still
    short of ``high`` once it was dead and its session ended); a child that finished first is
    waited for."""
    [proc] = children.procs
    threshold = low + max(1, int((high - low) * fraction))
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        seen = count()
        if threshold <= seen < high:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            children.settle()
            after = count()
            died = proc.returncode == -signal.SIGKILL
            return KillOutcome(died and after < high, seen, after, proc.returncode)
        time.sleep(interval)
    children.results(timeout=timeout)  # finished first (or failed: raises)
    return KillOutcome(False, count(), count(), proc.returncode)


def counter(url: str, sql: str) -> tuple[Callable[[], int], Callable[[], None]]:
    """(read the count, dispose) over one long-lived reader connection."""
    eng = poll_engine(url)
    conn = eng.connect()

    def read() -> int:
        value = int(conn.execute(text(sql)).scalar_one())
        conn.rollback()
        return value

    def close() -> None:
        conn.close()
        eng.dispose()

    return read, close


# ---- the child process ----------------------------------------------------------------------

# Run with ``python -c``: it imports only what the operation needs (not pytest, not this module),
# so it starts quickly.  argv: kind url as_of batch_size ready-file go-file
CHILD = """
import json, os, sys, time
from datetime import datetime
from pathlib import Path
from sqlmodel import Session
from sqlalchemy import select
from models.db import make_engine
kind, url, as_of, batch, ready, go = sys.argv[1:]
if kind == "materialize":
    from states.jobs.materialize import materialize as run
else:
    from states.jobs.sweep import sweep as run
eng = make_engine(url)
with Session(eng, expire_on_commit=False) as session:
    session.connection().execute(select(1))
    session.rollback()
    Path(ready).write_text(str(os.getpid()))
    limit = time.monotonic() + 120
    while not Path(go).exists():
        if time.monotonic() > limit:
            raise SystemExit("no start signal")
        time.sleep(0.001)
    started = time.time()
    report = run(session, as_of=datetime.fromisoformat(as_of), batch_size=int(batch))
    if kind == "materialize":
        out = {"created": report.total, "batches": report.batches}
    else:
        out = report.to_dict()
    out.update(started=started, ended=time.time())
eng.dispose()
print(json.dumps(out))
"""
