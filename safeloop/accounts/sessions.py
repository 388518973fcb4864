"""Login sessions: what a password login hands the API client (and the web app's cookie).

The secret is ``ss_`` and 43 URL-safe characters (256 random bits), shown once; the row keeps
only its SHA-256 (``login_session.digest``), as for personal tokens. A session ends at the first
of: logout (``revoked_at``), ``idle`` without a request, ``lifetime`` after the login, or the
account being disabled. ``last_seen_at`` is written at most once per ``TOUCH_INTERVAL`` (so a
client reading in a loop does not write on every request); the idle limit is therefore kept to
within that interval. A refused secret writes nothing.

Audit rows (entity ``account``): the login itself (``passwords.login``, with the new session's
id in its data and ``session:<id>`` as its credential), ``logout``, and ``session_revoke`` when
a password change ends the person's other sessions. Never the secret, nor a hash of it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session

from core.errors import AccountLocked, InvalidInput, NotAuthenticated
from models.db import as_utc, utcnow
from models.tables import ACCOUNT, LOGIN_SESSION, PERSON
from safeloop.accounts import passwords, store
from safeloop.accounts.principal import Principal

PREFIX = "ss_"
SHAPE = re.compile(r"ss_[A-Za-z0-9_-]{43}")
TOUCH_INTERVAL = timedelta(minutes=1)
CREDENTIAL = "session:"


@dataclass(frozen=True)
class Lifetimes:
    """How long a session lives: without a request (``idle``) and at most (``absolute``)."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)

    @classmethod
    def from_settings(cls, settings: Any) -> Lifetimes:
        return cls(timedelta(seconds=settings.session_idle_s),
                   timedelta(seconds=settings.session_lifetime_s))


@dataclass(frozen=True)
class Opened:
    principal: Principal  # credential ``session:<id>``; ``must_change`` for a one-time password
    session_id: int
    secret: str  # shown once, never stored
    expires_at: datetime  # the absolute end (the idle limit may end it sooner)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def session_id_of(credential: str | None) -> int | None:
    """The session id of a ``session:<id>`` credential; None for a token or no credential."""
    if credential is None or not credential.startswith(CREDENTIAL):
        return None
    return int(credential.removeprefix(CREDENTIAL))


def login(session: Session, person_key: str, password: str, *, channel: str,
          lifetimes: Lifetimes, now: datetime | None = None) -> Opened:
    """Check the password as ``passwords.login`` does (throttled, audited, the same refusals)
    and open a session in the same transaction as the login's audit row. Commits."""
    made: dict[str, Any] = {}

    def opener(inner: Session, found: store.AccountRow, moment: datetime) -> int:
        secret = PREFIX + secrets.token_urlsafe(32)
        expires = moment + lifetimes.absolute
        session_id = int(inner.connection().execute(insert(LOGIN_SESSION).values(
            person_id=found.person_id, digest=digest(secret), channel=channel[:8],
            created_at=moment, last_seen_at=moment, expires_at=expires)
            .returning(LOGIN_SESSION.c.id)).scalar_one())
        made.update(id=session_id, secret=secret, expires=expires)
        return session_id

    principal = passwords.login(session, person_key, password, channel=channel, now=now, opener=opener)
    return Opened(principal, int(made["id"]), str(made["secret"]), made["expires"])


_AUTH = (select(LOGIN_SESSION.c.id, LOGIN_SESSION.c.created_at, LOGIN_SESSION.c.last_seen_at,
                LOGIN_SESSION.c.expires_at, LOGIN_SESSION.c.revoked_at, PERSON.c.id, PERSON.c.key,
                PERSON.c.name, ACCOUNT.c.disabled, ACCOUNT.c.must_change)
         .join(PERSON, PERSON.c.id == LOGIN_SESSION.c.person_id)
         .outerjoin(ACCOUNT, ACCOUNT.c.person_id == PERSON.c.id))


def authenticate_session(session: Session, secret: str, *, channel: str, lifetimes: Lifetimes,
                         now: datetime | None = None, writer: Session | None = None) -> Principal:
    """The session's person, or ``NotAuthenticated`` (one message) for a malformed, unknown,
    logged-out, idle or expired session or a disabled account -- having written nothing. A live
    session's ``last_seen_at`` is moved on (at most once a ``TOUCH_INTERVAL``) and committed,
    in ``writer`` when given (a request that only reads keeps its own session read-only)."""
    moment = now or utcnow()
    if not isinstance(secret, str) or SHAPE.fullmatch(secret) is None:
        raise NotAuthenticated()
    row = session.connection().execute(_AUTH.where(LOGIN_SESSION.c.digest == digest(secret))).first()
    if row is None:
        raise NotAuthenticated()
    session_id = int(row[0])
    created, last_seen, expires = as_utc(row[1]), as_utc(row[2]), as_utc(row[3])
    assert created is not None and last_seen is not None and expires is not None
    ends = min(expires, created + lifetimes.absolute, last_seen + lifetimes.idle)
    disabled = row[8] is None or bool(row[8])
    if row[4] is not None or ends <= moment or disabled:
        session.rollback()
        raise NotAuthenticated()
    if moment - last_seen >= TOUCH_INTERVAL:
        touch = writer or session
        seen = LOGIN_SESSION.c.last_seen_at
        touch.connection().execute(update(LOGIN_SESSION).where(
            LOGIN_SESSION.c.id == session_id, seen <= moment - TOUCH_INTERVAL).values(last_seen_at=moment))
        touch.commit()
    return Principal(int(row[5]), str(row[6]), str(row[7]), channel, f"{CREDENTIAL}{session_id}",
                     must_change=bool(row[9]))


def logout(session: Session, principal: Principal, *, now: datetime | None = None) -> int:
    """End the caller's own session (a personal token is revoked with ``token revoke``, not
    here). Audited as ``logout`` under the session's credential. Commits."""
    session_id = session_id_of(principal.credential)
    if session_id is None:
        raise InvalidInput("个人令牌不能登出；不再使用时请撤销令牌（safeloop user token revoke）")
    with store.channel(session, principal.channel, principal.credential):
        session.connection().execute(update(LOGIN_SESSION).where(
            LOGIN_SESSION.c.id == session_id, LOGIN_SESSION.c.revoked_at.is_(None))
            .values(revoked_at=now or utcnow()))
        store.audit(session, principal.person_key, "logout", actor=principal.person_key,
                    data={"session_id": session_id})
        session.commit()
    return session_id


def change_password(session: Session, principal: Principal, old: str, new: str, *,
                    now: datetime | None = None) -> Principal:
    """The person's own change (``passwords.change_password``: the old password checked as a
    login is, counted and locking alike), then every other open session of theirs ends: whoever
    else held one must log in with the new password. Commits. The caller's own session lives
    on, no longer must_change. A wrong old password is bad input naming ``old`` (the caller is
    signed in: a 401 would tell their client the session had ended); a lock stays a lock."""
    try:
        changed = passwords.change_password(session, principal.person_key, old, new,
                                            channel=principal.channel, credential=principal.credential,
                                            now=now)
    except AccountLocked:
        raise
    except NotAuthenticated as exc:
        raise InvalidInput("原密码不正确", field="old") from exc
    moment = now or utcnow()
    keep = session_id_of(principal.credential)
    others = [int(i) for i in session.connection().execute(
        select(LOGIN_SESSION.c.id).where(LOGIN_SESSION.c.person_id == principal.person_id,
                                         LOGIN_SESSION.c.revoked_at.is_(None),
                                         LOGIN_SESSION.c.expires_at > moment,
                                         LOGIN_SESSION.c.id != (keep or -1))
        .order_by(LOGIN_SESSION.c.id)).scalars()]
    if others:
        with store.channel(session, principal.channel, principal.credential):
            session.connection().execute(update(LOGIN_SESSION).where(LOGIN_SESSION.c.id.in_(others))
                                         .values(revoked_at=moment))
            store.audit(session, principal.person_key, "session_revoke", actor=principal.person_key,
                        data={"session_ids": others, "reason": "password_changed"})
            session.commit()
    return replace(changed, channel=principal.channel, credential=principal.credential)
