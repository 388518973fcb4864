"""The raw-sqlite3 baseline: the statements ``states.engine`` issues for submit/reject, hand-written.

Same file kind and pragmas (WAL, synchronous=NORMAL, BEGIN IMMEDIATE), same rows: the hazard row
joined to its unit and jurisdiction paths, the actor's grants, the audit head, the versioned
UPDATE, the chained audit row (SHA-256 over the same canonical JSON, so ``states.audit.verify``
accepts the baseline's chain too), the head update and the outbox row. What is left out is exactly
the engine's overhead: SQLAlchemy, pydantic, the transitions Machine and the generic bookkeeping.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

LOAD_SQL = (
    "SELECT hazard.*, unit.path AS _unit_path, jurisdiction.path AS _jur_path FROM hazard "
    "JOIN unit ON unit.id = hazard.unit_id JOIN enterprise ON enterprise.id = hazard.enterprise_id "
    "JOIN jurisdiction ON jurisdiction.id = enterprise.jurisdiction_id "
)
ACTOR_SQL = (
    "SELECT person.id, role_grant.role, role_grant.unit_id, role_grant.jurisdiction_id FROM person "
    "LEFT OUTER JOIN role_grant ON role_grant.person_id = person.id WHERE person.key = ?"
)
HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
HEAD_UPDATE_SQL = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
AUDIT_SQL = (
    "INSERT INTO audit_entry (seq, entity_type, entity_id, entity_code, event, from_state, "
    "to_state, actor, actor_role, at, comment, data, flow_run_id, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Version-2 rows (what the engine writes now): the version, version 1's fields, then recorded_at,
# channel, credential and simulated before prev_hash (states.audit.HASHED_FIELDS_V2).
AUDIT_V2_SQL = (
    "INSERT INTO audit_entry (hash_version, seq, entity_type, entity_id, entity_code, event, "
    "from_state, to_state, actor, actor_role, at, comment, data, flow_run_id, recorded_at, "
    "channel, credential, simulated, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
OUTBOX_SQL = (
    "INSERT INTO outbox (created_at, audit_seq, entity_type, entity_id, event, recipient, "
    "template, payload, status, attempts) VALUES (?, ?, 'hazard', ?, ?, ?, ?, ?, 'pending', 0)"
)
SUBMIT_SQL = (
    "UPDATE hazard SET rectifier_id = ?, state = ?, updated_at = ?, version = ? "
    "WHERE id = ? AND version = ?"
)
REJECT_SQL = "UPDATE hazard SET state = ?, updated_at = ?, version = ? WHERE id = ? AND version = ?"

# event -> (from, to, roles that may fire it, label, to-state label, audit data)
EVENTS: dict[str, tuple[str, str, tuple[str, ...], str, str, str]] = {
    "submit": ("rectifying", "pending_acceptance", ("rectifier", "safety_officer", "unit_head"),
               "提交验收", "待验收", '{"evidence":[],"measures":""}'),
    "reject": ("pending_acceptance", "rectifying",
               ("principal", "regulator", "unit_head", "safety_officer"), "验收不通过", "整改中", "{}"),
}


def raw_hash(values: Sequence[Any]) -> str:
    return hashlib.sha256(_encode(list(values)).encode("utf-8")).hexdigest()


def db_time(moment: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a value (naive text, microseconds)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


class RawActor:
    """An actor's id and grants, and the roles they give in a unit (the engine's rule)."""

    def __init__(self, cur: sqlite3.Cursor, key: str) -> None:
        rows = cur.execute(ACTOR_SQL, (key,)).fetchall()
        if not rows:
            raise LookupError(key)
        self.key = key
        self.id: int = rows[0][0]
        self.grants = [(r[1], r[2], r[3]) for r in rows if r[1] is not None]

    def role_for(self, roles: tuple[str, ...], unit_path: str, jur_path: str) -> str:
        held = {
            role for role, unit_id, jur_id in self.grants
            if (unit_id is not None and f"/{unit_id}/" in unit_path)
            or (jur_id is not None and f"/{jur_id}/" in jur_path)
        }
        for role in roles:
            if role in held:
                return role
        raise PermissionError(self.key)


class Columns:
    """Positions of the loaded columns, read once from the cursor description."""

    def __init__(self, description: Sequence[Sequence[Any]]) -> None:
        names = [d[0] for d in description]
        (self.id, self.code, self.title, self.unit_id, self.state, self.version, self.owner_id,
         self.rectifier_id, self.deadline, self.unit_path, self.jur_path) = (
            names.index(n) for n in ("id", "code", "title", "unit_id", "state", "version",
                                     "owner_id", "rectifier_id", "deadline", "_unit_path",
                                     "_jur_path")
        )


def _plan(
    row: Sequence[Any], cols: Columns, event: str, actor: RawActor, comment: str | None,
    seq: int, prev: str, at_text: str, moment_text: str,
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], str]:
    """Check one event against a loaded row; return (update, audit, outbox) params and new hash."""
    source, dest, roles, label, dest_label, data = EVENTS[event]
    if row[cols.state] != source:
        raise ValueError(f"{row[cols.code]} is {row[cols.state]}, cannot {event}")
    role = actor.role_for(roles, row[cols.unit_path], row[cols.jur_path])
    if event == "reject" and actor.id == row[cols.rectifier_id]:
        raise ValueError("self-acceptance")
    hid, code, version = row[cols.id], row[cols.code], row[cols.version]
    if event == "submit":
        update: tuple[Any, ...] = (actor.id, dest, moment_text, version + 1, hid, version)
        recipient = f"role:safety_officer@unit:{row[cols.unit_id]}"
    else:
        update = (dest, moment_text, version + 1, hid, version)
        recipient = f"person:{row[cols.owner_id]}"
    values = (seq, "hazard", hid, code, event, source, dest, actor.key, role, at_text, comment,
              data, None, prev)
    digest = raw_hash(values)
    deadline = row[cols.deadline]
    payload = json.dumps(
        {"code": code, "title": row[cols.title], "event": event, "event_label": label,
         "state": dest, "state_label": dest_label, "actor": actor.key,
         "deadline": datetime.fromisoformat(deadline).replace(tzinfo=UTC).isoformat()
         if deadline else None, "entity_label": "隐患"},
        ensure_ascii=False,
    )
    outbox = (moment_text, seq, hid, event, recipient, f"hazard.{event}", payload)
    return update, (*values, digest), outbox, digest


def fire_one(
    conn: sqlite3.Connection, hazard_id: int, event: str, actor_key: str, comment: str | None,
) -> None:
    """One transition in its own transaction, as ``engine.fire`` does it."""
    moment = datetime.now(UTC)
    at_text, moment_text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), db_time(moment)
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.execute(LOAD_SQL + "WHERE hazard.id = ?", (hazard_id,))
        cols = Columns(cur.description)
        row = cur.fetchone()
        actor = RawActor(cur, actor_key)
        seq, prev = cur.execute(HEAD_SQL).fetchone()
        update, audit_row, outbox, digest = _plan(
            row, cols, event, actor, comment, seq + 1, prev, at_text, moment_text
        )
        if cur.execute(SUBMIT_SQL if event == "submit" else REJECT_SQL, update).rowcount != 1:
            raise RuntimeError("concurrent update")
        cur.execute(AUDIT_SQL, audit_row)
        cur.execute(HEAD_UPDATE_SQL, (seq + 1, digest))
        cur.execute(OUTBOX_SQL, outbox)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def fire_batch(
    conn: sqlite3.Connection, hazard_ids: Sequence[int], event: str, actor_key: str,
    comment: str | None, *, chunk: int = 500,
) -> None:
    """One event on many hazards in one transaction with executemany, as ``fire_many`` does it."""
    moment = datetime.now(UTC)
    at_text, moment_text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), db_time(moment)
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        rows: list[Any] = []
        cols: Columns | None = None
        for start in range(0, len(hazard_ids), chunk):
            part = hazard_ids[start : start + chunk]
            marks = ",".join("?" * len(part))
            cur.execute(f"{LOAD_SQL}WHERE hazard.id IN ({marks}) ORDER BY hazard.id", part)
            cols = cols or Columns(cur.description)
            rows += cur.fetchall()
        assert cols is not None and len(rows) == len(hazard_ids)
        actor = RawActor(cur, actor_key)
        seq, prev = cur.execute(HEAD_SQL).fetchone()
        updates, audits, outboxes = [], [], []
        for row in rows:
            seq += 1
            update, audit_row, outbox, prev = _plan(
                row, cols, event, actor, comment, seq, prev, at_text, moment_text
            )
            updates.append(update)
            audits.append(audit_row)
            outboxes.append(outbox)
        cur.executemany(SUBMIT_SQL if event == "submit" else REJECT_SQL, updates)
        if cur.rowcount != len(updates):
            raise RuntimeError("concurrent update")
        cur.executemany(AUDIT_SQL, audits)
        cur.execute(HEAD_UPDATE_SQL, (seq, prev))
        cur.executemany(OUTBOX_SQL, outboxes)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
