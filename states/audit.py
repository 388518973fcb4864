"""The hash-chained audit trail: canonical encoding, append, and verification.

Each row's hash is SHA-256 over a canonical JSON array of its fields ending with the previous
row's hash; ``seq`` is dense from 1, so deletions show as gaps, edits and reorders as bad hashes.
The head (seq, hash) lives in ``audit_head``; locking that row serialises appenders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from models import AuditEntry, AuditHead

GENESIS = "0" * 64
AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
HEAD = AuditHead.__table__  # type: ignore[attr-defined]

# Order of fields in the canonical encoding; changing it invalidates every existing chain.
HASHED_FIELDS = (
    "seq", "entity_type", "entity_id", "entity_code", "event", "from_state", "to_state",
    "actor", "actor_role", "at", "comment", "data", "flow_run_id", "prev_hash",
)
_SELECT_FIELDS = ", ".join((*HASHED_FIELDS, "hash"))
_HEAD = select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT = insert(AUDIT)
_MOVE_HEAD = update(HEAD).where(HEAD.c.id == 1).values(seq=bindparam("n"), hash=bindparam("h"))
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical_data(data: dict[str, Any]) -> str:
    """The exact JSON text stored and hashed for an event's data (sorted keys, no spaces)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def format_at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(values: Sequence[Any]) -> str:
    """SHA-256 of the canonical encoding of the HASHED_FIELDS values, in order."""
    return hashlib.sha256(_encode(list(values)).encode("utf-8")).hexdigest()


@dataclass
class PendingEntry:
    """An audit row before it is chained: everything but seq, prev_hash and hash."""

    entity_type: str
    entity_id: int
    entity_code: str
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    actor_role: str
    at: str
    comment: str | None
    data: str
    flow_run_id: str | None


def lock_head(conn: Connection) -> tuple[int, str]:
    """Read the chain head, locking it on PostgreSQL (SQLite's write lock already serialises)."""
    row = conn.execute(_HEAD if conn.dialect.name == "sqlite" else _HEAD_LOCKED).first()
    if row is None:
        raise RuntimeError("audit_head row missing: run `safeloop init`")
    return int(row[0]), str(row[1])


def append(conn: Connection, entries: Iterable[PendingEntry]) -> list[int]:
    """Chain and insert entries after the current head; returns their seq numbers."""
    seq, prev = lock_head(conn)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        values = (
            seq, entry.entity_type, entry.entity_id, entry.entity_code, entry.event,
            entry.from_state, entry.to_state, entry.actor, entry.actor_role, entry.at,
            entry.comment, entry.data, entry.flow_run_id, prev,
        )
        prev = row_hash(values)
        rows.append({**dict(zip(HASHED_FIELDS, values, strict=True)), "hash": prev})
    if not rows:
        return []
    conn.execute(_INSERT, rows)
    conn.execute(_MOVE_HEAD, {"n": seq, "h": prev})
    return [r["seq"] for r in rows]


_SQLITE_ROWS = (
    f"SELECT seq, prev_hash, hash, json_array({', '.join(HASHED_FIELDS)}) "
    "FROM audit_entry ORDER BY seq"
)


def _sqlite_json(cursor: Any) -> bool:
    """Whether this SQLite has json_array with the same text as our encoder for a hard sample."""
    sample = ["引号\"反斜杠\\换行\n\t\x01\x7f\u2028", None, 12, ""]
    try:
        return bool(cursor.execute("SELECT json_array(?, ?, ?, ?)", sample).fetchone()[0]
                    == _encode(sample))
    except Exception:  # sqlite3.OperationalError: built without JSON
        return False


def _python_digest(conn: Connection, seq: int) -> str:
    """The row's hash recomputed from its fields with the Python encoder."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT {', '.join(HASHED_FIELDS)} FROM audit_entry WHERE seq = ?", (seq,))
        return row_hash(cursor.fetchone())
    finally:
        cursor.close()


@dataclass
class VerifyResult:
    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
        }


def verify(conn: Connection, *, batch: int = 20_000) -> VerifyResult:
    """Walk the chain in seq order; name the first row whose seq, link or hash is wrong.

    On SQLite the canonical JSON text is built by ``json_array`` inside the database (a third of
    the Python objects to fetch and no Python encoding); a row whose SQLite text does not hash
    right is re-encoded in Python before it is called tampered, so that path can only be slower,
    never less strict.
    """
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    fast = conn.dialect.name == "sqlite" and _sqlite_json(cursor)
    cursor.execute(_SQLITE_ROWS if fast else f"SELECT {_SELECT_FIELDS} FROM audit_entry ORDER BY seq")
    expected_seq, prev, count = 1, GENESIS, 0
    sha256, encode = hashlib.sha256, _encode
    try:
        while chunk := cursor.fetchmany(batch):
            for row in chunk:
                if fast:
                    seq, link, stored, canonical = row
                else:
                    seq, link, stored, canonical = row[0], row[13], row[14], encode(list(row[:14]))
                if seq != expected_seq:
                    reason = (f"序号不连续：缺少第 {expected_seq} 条，下一条为第 {seq} 条"
                              "（有记录被删除或插入）")
                    bad = min(expected_seq, seq)  # the first seq that is missing (or duplicated)
                    return VerifyResult(False, count, prev, bad, reason)
                if link != prev:
                    reason = f"第 {seq} 条的 prev_hash 与上一条的哈希不符（链被改动或重排）"
                    return VerifyResult(False, count, prev, seq, reason)
                digest = sha256(canonical.encode("utf-8")).hexdigest()
                if digest != stored and fast:
                    digest = _python_digest(conn, seq)
                if digest != stored:
                    reason = f"第 {seq} 条的内容与其哈希不符（记录被篡改）"
                    return VerifyResult(False, count, prev, seq, reason)
                prev = digest
                expected_seq += 1
                count += 1
    finally:
        cursor.close()
    head = conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).first()
    if head is not None and (int(head[0]), str(head[1])) != (count, prev):
        reason = f"链头记录（{head[0]} 条）与审计表（{count} 条）不一致：末尾记录被删除或追加"
        return VerifyResult(False, count, prev, count + 1 if head[0] > count else count, reason)
    return VerifyResult(True, count, prev)
