"""The hash-chained audit trail: canonical encoding, append, and verification.

Each row's hash is SHA-256 over a canonical JSON array of its fields ending with the previous
row's hash; ``seq`` is dense from 1, so deletions show as gaps, edits and reorders as bad hashes.
The encoding is versioned per row (``hash_version``): version 1, the original fields, still
verifies the rows written before version 2, which adds the version itself, the time the row was
recorded (never earlier than the previous row's), the channel, the credential id and the
``simulated`` switch. The head (seq, hash) lives in ``audit_head``; locking that row serialises
appenders, and triggers let it move only forward to an existing row.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import AUDIT_HEAD as HEAD
from states import rawdb

GENESIS = "0" * 64
HASH_VERSION = 2  # the encoding of every new row
CHANNELS = ("cli", "web", "api", "flow")  # how an actor came (None: not recorded)

# Order of fields in the canonical encodings; changing either invalidates every existing chain.
# Version 1: these 14 values.
HASHED_FIELDS = (
    "seq", "entity_type", "entity_id", "entity_code", "event", "from_state", "to_state",
    "actor", "actor_role", "at", "comment", "data", "flow_run_id", "prev_hash",
)
V2_FIELDS = ("recorded_at", "channel", "credential", "simulated")
# Version 2: the number 2, version 1's fields but prev_hash, the four new ones, prev_hash.
HASHED_FIELDS_V2 = ("hash_version", *HASHED_FIELDS[:-1], *V2_FIELDS, "prev_hash")
STORED_FIELDS = (*HASHED_FIELDS_V2, "hash")  # every chained column, in verify's (and export's) order
_V1_INDEXES = (*range(1, 14), 18)  # version 1's fields within STORED_FIELDS
_COLUMNS = STORED_FIELDS
_SELECT_FIELDS = ", ".join(STORED_FIELDS)
_PREVIOUS_RECORDED = (select(AUDIT.c.recorded_at).where(AUDIT.c.seq == HEAD.c.seq)
                      .scalar_subquery())
_HEAD = select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_HEAD_FOR_APPEND = select(HEAD.c.seq, HEAD.c.hash, _PREVIOUS_RECORDED).where(HEAD.c.id == 1)
_INSERT = insert(AUDIT)
_MOVE_HEAD = update(HEAD).where(HEAD.c.id == 1).values(seq=bindparam("n"), hash=bindparam("h"))
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_COPY_MIN = 64  # rows from which COPY beats executemany (PostgreSQL)


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


@cache
def _driver_sql(paramstyle: str, sqlite: bool) -> tuple[str, str, str] | None:
    """(head read, audit INSERT, head move) for the driver's own cursor (``rawdb``), or None if
    the driver has no positional mark. The head read locks the row except on SQLite (its write
    lock already serialises appenders)."""
    mark = rawdb.POSITIONAL_MARKS.get(paramstyle)
    if mark is None:
        return None
    head = ("SELECT seq, hash, (SELECT recorded_at FROM audit_entry WHERE audit_entry.seq = "
            "audit_head.seq) FROM audit_head WHERE id = 1" + ("" if sqlite else " FOR UPDATE"))
    insert_sql = (f"INSERT INTO audit_entry ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join([mark] * len(_COLUMNS))})")
    move = f"UPDATE audit_head SET seq = {mark}, hash = {mark} WHERE id = 1"
    return head, insert_sql, move


def canonical_data(data: dict[str, Any]) -> str:
    """The exact JSON text stored and hashed for an event's data (sorted keys, no spaces)."""
    return _canonical_data(data)  # == json.dumps(data, ensure_ascii=False, sort_keys=True,
    #                                           separators=(",", ":"), default=str)


def format_at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(values: Sequence[Any]) -> str:
    """SHA-256 of the canonical encoding of a version's hashed values, in order (version 1:
    HASHED_FIELDS; version 2: HASHED_FIELDS_V2)."""
    return hashlib.sha256(_encode(list(values)).encode("utf-8")).hexdigest()


_BOOLS = {False: False, True: True}  # 0 and 1 (SQLite's booleans) look up as False and True


def canonical_values(row: Sequence[Any]) -> tuple[Any, ...] | None:
    """The values hashed for a row given in STORED_FIELDS order (its hash may be left off), or
    None when the row has no valid encoding: an unknown version, a version 1 row with any of
    version 2's fields set (they would be outside the hash), or a ``simulated`` not a boolean."""
    version, simulated = row[0], row[17]
    if version == 2:
        if simulated is not None:
            if simulated not in _BOOLS:
                return None
            simulated = _BOOLS[simulated]
        return (2, *row[1:17], simulated, row[18])
    if version == 1 and row[14] is None and row[15] is None and row[16] is None and simulated is None:
        return tuple(row[i] for i in _V1_INDEXES)
    return None


def stored_hash(row: Sequence[Any]) -> str | None:
    """The hash a row given in STORED_FIELDS order should carry; None if it has no valid encoding."""
    values = canonical_values(row)
    return None if values is None else row_hash(values)


def entry_hash(row: Mapping[str, Any]) -> str | None:
    """``stored_hash`` of a row given by column name (``hash_version`` missing means 1)."""
    values = [row.get(f) for f in STORED_FIELDS]
    values[0] = row.get("hash_version", 1)
    return stored_hash(values)


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
    channel: str | None = None  # 'cli', 'web', 'api' or 'flow'
    credential: str | None = None  # the session or token id, never its secret
    simulated: bool = False  # the business time ``at`` was explicitly allowed to lie in the past


def lock_head(conn: Connection) -> tuple[int, str]:
    """Read the chain head, locking it on PostgreSQL (SQLite's write lock already serialises)."""
    row = conn.execute(_HEAD if conn.dialect.name == "sqlite" else _HEAD_LOCKED).first()
    if row is None:
        raise RuntimeError("audit_head row missing: run `safeloop init`")
    return int(row[0]), str(row[1])


def chain_id(conn: Connection) -> str:
    """The id this database's chain was given at ``init``; every checkpoint names it."""
    value = conn.execute(select(HEAD.c.chain_id).where(HEAD.c.id == 1)).scalar()
    if value is None:
        raise RuntimeError("audit_head row missing: run `safeloop init`")
    return str(value)


def system_clock() -> datetime:
    return datetime.now(UTC)


def append(conn: Connection, entries: Iterable[PendingEntry], *,
           clock: Callable[[], datetime] | None = None) -> list[int]:
    """Chain and insert entries after the current head; returns their seq numbers.

    Every row is recorded at ``clock()`` read once, but never earlier than the previous row's
    recorded time: the trail's recorded times never go backwards, even when the clock does.
    """
    return append_values(conn, [_entry_values(entry) for entry in entries], clock=clock)


def _entry_values(entry: PendingEntry) -> tuple[Any, ...]:
    return (entry.entity_type, entry.entity_id, entry.entity_code, entry.event, entry.from_state,
            entry.to_state, entry.actor, entry.actor_role, entry.at, entry.comment, entry.data,
            entry.flow_run_id, entry.channel, entry.credential, entry.simulated)


def append_values(conn: Connection, entries: Sequence[tuple[Any, ...]], *,
                  clock: Callable[[], datetime] | None = None) -> list[int]:
    """``append`` for entries given as tuples of ``PendingEntry``'s fields in order (the set-wise
    path builds no objects per row). On PostgreSQL with psycopg the rows go in by COPY.
    ``clock`` defaults to ``system_clock``, looked up at each call."""
    clock = clock or system_clock
    sql = _driver_sql(conn.dialect.paramstyle, conn.dialect.name == "sqlite")
    cursor = rawdb.cursor(conn) if sql is not None else None
    if cursor is None or sql is None:
        head = conn.execute(_HEAD_FOR_APPEND if conn.dialect.name == "sqlite"
                            else _HEAD_FOR_APPEND.with_for_update(of=HEAD)).first()
        if head is None:
            raise RuntimeError("audit_head row missing: run `safeloop init`")
        rows = _chain(int(head[0]), str(head[1]), _recorded_at(clock, head[2]), entries)
        if rows:
            conn.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
            conn.execute(_MOVE_HEAD, {"n": rows[-1][1], "h": rows[-1][-1]})
        return [row[1] for row in rows]
    head_sql, insert_sql, move_sql = sql
    with cursor:
        head = cursor.execute(head_sql).fetchone()
        if head is None:
            raise RuntimeError("audit_head row missing: run `safeloop init`")
        rows = _chain(int(head[0]), str(head[1]), _recorded_at(clock, head[2]), entries)
        if rows:
            if len(rows) < _COPY_MIN or not rawdb.copy_rows(cursor, "audit_entry", _COLUMNS, rows):
                cursor.executemany(insert_sql, rows)
            cursor.execute(move_sql, (rows[-1][1], rows[-1][-1]))
    return [row[1] for row in rows]


def _recorded_at(clock: Callable[[], datetime], previous: str | None) -> str:
    """The clock's reading as stored text, raised to the previous row's if the clock went back
    (the fixed-width UTC text orders as the moments do)."""
    now = format_at(clock())
    return previous if previous is not None and previous > now else now


def _chain(seq: int, prev: str, recorded_at: str,
           entries: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows (STORED_FIELDS values: version 2's hashed values + hash) of entries (``append_values``
    tuples) chained after (seq, prev)."""
    rows: list[tuple[Any, ...]] = []
    text, sha256 = _canonical_text, hashlib.sha256
    channels = (*CHANNELS, None)
    for (entity_type, entity_id, entity_code, event, from_state, to_state, actor, actor_role, at,
         comment, data, flow_run_id, channel, credential, simulated) in entries:
        if channel not in channels:
            raise ValueError(f"audit channel must be one of {CHANNELS} or None: {channel!r}")
        seq += 1
        values = (
            HASH_VERSION, seq, entity_type, entity_id, entity_code, event, from_state, to_state,
            actor, actor_role, at, comment, data, flow_run_id, recorded_at, channel, credential,
            bool(simulated), prev,
        )
        prev = sha256(text(values).encode("utf-8")).hexdigest()
        rows.append((*values, prev))
    return rows


# The canonical bytes built inside SQLite (CAST to BLOB hands them over as UTF-8 bytes without a
# decode and re-encode in Python); used only after _sqlite_json proved the text matches _encode.
# A row without a valid encoding (see canonical_values) gets NULL, which no hash can match.
_SQLITE_V1 = f"json_array({', '.join(HASHED_FIELDS)})"
_SQLITE_V2 = (
    f"json_array(2, {', '.join(HASHED_FIELDS[:-1])}, recorded_at, channel, credential, "
    "CASE simulated WHEN 1 THEN json('true') WHEN 0 THEN json('false') END, prev_hash)"
)
_SQLITE_ROWS = (
    "SELECT seq, prev_hash, hash, recorded_at, CAST(CASE "
    f"WHEN hash_version = 2 AND (simulated IS NULL OR simulated IN (0, 1)) THEN {_SQLITE_V2} "
    "WHEN hash_version = 1 AND recorded_at IS NULL AND channel IS NULL AND credential IS NULL "
    f"AND simulated IS NULL THEN {_SQLITE_V1} END AS BLOB) "
    "FROM audit_entry ORDER BY seq"
)
_PLAIN_ROWS = f"SELECT {_SELECT_FIELDS} FROM audit_entry ORDER BY seq"
_HEXDIGEST = type(hashlib.sha256()).hexdigest


def _sqlite_json(cursor: Any) -> bool:
    """Whether this SQLite has json_array with the same bytes as our encoder for a hard sample."""
    sample = ["引号\"反斜杠\\换行\n\t\x01\x7f\u2028", None, 12, ""]
    sql = ("SELECT CAST(json_array(?, ?, ?, ?, CASE 1 WHEN 1 THEN json('true') END, "
           "CASE 0 WHEN 1 THEN json('true') WHEN 0 THEN json('false') END) AS BLOB)")
    try:
        if cursor.execute("PRAGMA encoding").fetchone()[0].upper() != "UTF-8":
            return False  # CAST(text AS BLOB) would hand over UTF-16
        return bool(cursor.execute(sql, sample).fetchone()[0]
                    == _encode([*sample, True, False]).encode("utf-8"))
    except Exception:  # sqlite3.OperationalError: built without JSON
        return False


def _python_digest(conn: Connection, seq: int) -> str | None:
    """The row's hash recomputed from its fields with the Python encoder (SQLite only)."""
    cursor = rawdb.raw_cursor(conn)
    try:
        cursor.execute(f"SELECT {_SELECT_FIELDS} FROM audit_entry WHERE seq = ?", (seq,))
        return stored_hash(cursor.fetchone())
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
    fast digest is wrong is re-encoded with ``stored_hash`` before it is called tampered, so the
    fast paths can only be slower, never less strict. Each row is encoded by its own
    ``hash_version``; a row with no valid encoding has no digest and is reported as tampered.
    Recorded times (version 2) must never go backwards: a row recorded before its predecessor
    was not written by ``append`` (a forged or back-filled row).
    """
    cursor = rawdb.raw_cursor(conn)
    fast = conn.dialect.name == "sqlite" and _sqlite_json(cursor)
    cursor.execute(_SQLITE_ROWS if fast else _PLAIN_ROWS)
    expected_seq, prev, count = 1, GENESIS, 0
    recorded_last: str | None = None  # the latest recorded time so far
    sha256, hexdigest, text = hashlib.sha256, _HEXDIGEST, _canonical_text
    try:
        while chunk := cursor.fetchmany(batch):
            if fast:
                seqs, links, stored, recorded, blobs = zip(*chunk, strict=True)
            else:
                columns = tuple(zip(*chunk, strict=True))
                seqs, links, stored, recorded = columns[1], columns[18], columns[19], columns[14]
                blobs = [None if (values := canonical_values(row)) is None
                         else text(values).encode("utf-8") for row in chunk]
            try:
                digests = tuple(map(hexdigest, map(sha256, blobs)))
            except TypeError:  # a row without a valid encoding (None): no digest
                digests = tuple(None if b is None else hexdigest(sha256(b)) for b in blobs)
            n = len(digests)
            times = [t for t in recorded if t is not None]
            if recorded_last is not None:
                times.insert(0, recorded_last)
            if (digests == stored and links[0] == prev and links[1:] == digests[:-1]
                    and seqs == tuple(range(expected_seq, expected_seq + n))
                    and times == sorted(times)):
                expected_seq, prev, count = expected_seq + n, digests[-1], count + n
                recorded_last = times[-1] if times else None
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
                    digest = _python_digest(conn, seq) if fast else stored_hash(chunk[i])
                if digest is None or digest != stored[i]:
                    reason = f"第 {seq} 条的内容与其哈希不符（记录被篡改）"
                    return VerifyResult(False, count, prev, seq, reason)
                moment = recorded[i]
                if moment is not None:
                    if recorded_last is not None and moment < recorded_last:
                        reason = (f"第 {seq} 条的记录时间 {moment} 早于上一条的 {recorded_last}"
                                  "（记录时间倒退：伪造或补写的记录）")
                        return VerifyResult(False, count, prev, seq, reason)
                    recorded_last = moment
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

