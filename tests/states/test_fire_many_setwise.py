"""The set-wise path of ``fire_many`` writes exactly what the general path writes.

Two databases built the same way with the audit clock frozen, so every recorded time and hence
every hash can agree; each hypothesis example fires one random uniform batch on both -- set-wise
on one, ``set_wise=False`` on the other -- and both databases must then hold identical hazard,
audit (every column, hashes included) and outbox rows, and the two calls must have returned the
same result or raised the same refusal. A refusal in a batch without ``skip_refused`` must leave
both databases as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from core.errors import SafeloopError
from models.db import make_engine
from models.tables import AUDIT_ENTRY, OUTBOX
from models.tables import HAZARD as HAZARD_TABLE
from states import audit, engine, rows, setwise
from states.engine import FireRequest
from states.workflows.hazard import HAZARD
from tests.conftest import BACKENDS
from tests.helpers import NOW, TemplateDatabases, assign, fire, report

FROZEN = datetime(2026, 11, 2, 2, 30, tzinfo=UTC)
OWNER, MANAGER = "sun.banzhang", "li.anquan"
# (event, actor, comment, data): uniform batches the set-wise path takes
BATCHES = [
    ("submit", OWNER, None, {}),
    ("submit", MANAGER, None, {}),
    ("reject", MANAGER, "复查未通过", {}),
    ("reject", MANAGER, None, {}),  # no reason: refused for every row
    ("reject", OWNER, "不通过", {}),  # the owner submitted it: segregation of duties
    ("escalate", engine.SYSTEM_ACTOR, None, {"level": 1}),
    ("escalate", engine.SYSTEM_ACTOR, None, {"level": 2}),
    ("escalate", engine.SYSTEM_ACTOR, None, {"level": 9}),  # out of range: invalid input
    ("remind_due", engine.SYSTEM_ACTOR, None, {}),
    ("submit", "nobody", None, {}),
]
HAZARDS = 10


def _snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    conn = session.connection()
    found = {
        "hazard": [tuple(r) for r in conn.execute(select(HAZARD_TABLE).order_by(HAZARD_TABLE.c.id))],
        "audit": [tuple(r) for r in conn.execute(select(AUDIT_ENTRY).order_by(AUDIT_ENTRY.c.seq))],
        "outbox": [tuple(r) for r in conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))],
    }
    session.rollback()
    return found


def _diff(a: dict[str, list[tuple[Any, ...]]],
          b: dict[str, list[tuple[Any, ...]]]) -> list[tuple[str, int, Any, Any]]:
    """The first few (table, row, ours, theirs) that differ, for a readable failure."""
    found = []
    for table in a:
        if len(a[table]) != len(b[table]):
            found.append((table, -1, len(a[table]), len(b[table])))
        for k, (x, y) in enumerate(zip(a[table], b[table], strict=False)):
            if x != y:
                found.append((table, k, *zip(*[(u, v) for u, v in zip(x, y, strict=True)
                                             if u != v], strict=True)))
    return found[:5]


def _outcome(session: Session, requests: list[FireRequest], skip: bool,
             set_wise: bool) -> tuple[Any, ...]:
    try:
        with pytest.MonkeyPatch.context() as patch:
            if set_wise:  # PostgreSQL: COPY for the audit and outbox rows of even a small batch,
                # compared with the general path's executemany
                patch.setattr(audit, "_COPY_MIN", 2)
                patch.setattr(rows, "_COPY_MIN", 2)
            result = engine.fire_many(session, HAZARD, requests, as_of=NOW + timedelta(days=9),
                                      skip_refused=skip, set_wise=set_wise)
    except SafeloopError as exc:
        return ("refused", type(exc).__name__, exc.message)
    return ("done", result.applied,
            [(r.entity, type(e).__name__, e.message) for r, e in result.refused])


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Session, Session, list[int]]]:
    """Two identical databases (clones of one template), ten hazards each in assorted states,
    the audit clock frozen."""
    monkeypatch.setattr(audit, "system_clock", lambda: FROZEN)
    with ExitStack() as stack:
        template = stack.enter_context(TemplateDatabases(request.param, tmp_path))
        sessions = []
        for _ in ("setwise", "general"):
            url = stack.enter_context(template.new())
            eng = make_engine(url)
            stack.callback(eng.dispose)
            session = stack.enter_context(Session(eng, expire_on_commit=False))
            ids = []
            for k in range(HAZARDS):
                hid = report(session, grade="major" if k == 7 else "general").entity_id
                if k % 5 != 4:  # every fifth stays reported
                    assign(session, hid)
                if k % 3 == 0 and k % 5 != 4 and k != 7:
                    fire(session, hid, "submit", OWNER)
                ids.append(hid)
            sessions.append(session)
        ours, theirs = sessions
        assert _diff(_snapshot(ours), _snapshot(theirs)) == []  # both start level
        yield ours, theirs, ids


batches = st.tuples(
    st.sampled_from(BATCHES),
    st.lists(st.tuples(st.integers(0, HAZARDS - 1), st.booleans()), min_size=2, max_size=HAZARDS,
             unique_by=lambda t: t[0]),
    st.booleans(),  # skip_refused
    st.sampled_from([None, "stale", "missing"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=batches)
def test_setwise_and_general_paths_write_the_same_rows(pair, batch) -> None:
    ours, theirs, ids = pair
    (event, actor, comment, data), picks, skip, twist = batch
    codes = {hid: f"YH-{hid:06d}" for hid in ids}
    requests = [FireRequest(codes[ids[k]] if by_code else ids[k], event, actor, comment=comment,
                            data=data) for k, by_code in picks]
    if twist == "stale":  # someone else's version: refused as a concurrent update
        first = requests[0]
        requests[0] = FireRequest(first.entity, event, actor, comment=comment, data=data,
                                  expected_version=99)
    elif twist == "missing":
        requests.append(FireRequest(999_999, event, actor, comment=comment, data=data))
    assert setwise.uniform_rule(HAZARD, requests) is not None
    before = _snapshot(ours)
    mine = _outcome(ours, requests, skip, set_wise=True)
    general = _outcome(theirs, requests, skip, set_wise=False)
    assert mine == general
    note("refused" if mine[0] == "refused" else f"applied {min(len(mine[1]), 3)}+, "
          f"refused {min(len(mine[2]), 1)}+")
    after = _snapshot(ours)
    assert _diff(after, _snapshot(theirs)) == []
    if mine[0] == "refused":  # nothing written, in either
        assert after == before
    else:
        assert len(after["audit"]) == len(before["audit"]) + len(mine[1])
        assert audit.verify(ours.connection()).ok
        ours.rollback()


def test_a_refusal_inside_a_setwise_batch_writes_nothing(pair) -> None:
    ours, _, ids = pair
    rectifying = [i for k, i in enumerate(ids) if k % 5 != 4 and k % 3 != 0 and k != 7]
    reported = [i for k, i in enumerate(ids) if k % 5 == 4]
    before = _snapshot(ours)
    requests = [FireRequest(i, "submit", OWNER) for i in [*rectifying, reported[0]]]
    with pytest.raises(SafeloopError, match="不能执行「提交验收」"):
        engine.fire_many(ours, HAZARD, requests, as_of=NOW + timedelta(days=1))
    assert _snapshot(ours) == before
    done = engine.fire_many(ours, HAZARD, requests, as_of=NOW + timedelta(days=1),
                            skip_refused=True)
    assert [r.entity_id for r in done.applied] == rectifying
    assert [r.entity for r, _ in done.refused] == [reported[0]]
    after = _snapshot(ours)
    assert len(after["audit"]) == len(before["audit"]) + len(rectifying)
    assert len(after["outbox"]) > len(before["outbox"])
