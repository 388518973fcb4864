"""Materialising duties recovers from a run killed (SIGKILL) mid-way: the killed run leaves whole
batches (kinds), each with its audit row naming exactly its rows; a rerun creates the rest, each
duty once; the chain verifies and the trail replays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlmodel import Session

from models.tables import AUDIT_ENTRY, DUTY, ENTERPRISE, JURISDICTION, UNIT
from states.audit import verify
from states.jobs.duties import materialize_duties
from states.jobs.replay import replay

AS_OF = datetime(2026, 11, 30, 16, 5, tzinfo=UTC)  # 2026-12-01 00:05 local
UNTIL = datetime(2026, 12, 31, 15, tzinfo=UTC)
CHILD = """
import sys
from datetime import datetime
from sqlmodel import Session
from models.db import make_engine
from states.jobs.duties import materialize_duties
engine = make_engine(sys.argv[1])
with Session(engine) as session:
    materialize_duties(session, as_of=datetime.fromisoformat(sys.argv[2]),
                       until=datetime.fromisoformat(sys.argv[3]))
"""


def _seed(session: Session, count: int) -> None:
    conn = session.connection()
    jurisdiction = conn.execute(select(JURISDICTION.c.id).where(JURISDICTION.c.key == "xz-edz")).scalar_one()
    first = int(conn.execute(select(func.max(ENTERPRISE.c.id))).scalar_one()) + 1
    base = int(conn.execute(select(func.max(UNIT.c.id))).scalar_one()) + 1
    conn.execute(insert(ENTERPRISE), [
        {"id": first + i, "key": f"k-e{i:05d}", "name": f"企业 {i}",
         "industry": ("化工", "冶金", "工贸")[i % 3], "jurisdiction_id": jurisdiction}
        for i in range(count)])
    conn.execute(insert(UNIT), [
        {"id": base + i, "key": f"k-e{i:05d}-top", "name": f"企业 {i}", "tier": "group",
         "enterprise_id": first + i, "parent_id": None, "path": f"/{base + i}/"}
        for i in range(count)])
    session.commit()


def _count(session: Session, table=DUTY) -> int:
    n = session.connection().execute(select(func.count()).select_from(table)).scalar_one()
    session.rollback()
    return int(n)


def _whole_batches(session: Session) -> None:
    """Every batch in the table has its audit row, and that row counts exactly its rows."""
    conn = session.connection()
    rows = dict(conn.execute(select(DUTY.c.batch, func.count()).group_by(DUTY.c.batch)).all())
    audited = {code: data for code, data in conn.execute(
        select(AUDIT_ENTRY.c.entity_code, AUDIT_ENTRY.c.data).where(
            AUDIT_ENTRY.c.entity_type == "duty_batch"))}
    session.rollback()
    assert set(rows) == set(audited)
    for batch, n in rows.items():
        assert json.loads(audited[batch])["count"] == n, batch


# Written out from the seed: 3,000 enterprises (1,000 each 化工, 冶金, 工贸) plus the demo org's
# two (化工, 工贸; three workshops); December 2026 has 23 working days and ISO weeks 49-53.
HIGH_RISK, CHEMICAL, ALL = 2_001, 1_001, 3_002
EXPECTED = (HIGH_RISK * 31 + HIGH_RISK * 23 + CHEMICAL * 31  # duty days, shifts, commitments
            + ALL + 3 + HIGH_RISK  # yearly drill, on-site drills (workshops), high-risk drill
            + CHEMICAL + CHEMICAL * 5 + ALL)  # technical check, weekly checks, plan evaluation


def test_sigkill_midway_then_rerun(org: Session, db_url: str) -> None:
    _seed(org, 3_000)
    child = subprocess.Popen([sys.executable, "-c", CHILD, db_url, AS_OF.isoformat(),
                              UNTIL.isoformat()], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = 0
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        seen = _count(org)
        if 0 < seen < EXPECTED:
            os.kill(child.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    child.communicate(timeout=60)
    if child.returncode != -signal.SIGKILL:
        pytest.skip(f"the run finished before it could be killed (exit {child.returncode})")
    after = _count(org)
    assert 0 < after < EXPECTED
    _whole_batches(org)  # whole kinds only, each with its audit row
    assert verify(org.connection()).ok and replay(org.connection()).ok
    rest = materialize_duties(org, as_of=AS_OF, until=UNTIL)
    assert rest.created == EXPECTED - after and _count(org) == EXPECTED
    _whole_batches(org)
    assert materialize_duties(org, as_of=AS_OF, until=UNTIL).created == 0
    assert verify(org.connection()).ok and replay(org.connection()).ok
