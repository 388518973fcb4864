"""The dispatcher's statements on the outbox and delivery tables, each in a short transaction.

Claiming is one ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING``: on PostgreSQL the inner
select takes ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers split the rows; on SQLite the
``BEGIN IMMEDIATE`` of ``models.db`` serialises the claim. A claimed row is ``sending`` with a
lease; when the lease ends (its dispatcher was killed) the row is claimable again, and the
unique delivery keys stop any channel that already got it from getting it twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import NOTIFICATION_DELIVERY as DELIVERY
from models.tables import OUTBOX as OUT

STATUSES = ("pending", "sending", "sent", "dead", "unrouted", "skipped")
_CHUNK = 500


def due_filter(now: datetime) -> Any:
    """Rows a dispatcher may take now: pending and due, or sending with an expired lease."""
    return or_(
        and_(OUT.c.status == "pending",
             or_(OUT.c.next_attempt_at.is_(None), OUT.c.next_attempt_at <= now)),
        and_(OUT.c.status == "sending", OUT.c.leased_until < now),
    )


def claim(conn: Connection, *, now: datetime, owner: str, lease: timedelta, limit: int | None,
          where: Any = None) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due rows (oldest first) to ``owner``; commits; returns them."""
    inner = select(OUT.c.id).where(due_filter(now))
    if where is not None:
        inner = inner.where(where)
    inner = inner.order_by(OUT.c.id)
    if limit is not None:
        inner = inner.limit(limit)
    if conn.dialect.name == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    stmt = (update(OUT).where(OUT.c.id.in_(inner.scalar_subquery()))
            .values(status="sending", lease_owner=owner, leased_until=now + lease)
            .returning(*OUT.c))
    with conn.begin():
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    rows.sort(key=lambda r: r["id"])
    return rows


def release(conn: Connection, rows: Iterable[dict[str, Any]], owner: str,
            until: datetime) -> None:
    """Give rows back untouched, to be taken again at ``until`` (digests held for their hour)."""
    params = [{"b_id": r["id"], "b_owner": owner, "v_next": until} for r in rows]
    if not params:
        return
    with conn.begin():
        conn.execute(
            update(OUT).where(OUT.c.id == bindparam("b_id"), OUT.c.lease_owner == bindparam("b_owner"))
            .values(status="pending", next_attempt_at=bindparam("v_next"), lease_owner=None,
                    leased_until=None), params)


def freeze_digest(conn: Connection, lead: int, members: Sequence[int]) -> None:
    """Fix a digest's membership so a retry resends the same digest, never a regrouped one."""
    with conn.begin():
        conn.execute(update(OUT).where(OUT.c.id.in_(list(members))).values(digest_of=lead))


def extend_lease(conn: Connection, ids: Sequence[int], owner: str, until: datetime) -> None:
    if not ids:
        return
    with conn.begin():
        for start in range(0, len(ids), _CHUNK):
            conn.execute(update(OUT).where(
                OUT.c.id.in_(list(ids[start:start + _CHUNK])), OUT.c.lease_owner == owner,
                OUT.c.status == "sending").values(leased_until=until))


def sent_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """The delivery keys already delivered (so those channels are skipped)."""
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start:start + _CHUNK])
        found.update(conn.execute(select(DELIVERY.c.key).where(
            DELIVERY.c.key.in_(chunk), DELIVERY.c.status == "sent")).scalars())
    if conn.in_transaction():
        conn.rollback()
    return found


def audit_facts(conn: Connection, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Actor, comment and data of the audit rows the messages came from."""
    found: dict[int, dict[str, Any]] = {}
    unique = sorted(set(seqs))
    for start in range(0, len(unique), _CHUNK):
        for r in conn.execute(select(
                AUDIT.c.seq, AUDIT.c.entity_type, AUDIT.c.entity_id, AUDIT.c.event, AUDIT.c.actor,
                AUDIT.c.comment, AUDIT.c.data).where(AUDIT.c.seq.in_(unique[start:start + _CHUNK]))):
            found[r.seq] = {"entity_type": r.entity_type, "entity_id": r.entity_id,
                            "event": r.event, "actor": r.actor, "comment": r.comment,
                            "data": json.loads(r.data or "{}")}
    if conn.in_transaction():
        conn.rollback()
    return found


def rows_by_id(conn: Connection, table: Any, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        for r in conn.execute(select(table).where(table.c.id.in_(unique[start:start + _CHUNK])))\
                .mappings():
            found[r["id"]] = dict(r)
    if conn.in_transaction():
        conn.rollback()
    return found


def _upsert(conn: Connection) -> Any:
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = maker(DELIVERY)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[DELIVERY.c.key],
        set_={"status": excluded.status, "attempts": DELIVERY.c.attempts + 1,
              "last_error": excluded.last_error, "last_attempt_at": excluded.last_attempt_at,
              "sent_at": excluded.sent_at},
        where=DELIVERY.c.status != "sent",  # a delivered channel is never marked failed again
    )


def record(conn: Connection, deliveries: Sequence[dict[str, Any]],
           outcomes: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]],
           owner: str) -> None:
    """One transaction: the channels' results, the finished messages' states and any alerts.

    An outcome is written only while this dispatcher still holds the row's lease.
    """
    with conn.begin():
        if deliveries:
            conn.execute(_upsert(conn), list(deliveries))
        if outcomes:
            conn.execute(
                update(OUT).where(OUT.c.id == bindparam("b_id"),
                                  OUT.c.lease_owner == bindparam("b_owner"))
                .values(status=bindparam("v_status"), attempts=bindparam("v_attempts"),
                        next_attempt_at=bindparam("v_next"), last_error=bindparam("v_error"),
                        sent_at=bindparam("v_sent"), lease_owner=None, leased_until=None),
                [{**o, "b_owner": owner} for o in outcomes])
        if alerts:
            conn.execute(insert(OUT), list(alerts))


# ---- for the CLI -----------------------------------------------------------------------------


def counts(conn: Connection) -> dict[str, int]:
    return {s: int(n) for s, n in conn.execute(
        select(OUT.c.status, func.count()).group_by(OUT.c.status)).all()}


def listing(conn: Connection, *, status: str | None, template: str | None,
            limit: int) -> list[dict[str, Any]]:
    stmt = select(OUT).order_by(OUT.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OUT.c.status == status)
    if template:
        stmt = stmt.where(OUT.c.template == template)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def listing_by_id(conn: Connection, outbox_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(OUT).where(OUT.c.id == outbox_id)).mappings()]


def digest_members(conn: Connection, lead: int) -> list[dict[str, Any]]:
    stmt = select(OUT).where(OUT.c.digest_of == lead).order_by(OUT.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def deliveries_of(conn: Connection, outbox_id: int, digest_of: int | None) -> list[dict[str, Any]]:
    ids = {outbox_id} | ({digest_of} if digest_of else set())
    stmt = select(DELIVERY).where(DELIVERY.c.outbox_id.in_(sorted(ids))).order_by(DELIVERY.c.id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def requeue(conn: Connection, ids: Sequence[int] | None, status: str | None) -> int:
    """Make dead/unrouted/skipped rows pending again with a fresh attempt count."""
    stmt = update(OUT).where(OUT.c.status.in_(["dead", "unrouted", "skipped"]))
    if ids:
        stmt = stmt.where(OUT.c.id.in_(list(ids)))
    if status:
        stmt = stmt.where(OUT.c.status == status)
    with conn.begin():
        done = conn.execute(stmt.values(status="pending", attempts=0, next_attempt_at=None,
                                        lease_owner=None, leased_until=None)).rowcount
    return int(done or 0)
