"""Accounts: lookup, creation, enable/disable, their audit rows, and the org file's sync.

Every act on an account is an audit row of entity ``account`` whose code is the person's key,
written in the caller's transaction (``states.records``) with the session's ``Origin`` (channel
and credential id). Audit data never holds a password, a token secret or a hash of either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlmodel import Session

from core.errors import InvalidInput, NotFound
from models.db import as_utc, utcnow
from models.tables import ACCOUNT, DEPARTMENT, JURISDICTION, PERSON, ROLE_GRANT, UNIT
from states.records import Act, record, record_many
from states.requests import origin_of, set_origin

ENTITY = "account"
ROLE = "account"  # the audit row's role for a person acting on their own account
ADMIN_ROLE = "admin"  # …and for an operator acting on someone's account (as ``org load`` does)


@dataclass(frozen=True)
class AccountRow:
    person_id: int
    person_key: str
    name: str
    account_id: int | None
    password_hash: str | None
    must_change: bool
    disabled: bool
    disabled_reason: str | None
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None


_SELECT = (select(PERSON.c.id, PERSON.c.key, PERSON.c.name, ACCOUNT.c.id, ACCOUNT.c.password_hash,
                  ACCOUNT.c.must_change, ACCOUNT.c.disabled, ACCOUNT.c.disabled_reason,
                  ACCOUNT.c.failed_logins, ACCOUNT.c.locked_until, ACCOUNT.c.last_login_at)
           .select_from(PERSON.outerjoin(ACCOUNT, ACCOUNT.c.person_id == PERSON.c.id)))


def _row(found: Any) -> AccountRow:
    return AccountRow(int(found[0]), str(found[1]), str(found[2]),
                      None if found[3] is None else int(found[3]), found[4], bool(found[5]),
                      bool(found[6]), found[7], int(found[8] or 0), as_utc(found[9]),
                      as_utc(found[10]))


def find(conn: Connection, person_key: str) -> AccountRow | None:
    """The person and their account (the account fields empty if they have none yet)."""
    found = conn.execute(_SELECT.where(PERSON.c.key == person_key)).first()
    return None if found is None else _row(found)


def get(conn: Connection, person_key: str) -> AccountRow:
    """``find``, refusing an unknown person (for operators' commands, not for logins)."""
    found = find(conn, person_key)
    if found is None:
        raise NotFound(f"未找到人员「{person_key[:64]}」（组织文件中的 id）", person=person_key[:64])
    return found


def all_accounts(conn: Connection) -> list[AccountRow]:
    return [_row(r) for r in conn.execute(_SELECT.order_by(PERSON.c.key))]


def roles_of(conn: Connection, person_id: int) -> list[dict[str, str | None]]:
    """The person's roles as the org file states them: role, and the unit or jurisdiction (and
    department) it is held in, by key."""
    rows = conn.execute(
        select(ROLE_GRANT.c.role, UNIT.c.key, JURISDICTION.c.key, DEPARTMENT.c.key)
        .select_from(ROLE_GRANT.outerjoin(UNIT, UNIT.c.id == ROLE_GRANT.c.unit_id)
                     .outerjoin(JURISDICTION, JURISDICTION.c.id == ROLE_GRANT.c.jurisdiction_id)
                     .outerjoin(DEPARTMENT, DEPARTMENT.c.id == ROLE_GRANT.c.department_id))
        .where(ROLE_GRANT.c.person_id == person_id).order_by(ROLE_GRANT.c.id))
    return [{"role": str(r[0]), "unit": r[1], "jurisdiction": r[2], "department": r[3]} for r in rows]


def ensure(conn: Connection, person_id: int, now: datetime | None = None) -> int:
    """The person's account id, creating the account (no password: cannot log in) if missing."""
    found = conn.execute(select(ACCOUNT.c.id).where(ACCOUNT.c.person_id == person_id)).scalar()
    if found is not None:
        return int(found)
    moment = now or utcnow()
    return int(conn.execute(insert(ACCOUNT).values(
        person_id=person_id, must_change=False, disabled=False, failed_logins=0,
        created_at=moment, updated_at=moment).returning(ACCOUNT.c.id)).scalar_one())


def change(conn: Connection, person_id: int, now: datetime | None = None, **values: Any) -> None:
    ensure(conn, person_id, now)
    conn.execute(update(ACCOUNT).where(ACCOUNT.c.person_id == person_id)
                 .values(updated_at=now or utcnow(), **values))


def audit(session: Session, person_key: str, event: str, *, actor: str, role: str = ROLE,
          data: Mapping[str, Any] | None = None) -> int:
    """One audit row for an act on the account, at the real clock (the business times the
    throttling compares with may be given for tests; the trail's time is always real)."""
    return record(session, entity_type=ENTITY, entity_code=person_key, event=event, actor=actor,
                  role=role, data=dict(data or {}))


@contextmanager
def channel(session: Session, name: str, credential: str | None = None) -> Iterator[None]:
    """Record this block's audit rows as coming through ``name`` (and ``credential``)."""
    before = session.info.get("origin")
    set_origin(session, replace(origin_of(session), channel=name, credential=credential))
    try:
        yield
    finally:
        if before is None:
            session.info.pop("origin", None)
        else:
            session.info["origin"] = before


def set_disabled(session: Session, person_key: str, disabled: bool, *, actor: str) -> bool:
    """Disable or enable an account by hand; False when it already was."""
    conn = session.connection()
    found = get(conn, person_key)
    if found.account_id is not None and found.disabled == disabled:
        return False
    change(conn, found.person_id, disabled=disabled, disabled_reason="admin" if disabled else None,
           failed_logins=0, locked_until=None)
    audit(session, person_key, "disable" if disabled else "enable", actor=actor, role=ADMIN_ROLE)
    return True


def sync_with_org(session: Session, file_name: str, listed: Mapping[str, int], *,
                  actor: str) -> dict[str, int]:
    """After an org file is written: an account for every person it lists; the accounts of
    people this same file listed before but lists no longer are disabled (never deleted, so the
    trail still names them), and a person listed again is enabled if the file had disabled
    them. Other files' people are left alone (files may be partial). Returns counts."""
    conn = session.connection()
    if len(file_name) > 255:
        raise InvalidInput("组织文件名过长（最多 255 个字符）")
    now = utcnow()
    counts: dict[str, int] = {}
    acts: list[Act] = []
    rows = {int(r[0]): r for r in conn.execute(
        select(ACCOUNT.c.person_id, ACCOUNT.c.disabled, ACCOUNT.c.disabled_reason,
               ACCOUNT.c.org_file))}
    for key, pid in listed.items():
        row = rows.get(pid)
        if row is None:
            ensure(conn, pid, now)
            counts["account"] = counts.get("account", 0) + 1
            row = (pid, False, None, None)
        values: dict[str, Any] = {}
        if row[3] != file_name:
            values["org_file"] = file_name
        if row[1] and row[2] == "org":
            values.update(disabled=False, disabled_reason=None)
            acts.append(Act(ENTITY, key, "enable", {"reason": "org", "file": file_name}))
            counts["account_enabled"] = counts.get("account_enabled", 0) + 1
        if values:
            conn.execute(update(ACCOUNT).where(ACCOUNT.c.person_id == pid)
                         .values(updated_at=now, **values))
    gone = conn.execute(
        select(PERSON.c.id, PERSON.c.key).join(ACCOUNT, ACCOUNT.c.person_id == PERSON.c.id)
        .where(ACCOUNT.c.org_file == file_name, ACCOUNT.c.disabled.is_(False))
        .where(PERSON.c.id.not_in(list(listed.values()) or [-1]))).all()
    for pid, key in gone:
        conn.execute(update(ACCOUNT).where(ACCOUNT.c.person_id == pid).values(
            disabled=True, disabled_reason="org", updated_at=now))
        acts.append(Act(ENTITY, str(key), "disable", {"reason": "org", "file": file_name}))
        counts["account_disabled"] = counts.get("account_disabled", 0) + 1
    if acts:
        record_many(session, acts, actor=actor, role=ADMIN_ROLE)
    return counts
