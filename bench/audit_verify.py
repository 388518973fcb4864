"""``states.audit.verify`` over a long chain: auditors and the checkpoint flow walk the whole trail.

The chain is built fast (version 2 rows, as every new row is: hashes via ``states.audit.row_hash``
in HASHED_FIELDS_V2 order, rows bulk inserted with raw sqlite3 executemany, then ``audit_head``
set) because going through the engine
would take far longer than the thing measured. The reference is plain ``hashlib.sha256`` over the
same canonical bytes, already encoded (untimed), in the same process: the floor that any verifier
in Python must pay; the notes add the sampled rate of encoding + hashing pre-fetched rows.
Target from the issue: >= 200,000 rows/s.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from bench.common import SEED_AT, Result, Stopwatch, new_database, raw_connect, scratch_dir
from models.db import make_engine
from states import audit

NAME = "audit_verify"
TARGET_RATE = 200_000.0
_CHUNK = 50_000
_INSERT = (
    f"INSERT INTO audit_entry ({', '.join(audit.STORED_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(audit.STORED_FIELDS))})"
)

# One hazard's life as (event, from, to, actor, role, comment, data): realistic field sizes.
_LIFE: tuple[tuple[str, str | None, str, str, str, str | None, str], ...] = (
    ("report", None, "reported", "sun.banzhang", "inspector", None,
     '{"category":"thing","description":"","evidence":[],"grade":"general",'
     '"location":"合成车间二层","source":"ad_hoc","title":"压力表失效","unit":"jinhua-team-a"}'),
    ("assign", "reported", "rectifying", "li.anquan", "safety_officer", None,
     '{"deadline":"2026-11-09T02:00:00Z","measures":"更换压力表并校验","owner":"sun.banzhang"}'),
    ("submit", "rectifying", "pending_acceptance", "sun.banzhang", "rectifier", None,
     '{"evidence":[{"name":"photo.jpg","sha256":"' + "a" * 64 + '","size":183422}],'
     '"measures":"已更换"}'),
    ("reject", "pending_acceptance", "rectifying", "li.anquan", "safety_officer",
     "复查未通过：密封件未更换，压力表读数仍异常", "{}"),
    ("submit", "rectifying", "pending_acceptance", "sun.banzhang", "rectifier", None,
     '{"evidence":[],"measures":"已更换密封件"}'),
    ("accept", "pending_acceptance", "closed", "wang.zhuren", "principal", None, "{}"),
)


def _chain(count: int, reference: Stopwatch) -> Iterator[list[tuple[object, ...]]]:
    """Chunks of complete audit rows (STORED_FIELDS: version 2 values + hash), chained from GENESIS.

    Each row is encoded once with the verifier's own canonical encoder and hashed; the first row
    of every chunk is cross-checked against ``states.audit.row_hash``. The chunk's canonical bytes
    are then hashed again under ``reference``: the raw-hashlib floor over the very same bytes.
    """
    prev, at, rows, blobs = audit.GENESIS, "", [], []
    encode, sha256, life = audit._encode, hashlib.sha256, _LIFE
    for index in range(count):
        entity, step = divmod(index, len(life))
        event, source, dest, actor, role, comment, data = life[step]
        if step == 0:
            at = audit.format_at(SEED_AT + timedelta(minutes=entity))
        values = (2, index + 1, "hazard", entity + 1, f"YH-{entity + 1:06d}", event, source, dest,
                  actor, role, at, comment, data, None, at, "cli", None, False, prev)
        blob = encode(list(values)).encode("utf-8")
        prev = sha256(blob).hexdigest()
        if not rows and audit.stored_hash(values) != prev:
            raise AssertionError("bench encoding drifted from states.audit.stored_hash")
        rows.append((*values, prev))
        blobs.append(blob)
        if len(rows) == _CHUNK or index == count - 1:
            with reference.lap():
                for blob in blobs:
                    sha256(blob).hexdigest()
            yield rows
            rows, blobs = [], []


def build(path: Path, count: int, reference: Stopwatch) -> str:
    """Insert a valid chain of ``count`` rows and point the head at it; return the head hash.

    The scratch file is written without a journal and with a big page cache (it is thrown away
    on failure anyway), then put back into WAL mode before anything is measured on it.
    """
    conn = raw_connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-524288")  # 512 MiB: keeps the random hash index in memory
    conn.execute("BEGIN IMMEDIATE")
    head = audit.GENESIS
    for rows in _chain(count, reference):
        conn.executemany(_INSERT, rows)
        head = str(rows[-1][-1])
    conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (count, head))
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return head


def encode_rate(path: Path, rows: int = _CHUNK) -> float:
    """Rows/s of canonical encoding + sha256 over the first rows, fetched beforehand (a sample)."""
    conn = raw_connect(path)
    fetched = conn.execute(
        f"SELECT {', '.join(audit.HASHED_FIELDS_V2)} FROM audit_entry ORDER BY seq LIMIT ?",
        (rows,)).fetchall()
    conn.close()
    encode, sha256, canonical = audit._encode, hashlib.sha256, audit.canonical_values
    start = time.perf_counter()
    for row in fetched:
        sha256(encode(list(canonical(row))).encode("utf-8")).hexdigest()
    return len(fetched) / (time.perf_counter() - start)


def run(quick: bool = False, profile: bool = False) -> Result:
    n = 100_000 if quick else 1_000_000
    with scratch_dir(NAME) as tmp:
        path = tmp / "audit.db"
        new_database(path, with_org=False).dispose()
        reference, measured = Stopwatch(), Stopwatch(profile)
        head = build(path, n, reference)
        engine = make_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as conn, measured.lap():
                result = audit.verify(conn)
        finally:
            engine.dispose()
        measured.print_profile(NAME)
        if not (result.ok and result.count == n and result.head_hash == head):
            raise AssertionError(f"verify on a valid chain: {result.to_dict()}")
        sampled = encode_rate(path)
    size = "1M" if n == 1_000_000 else f"{n:,}"
    return Result.of(NAME, n, measured, reference, TARGET_RATE,
                     notes=f"{size}-row chain of version 2 rows; baseline = sha256 alone over "
                           f"the same canonical bytes; canonical encoding + sha256 of pre-fetched "
                           f"rows runs at {sampled:,.0f}/s (sampled)")
