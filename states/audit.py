"""The hash-chained audit trail: canonical encoding, append, and verification.

Each row's hash is SHA-256 over a canonical JSON array of its fields ending with the previous
row's hash; ``seq`` is dense from 1, so deletions show as gaps, edits and reorders as bad hashes.
The head (seq, hash) lives in ``audit_head``; locking that row serialises appenders.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

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
_COLUMNS = (*HASHED_FIELDS, "hash")


def fast_encode(reference: json.JSONEncoder) -> Callable[[Any], str]:
    """``reference.encode`` without its per-call set-up: the C encoder that ``JSONEncoder.encode``
    builds on every call, built once with the same settings (no circular check, which never
    changes the text). Falls back to ``reference.encode`` on a pure-Python json or with indent."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or reference.indent is not None:
        return reference.encode
    strings = (json.encoder.encode_basestring_ascii if reference.ensure_ascii
               else json.encoder.encode_basestring)
    c_encode = make(None, reference.default, strings, None, reference.key_separator,
                    reference.item_separator, reference.sort_keys, reference.skipkeys,
                    reference.allow_nan)
    join = "".join
    return lambda value: join(c_encode(value, 0))


# _encode(list(values)) for the audit row's values (a tuple is encoded as the same array)
_canonical_text = fast_encode(json.JSONEncoder(ensure_ascii=False, separators=(",", ":")))
_canonical_data = fast_encode(json.JSONEncoder(ensure_ascii=False, sort_keys=True,
                                               separators=(",", ":"), default=str))


POSITIONAL_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # by DB-API paramstyle


@cache
def _driver_sql(paramstyle: str, sqlite: bool) -> tuple[str, str, str] | None:
    """(head read, audit INSERT, head move) for the driver's own cursor, or None if the driver
    has no positional mark. The head read locks the row except on SQLite (its write lock
    already serialises appenders)."""
    mark = POSITIONAL_MARKS.get(paramstyle)
    if mark is None:
        return None
    head = "SELECT seq, hash FROM audit_head WHERE id = 1" + ("" if sqlite else " FOR UPDATE")
    insert_sql = (f"INSERT INTO audit_entry ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join([mark] * len(_COLUMNS))})")
    move = f"UPDATE audit_head SET seq = {mark}, hash = {mark} WHERE id = 1"
    return head, insert_sql, move


def driver_cursor(conn: Connection) -> Any | None:
    """A DB-API cursor inside ``conn``'s open transaction, for hot statements whose SQLAlchemy
    execution (compiled-cache lookup, parameter processing, result set-up) costs several times
    the statement itself; None when no transaction is open (then go through SQLAlchemy, which
    begins one). Errors should go through ``driver_error`` so callers see SQLAlchemy's types."""
    if not conn.in_transaction():
        return None
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def driver_error(conn: Connection, statement: str, params: Any, exc: Exception) -> Exception:
    """The SQLAlchemy exception (``IntegrityError``, ``OperationalError`` …) for a DB-API error."""
    return DBAPIError.instance(statement, params, exc, conn.dialect.loaded_dbapi.Error,
                               dialect=conn.dialect)


def canonical_data(data: dict[str, Any]) -> str:
    """The exact JSON text stored and hashed for an event's data (sorted keys, no spaces)."""
    return _canonical_data(data)  # == json.dumps(data, ensure_ascii=False, sort_keys=True,
    #                                           separators=(",", ":"), default=str)


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
    sql = _driver_sql(conn.dialect.paramstyle, conn.dialect.name == "sqlite")
    cursor = driver_cursor(conn) if sql is not None else None
    if cursor is None or sql is None:
        first, prev = lock_head(conn)
        rows = _chain(first, prev, entries)
        if rows:
            conn.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
            conn.execute(_MOVE_HEAD, {"n": rows[-1][0], "h": rows[-1][-1]})
        return [row[0] for row in rows]
    head_sql, insert_sql, move_sql = sql
    statement, params = head_sql, None
    try:
        head = cursor.execute(head_sql).fetchone()
        if head is None:
            raise RuntimeError("audit_head row missing: run `safeloop init`")
        rows = _chain(int(head[0]), str(head[1]), entries)
        if rows:
            statement, params = insert_sql, rows
            cursor.executemany(insert_sql, rows)
            statement, params = move_sql, (rows[-1][0], rows[-1][-1])
            cursor.execute(move_sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise driver_error(conn, statement, params, exc) from exc
    finally:
        cursor.close()
    return [row[0] for row in rows]


def _chain(seq: int, prev: str, entries: Iterable[PendingEntry]) -> list[tuple[Any, ...]]:
    """The rows (HASHED_FIELDS values + hash) of entries chained after (seq, prev)."""
    rows: list[tuple[Any, ...]] = []
    text, sha256 = _canonical_text, hashlib.sha256
    for entry in entries:
        seq += 1
        values = (
            seq, entry.entity_type, entry.entity_id, entry.entity_code, entry.event,
            entry.from_state, entry.to_state, entry.actor, entry.actor_role, entry.at,
            entry.comment, entry.data, entry.flow_run_id, prev,
        )
        prev = sha256(text(values).encode("utf-8")).hexdigest()
        rows.append((*values, prev))
    return rows


# The canonical bytes built inside SQLite (CAST to BLOB hands them over as UTF-8 bytes without a
# decode and re-encode in Python); used only after _sqlite_json proved the text matches _encode.
_SQLITE_ROWS = (
    f"SELECT seq, prev_hash, hash, CAST(json_array({', '.join(HASHED_FIELDS)}) AS BLOB) "
    "FROM audit_entry ORDER BY seq"
)
_PLAIN_ROWS = f"SELECT {_SELECT_FIELDS} FROM audit_entry ORDER BY seq"
_HEXDIGEST = type(hashlib.sha256()).hexdigest


def _sqlite_json(cursor: Any) -> bool:
    """Whether this SQLite has json_array with the same bytes as our encoder for a hard sample."""
    sample = ["引号\"反斜杠\\换行\n\t\x01\x7f\u2028", None, 12, ""]
    try:
        if cursor.execute("PRAGMA encoding").fetchone()[0].upper() != "UTF-8":
            return False  # CAST(text AS BLOB) would hand over UTF-16
        return bool(cursor.execute("SELECT CAST(json_array(?, ?, ?, ?) AS BLOB)", sample)
                    .fetchone()[0] == _encode(sample).encode("utf-8"))
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


def verify(conn: Connection, *, batch: int = 500) -> VerifyResult:
    """Walk the chain in seq order; name the first row whose seq, link or hash is wrong.

    On SQLite the canonical JSON bytes are built by ``json_array`` inside the database (a third of
    the Python objects to fetch and no Python encoding); elsewhere each row is encoded in Python.
    A chunk of rows is checked as a whole (seq run, links and hashes compared as tuples, hashing
    mapped over the chunk in C); only a chunk that fails is walked row by row, where a row whose
    fast digest is wrong is re-encoded with ``row_hash`` before it is called tampered, so the
    fast paths can only be slower, never less strict.
    """
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    fast = conn.dialect.name == "sqlite" and _sqlite_json(cursor)
    cursor.execute(_SQLITE_ROWS if fast else _PLAIN_ROWS)
    expected_seq, prev, count = 1, GENESIS, 0
    sha256, hexdigest, text = hashlib.sha256, _HEXDIGEST, _canonical_text
    try:
        while chunk := cursor.fetchmany(batch):
            if fast:
                seqs, links, stored, blobs = zip(*chunk, strict=True)
            else:
                columns = tuple(zip(*chunk, strict=True))
                seqs, links, stored = columns[0], columns[13], columns[14]
                blobs = [text(row[:14]).encode("utf-8") for row in chunk]
            digests = tuple(map(hexdigest, map(sha256, blobs)))
            n = len(digests)
            if (digests == stored and links[0] == prev and links[1:] == digests[:-1]
                    and seqs == tuple(range(expected_seq, expected_seq + n))):
                expected_seq, prev, count = expected_seq + n, digests[-1], count + n
                continue
            for i, (seq, link, digest) in enumerate(zip(seqs, links, digests, strict=True)):
                if seq != expected_seq:
                    reason = (f"序号不连续：缺少第 {expected_seq} 条，下一条为第 {seq} 条"
                              "（有记录被删除或插入）")
                    bad = min(expected_seq, seq)  # the first seq that is missing (or duplicated)
                    return VerifyResult(False, count, prev, bad, reason)
                if link != prev:
                    reason = f"第 {seq} 条的 prev_hash 与上一条的哈希不符（链被改动或重排）"
                    return VerifyResult(False, count, prev, seq, reason)
                if digest != stored[i]:
                    digest = _python_digest(conn, seq) if fast else row_hash(chunk[i][:14])
                if digest != stored[i]:
                    reason = f"第 {seq} 条的内容与其哈希不符（记录被篡改）"
                    return VerifyResult(False, count, prev, seq, reason)
                prev = digest
                expected_seq += 1
                count += 1
    finally:
        cursor.close()
    head = conn.execute(_HEAD).first()
    if head is not None and (int(head[0]), str(head[1])) != (count, prev):
        reason = f"链头记录（{head[0]} 条）与审计表（{count} 条）不一致：末尾记录被删除或追加"
        return VerifyResult(False, count, prev, count + 1 if head[0] > count else count, reason)
    return VerifyResult(True, count, prev)

