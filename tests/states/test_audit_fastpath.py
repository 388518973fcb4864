"""``audit.verify`` checks whole chunks at once and walks row by row only inside a failing chunk:
whatever the chunk size and whichever way the canonical bytes are built (SQLite's json_array or the
Python encoder), the verdict must be exactly that of the plain row-by-row reference walk below.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text
from sqlmodel import Session

from models.db import make_engine
from states import audit
from tests.conftest import BACKENDS
from tests.helpers import fire, fresh_database, walk_to
from tests.reliability.test_tamper import (
    FIELDS,
    TAMPERS,
    build_chain,
    bypass_head_trigger,
    bypass_triggers,
)

BATCHES = (1, 2, 3, 7, 500)


def reference_digest(row: Any) -> str | None:
    """A row's hash by the encoding as the README documents it, written out independently."""
    r = dict(zip(FIELDS, row, strict=True))
    if r["hash_version"] == 1 and all(r[f] is None for f in audit.V2_FIELDS):
        values = [r[f] for f in audit.HASHED_FIELDS]
    elif r["hash_version"] == 2 and r["simulated"] in (None, 0, 1):
        simulated = None if r["simulated"] is None else bool(r["simulated"])
        values = [2, *(r[f] for f in audit.HASHED_FIELDS[:-1]), r["recorded_at"], r["channel"],
                  r["credential"], simulated, r["prev_hash"]]
    else:
        return None
    text_ = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def reference(conn: Connection) -> dict[str, Any]:
    """The verifier as it was before the chunked fast path: one row at a time, Python encoder."""
    rows = conn.execute(text(f"SELECT {', '.join(FIELDS)} FROM audit_entry ORDER BY seq")).all()
    expected, prev, count, last = 1, audit.GENESIS, 0, None
    for row in rows:
        seq, link, stored, moment = row[1], row[18], row[19], row[14]
        if seq != expected:
            reason = f"序号不连续：缺少第 {expected} 条，下一条为第 {seq} 条（有记录被删除或插入）"
            return audit.VerifyResult(False, count, prev, min(expected, seq), reason).to_dict()
        if link != prev:
            reason = f"第 {seq} 条的 prev_hash 与上一条的哈希不符（链被改动或重排）"
            return audit.VerifyResult(False, count, prev, seq, reason).to_dict()
        digest = reference_digest(row)
        if digest is None or digest != stored:
            reason = f"第 {seq} 条的内容与其哈希不符（记录被篡改）"
            return audit.VerifyResult(False, count, prev, seq, reason).to_dict()
        if moment is not None:
            if last is not None and moment < last:
                reason = (f"第 {seq} 条的记录时间 {moment} 早于上一条的 {last}"
                          "（记录时间倒退：伪造或补写的记录）")
                return audit.VerifyResult(False, count, prev, seq, reason).to_dict()
            last = moment
        prev, expected, count = digest, expected + 1, count + 1
    head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    if head is not None and (int(head[0]), str(head[1])) != (count, prev):
        reason = f"链头记录（{head[0]} 条）与审计表（{count} 条）不一致：末尾记录被删除或追加"
        bad = count + 1 if head[0] > count else count
        return audit.VerifyResult(False, count, prev, bad, reason).to_dict()
    return audit.VerifyResult(True, count, prev).to_dict()


@dataclass
class Trail:
    session: Session
    length: int
    rows: list[dict[str, Any]]
    head: dict[str, Any]

    def restore(self) -> None:
        conn = self.session.connection()
        conn.exec_driver_sql("DELETE FROM audit_entry")
        conn.execute(text(f"INSERT INTO audit_entry ({', '.join(FIELDS)}) VALUES "
                          f"({', '.join(':' + c for c in FIELDS)})"), self.rows)
        conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"), self.head)
        self.session.commit()


@pytest.fixture(scope="module", params=BACKENDS)
def trail(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    """A trail long enough to span several chunks, with tricky text in it; triggers bypassed."""
    with fresh_database(request.param, tmp_path_factory.mktemp("fastpath")) as url:
        eng = make_engine(url)
        with Session(eng, expire_on_commit=False) as session:
            build_chain(session)
            hid = walk_to(session, "rectifying")
            for i, comment in enumerate(['引号"与\\反斜杠', "换行\n制表\t", "控制\x01\x1f\u2028",
                                         "emoji 😀"]):
                fire(session, hid, "extend_deadline", "wang.zhuren",
                     data={"deadline": f"2027-01-{i + 1:02d}T00:00:00Z"}, comment=comment)
            bypass_triggers(session)
            bypass_head_trigger(session)
            conn = session.connection()
            rows = [dict(r) for r in conn.execute(
                text(f"SELECT {', '.join(FIELDS)} FROM audit_entry ORDER BY seq")).mappings()]
            head = dict(conn.execute(text("SELECT seq, hash FROM audit_head")).mappings().one())
            session.rollback()
            yield Trail(session, len(rows), rows, head)
        eng.dispose()


def verdicts(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = session.connection()
    want = reference(conn)
    for python_encoder in (False, True):
        with monkeypatch.context() as patch:
            if python_encoder:
                patch.setattr(audit, "_sqlite_json", lambda _cursor: False)
            for batch in BATCHES:
                got = audit.verify(conn, batch=batch).to_dict()
                assert got == want, (batch, python_encoder)
    session.rollback()


def test_untouched_trail(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    trail.restore()
    verdicts(trail.session, monkeypatch)
    assert audit.verify(trail.session.connection()).count == trail.length
    trail.session.rollback()


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampered_trail(trail: Trail, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trail.restore()
    TAMPERS[name](trail.session.connection(), trail.length)
    trail.session.commit()
    verdicts(trail.session, monkeypatch)


@pytest.mark.parametrize("seq", [1, 2, 3, 6, 7, 8])
def test_edit_at_chunk_edges(trail: Trail, seq: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows on either side of a chunk boundary (batch 2, 3 and 7) are named, not their chunk."""
    trail.restore()
    trail.session.connection().execute(
        text("UPDATE audit_entry SET actor = 'mallory' WHERE seq = :s"), {"s": seq})
    trail.session.commit()
    verdicts(trail.session, monkeypatch)
    result = audit.verify(trail.session.connection(), batch=3)
    trail.session.rollback()
    assert not result.ok and result.first_bad_seq == seq


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                    st.floats(allow_nan=False, allow_infinity=False))
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.text()), min_size=14, max_size=14), DATA)
def test_fast_encoders_write_the_reference_text(row: list[Any], data: Any) -> None:
    """The encoders built once write exactly what ``json.dumps`` / ``_encode`` write per call."""
    assert audit._canonical_text(tuple(row)) == audit._encode(row)
    assert audit.row_hash(row) == hashlib.sha256(
        audit._canonical_text(tuple(row)).encode("utf-8")).hexdigest()
    if isinstance(data, dict):
        assert audit.canonical_data(data) == json.dumps(
            data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    payload = audit.fast_encode(json.JSONEncoder(ensure_ascii=False))
    assert payload(data) == json.dumps(data, ensure_ascii=False)
    assert audit.canonical_data({"at": datetime(2026, 1, 2, tzinfo=UTC), "n": [data]}) == json.dumps(
        {"at": datetime(2026, 1, 2, tzinfo=UTC), "n": [data]}, ensure_ascii=False, sort_keys=True,
        separators=(",", ":"), default=str)


# ---- the engine's driver-level statements behave as the SQLAlchemy ones did ----------------


def test_driver_loader_matches_core(org: Session) -> None:
    """The one-key loader through the driver's cursor (SQLite) yields the very dicts, types and
    values of the Core execution: dates, JSON and decimals included."""
    from states import rawdb
    from states.rows import load_one, load_rows
    from states.workflows.hazard import HAZARD

    ids = [walk_to(org, "closed", "major"), walk_to(org, "rectifying")]
    org.connection().execute(text("UPDATE hazard SET funds = 1234.5, plan = :plan WHERE id = :i"),
                             {"plan": json.dumps({"steps": ["换", "验"], "n": 2}), "i": ids[1]})
    org.commit()
    conn = org.connection()
    for hid in ids:
        for by_code, key in ((False, hid), (True, f"YH-{hid:06d}")):
            stmt = load_one(HAZARD.table, conn.dialect.name != "sqlite", by_code)
            result = conn.execute(stmt, {"key": key})
            names = list(result.keys())
            want = [dict(zip(names, row, strict=True)) for row in result]
            got = rawdb.records(conn, stmt, key)
            if conn.dialect.name != "sqlite":
                assert got is None
                continue
            assert got == want
            assert [{k: type(v) for k, v in r.items()} for r in got] == \
                [{k: type(v) for k, v in r.items()} for r in want]
            assert load_rows(HAZARD, conn, [key])[key] == want[0]
    org.rollback()


def test_driver_errors_are_sqlalchemy_errors(org: Session) -> None:
    """A statement run on the driver's cursor still raises SQLAlchemy's exception types."""
    from sqlalchemy.exc import IntegrityError

    from models.tables import OUTBOX
    from states import rawdb
    from states.rows import OUTBOX_COLUMNS

    hid = walk_to(org, "rectifying")
    conn = org.connection()
    head = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
    row = conn.execute(text(f"SELECT {', '.join(FIELDS)} FROM audit_entry WHERE seq = :s"),
                       {"s": head[0]}).mappings().one()
    forged = {**row, "seq": head[0] + 1, "hash": "f" * 64}  # takes the next seq (INSERT is allowed)
    conn.execute(text(f"INSERT INTO audit_entry ({', '.join(FIELDS)}) VALUES "
                      f"({', '.join(':' + c for c in FIELDS)})"), forged)
    with pytest.raises(IntegrityError):  # a seq that exists already
        audit.append(conn, [audit.PendingEntry("hazard", hid, "x", "e", None, None, "a", "r",
                                               "2026-01-01T00:00:00.000000Z", None, "{}", None)])
    org.rollback()
    conn = org.connection()
    assert tuple(conn.execute(text("SELECT seq, hash FROM audit_head")).one()) == tuple(head)
    rows = [(None, 1, "hazard", hid, "e", "r", "t", "{}", "pending", 0)]  # created_at NOT NULL
    with pytest.raises(IntegrityError):
        rawdb.executemany(conn, OUTBOX, OUTBOX_COLUMNS, (), rows)
    org.rollback()
    assert audit.verify(org.connection()).ok
    org.rollback()


def test_driver_loader_binds_every_parameter(org: Session) -> None:
    """Every workflow's one-key loaders (unit- and jurisdiction-scoped: the latter bind a constant
    for the missing unit path) run through the driver and agree with Core on an absent key."""
    from states import rawdb
    from states.registry import WORKFLOWS
    from states.rows import load_one

    conn = org.connection()
    for workflow in WORKFLOWS.values():
        for by_code, key in ((False, 10**9), (True, "nope")):
            stmt = load_one(workflow.table, conn.dialect.name != "sqlite", by_code)
            assert conn.execute(stmt, {"key": key}).all() == []
            got = rawdb.records(conn, stmt, key)
            assert got == ([] if conn.dialect.name == "sqlite" else None)
            assert rawdb.query(conn, stmt, key) == []
    org.rollback()
