"""Tampering with the audit trail: the database refuses it, and when the refusal is bypassed the
chain verifier notices and names the first bad row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from models.db import make_engine
from states.audit import STORED_FIELDS, entry_hash, verify
from tests.conftest import BACKENDS
from tests.helpers import fire, fresh_database, is_zh, walk_to

FIELDS = STORED_FIELDS


def build_chain(session: Session) -> int:
    """A realistic trail (org load, two hazards, a reason); returns its length."""
    walk_to(session, "closed")
    hid = walk_to(session, "rectifying", "major")
    fire(session, hid, "extend_deadline", "wang.zhuren",
         data={"deadline": "2026-12-30T00:00:00Z"}, comment="等待备件")
    result = verify(session.connection())
    session.rollback()
    assert result.ok and result.count >= 9
    return result.count


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def bypass_triggers(session: Session) -> None:
    """What an attacker with DDL rights would do first."""
    conn = session.connection()
    if is_sqlite(session):
        conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_entry_no_delete")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")
    session.commit()


def bypass_head_trigger(session: Session) -> None:
    """So that a fixture can put a pristine trail's head back (it only moves forward)."""
    conn = session.connection()
    if is_sqlite(session):
        conn.exec_driver_sql("DROP TRIGGER audit_head_forward_only")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_head DISABLE TRIGGER USER")
    session.commit()


def read_row(conn: Connection, seq: int) -> dict[str, Any]:
    cols = ", ".join(FIELDS)
    return dict(conn.execute(text(f"SELECT {cols} FROM audit_entry WHERE seq = :s"),
                             {"s": seq}).mappings().one())


def write_row(conn: Connection, seq: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in values)
    conn.execute(text(f"UPDATE audit_entry SET {sets} WHERE seq = :where_seq"),
                 {**values, "where_seq": seq})


def check(session: Session) -> Any:
    result = verify(session.connection())
    session.rollback()
    return result


# ---- the database refuses changes -----------------------------------------------------------


REFUSED = (
    "UPDATE audit_entry SET actor = 'mallory' WHERE seq = 2",
    "UPDATE audit_entry SET comment = '改过'",
    "DELETE FROM audit_entry WHERE seq = 3",
    "DELETE FROM audit_entry",
)


def test_database_refuses_update_and_delete(org: Session) -> None:
    count = build_chain(org)
    for statement in REFUSED:
        with pytest.raises(DBAPIError, match="append-only"):
            org.connection().exec_driver_sql(statement)
        org.rollback()
    result = check(org)
    assert result.ok and result.count == count


def test_postgresql_refuses_truncate(org: Session) -> None:
    if is_sqlite(org):
        pytest.skip("SQLite has no TRUNCATE")
    build_chain(org)
    with pytest.raises(DBAPIError, match="append-only"):
        org.connection().exec_driver_sql("TRUNCATE audit_entry")
    org.rollback()
    assert check(org).ok


# ---- with the triggers bypassed, verify names the first bad row -----------------------------

Tamper = Callable[[Connection, int], int]  # (conn, chain length) -> expected first bad seq


def edit(field: str, value: Any, seq: int = 4) -> Tamper:
    def run(conn: Connection, _n: int) -> int:
        write_row(conn, seq, {field: value})
        return seq
    return run


def delete_middle(conn: Connection, n: int) -> int:
    k = n // 2
    conn.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": k})
    return k  # the trail is first wrong where row k is missing


def delete_last(conn: Connection, n: int) -> int:
    conn.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": n})
    return n


def forge_chained(conn: Connection, n: int) -> int:
    """A forger who knows the hashing appends a perfectly chained row (but cannot move the head)."""
    last = read_row(conn, n)
    values = {**last, "seq": n + 1, "event": "accept", "actor": "mallory", "actor_role": "principal",
              "comment": "伪造", "prev_hash": last["hash"]}
    values["hash"] = entry_hash(values)
    cols = ", ".join(FIELDS)
    conn.execute(text(f"INSERT INTO audit_entry ({cols}) VALUES ({', '.join(':' + c for c in FIELDS)})"),
                 values)
    return n + 1


def forge_backdated(conn: Connection, n: int) -> int:
    """A perfectly chained row, and the head moved onto it (the head's trigger allows that), but
    recorded before its predecessor: only ``append`` keeps recorded times in order."""
    last = read_row(conn, n)
    values = {**last, "seq": n + 1, "actor": "mallory", "recorded_at": "2020-01-01T00:00:00.000000Z",
              "prev_hash": last["hash"]}
    values["hash"] = entry_hash(values)
    cols = ", ".join(FIELDS)
    conn.execute(text(f"INSERT INTO audit_entry ({cols}) VALUES ({', '.join(':' + c for c in FIELDS)})"),
                 values)
    conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash"), values)
    return n + 1


def forge_unchained(conn: Connection, n: int) -> int:
    last = read_row(conn, n)
    values = {**last, "seq": n + 1, "actor": "mallory", "hash": "e" * 64}
    cols = ", ".join(FIELDS)
    conn.execute(text(f"INSERT INTO audit_entry ({cols}) VALUES ({', '.join(':' + c for c in FIELDS)})"),
                 values)
    return n + 1


def swap(conn: Connection, n: int) -> int:
    """Reorder: rows k and k+1 exchange everything but their seq (hash is unique: go via a blank)."""
    k = n // 2
    a, b = read_row(conn, k), read_row(conn, k + 1)
    del a["seq"], b["seq"]
    write_row(conn, k, {"hash": "-" * 64})
    write_row(conn, k + 1, a)
    write_row(conn, k, b)
    return k


TAMPERS: dict[str, Tamper] = {
    "edit actor": edit("actor", "mallory"),
    "edit role": edit("actor_role", "principal"),
    "edit comment": edit("comment", "无"),
    "edit data": edit("data", '{"owner":"mallory"}'),
    "edit time": edit("at", "2026-11-01T00:00:00.000000Z"),
    "edit destination": edit("to_state", "closed"),
    "edit first row": edit("entity_code", "other.yaml", seq=1),
    "edit hash": edit("hash", "f" * 64, seq=3),
    "edit prev_hash": edit("prev_hash", "0" * 64, seq=5),
    "edit recorded time": edit("recorded_at", "2026-01-01T00:00:00.000000Z"),
    "edit channel": edit("channel", "web"),
    "edit credential": edit("credential", "session-42"),
    "edit simulated": lambda conn, n: edit("simulated", not conn.execute(text(
        "SELECT simulated FROM audit_entry WHERE seq = 4")).scalar())(conn, n),  # flip it
    "simulated not a boolean": lambda conn, n: (
        edit("simulated", 7)(conn, n) if conn.dialect.name == "sqlite"
        else pytest.skip("PostgreSQL's boolean column holds only booleans")),
    "downgrade to version 1": edit("hash_version", 1),
    "unknown version": edit("hash_version", 3, seq=6),
    "delete middle row": delete_middle,
    "delete last row": delete_last,
    "insert forged chained row": forge_chained,
    "insert forged row": forge_unchained,
    "insert forged backdated row": forge_backdated,
    "swap two rows": swap,
}

@dataclass
class Tamperable:
    """A database whose triggers are bypassed and whose pristine trail can be put back."""

    session: Session
    length: int
    rows: list[dict[str, Any]]
    head: dict[str, Any]

    def restore(self) -> None:
        conn = self.session.connection()
        conn.exec_driver_sql("DELETE FROM audit_entry")
        cols = ", ".join(FIELDS)
        conn.execute(text(f"INSERT INTO audit_entry ({cols}) VALUES "
                          f"({', '.join(':' + c for c in FIELDS)})"), self.rows)
        conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"), self.head)
        self.session.commit()
        result = check(self.session)
        assert result.ok and result.count == self.length, result


@pytest.fixture(scope="module", params=BACKENDS)
def tamperable(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[Tamperable]:
    """One database per backend for all the tamper cases: each case starts from the restored
    pristine trail (verified), which costs far less than a fresh database per case."""
    with fresh_database(request.param, tmp_path_factory.mktemp("tamper")) as url:
        eng = make_engine(url)
        with Session(eng, expire_on_commit=False) as session:
            n = build_chain(session)
            bypass_triggers(session)
            bypass_head_trigger(session)
            conn = session.connection()
            rows = [dict(r) for r in conn.execute(
                text(f"SELECT {', '.join(FIELDS)} FROM audit_entry ORDER BY seq")).mappings()]
            head = dict(conn.execute(text("SELECT seq, hash FROM audit_head")).mappings().one())
            session.rollback()
            yield Tamperable(session, n, rows, head)
        eng.dispose()


@pytest.mark.parametrize("name", list(TAMPERS))
def test_verify_names_first_bad_seq(tamperable: Tamperable, name: str) -> None:
    tamperable.restore()
    session = tamperable.session
    expected = TAMPERS[name](session.connection(), tamperable.length)
    session.commit()
    result = check(session)
    assert not result.ok, result
    assert result.first_bad_seq == expected, result
    assert result.reason and is_zh(result.reason) and f"{expected}" in result.reason, result


def test_forged_row_needs_no_bypass(org: Session) -> None:
    """Append-only stops UPDATE/DELETE, not INSERT: a forged append is caught by the chain head."""
    n = build_chain(org)
    forge_chained(org.connection(), n)
    org.commit()
    result = check(org)
    assert not result.ok and result.first_bad_seq == n + 1, result


TRICKY = ['引号"与\\反斜杠', "换行\n制表\t", "emoji 😀", "控制字符\x01\x1f", "分隔符\u2028\u2029",
          "</script>/斜杠", "ascii only"]


def test_untouched_trail_with_tricky_text_verifies(org: Session) -> None:
    """Honest rows whose comments hold quotes, escapes, emoji, control and separator characters
    verify (the canonical encoding is the same whichever way the verifier builds it), and a
    tampered one among them is still named."""
    hid = walk_to(org, "rectifying")
    for i, comment in enumerate(TRICKY):
        fire(org, hid, "extend_deadline", "wang.zhuren",
             data={"deadline": f"2027-01-{i + 1:02d}T00:00:00Z"}, comment=comment)
    result = check(org)
    assert result.ok, result
    bypass_triggers(org)
    write_row(org.connection(), result.count - 2, {"comment": TRICKY[-3] + " "})
    org.commit()
    bad = check(org)
    assert not bad.ok and bad.first_bad_seq == result.count - 2, bad
