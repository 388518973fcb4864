"""Personal API tokens: ``sl_`` and 43 URL-safe characters (256 random bits), shown once.

Only the SHA-256 of the secret is stored (a fast hash is right for a high-entropy secret; a
lookup by hash leaks nothing about the secret), with its first characters as a non-secret label
(``prefix``) for lists. A token carries its person's roles, never more: it names the person, and
the engine checks that person's roles as for anyone else.

Token use is audited at most once per token per ``USE_AUDIT_INTERVAL`` (the first use, then the
first use after a minute's gap), together with ``last_used_at``, so a client reading in a loop
does not flood the chain. Refused tokens are not audited (anyone could write rows by guessing).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlmodel import Session

from core.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from models.db import as_utc, utcnow
from models.tables import ACCOUNT, API_TOKEN, PERSON
from safeloop.accounts import store
from safeloop.accounts.principal import Principal

PREFIX = "sl_"
SHAPE = re.compile(r"sl_[A-Za-z0-9_-]{43}")
LABEL_LENGTH = 8  # characters of the secret after "sl_" kept as its label
USE_AUDIT_INTERVAL = timedelta(minutes=1)
MAX_NAME = 100


@dataclass(frozen=True)
class CreatedToken:
    id: int
    secret: str  # shown once, never stored
    person_key: str
    name: str
    prefix: str
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    id: int
    person_key: str
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise InvalidInput("令牌名称不能为空（--name）")
    if len(text) > MAX_NAME:
        raise InvalidInput(f"令牌名称过长（最多 {MAX_NAME} 个字符）")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput("令牌名称不能含有控制字符（如换行）")
    return text


def create_token(session: Session, person_key: str, *, name: str, actor: str,
                 expires_at: datetime | None = None, now: datetime | None = None) -> CreatedToken:
    """A new token for the person (whose account must be enabled); the secret is returned once.
    Runs in the caller's transaction (the caller commits)."""
    moment = now or utcnow()
    label = _check_name(name)
    conn = session.connection()
    found = store.get(conn, person_key)
    if found.disabled:
        raise InvalidInput(f"人员「{found.person_key}」的账号已停用，不能创建令牌")
    expiry = as_utc(expires_at)
    if expiry is not None and expiry <= moment:
        raise InvalidInput("令牌的有效期应晚于现在")
    store.ensure(conn, found.person_id, moment)
    secret = PREFIX + secrets.token_urlsafe(32)
    prefix = secret[: len(PREFIX) + LABEL_LENGTH]
    token_id = int(conn.execute(insert(API_TOKEN).values(
        person_id=found.person_id, name=label, token_hash=digest(secret), prefix=prefix,
        created_by=actor[:64], created_at=moment, expires_at=expiry).returning(API_TOKEN.c.id))
        .scalar_one())
    store.audit(session, found.person_key, "token_create", actor=actor,
                role=store.ROLE if actor == found.person_key else store.ADMIN_ROLE,
                data={"token_id": token_id, "name": label,
                      "expires_at": expiry.isoformat() if expiry else None})
    return CreatedToken(token_id, secret, found.person_key, label, prefix, expiry)


_LIST = (select(API_TOKEN.c.id, PERSON.c.key, API_TOKEN.c.name, API_TOKEN.c.prefix,
                API_TOKEN.c.created_by, API_TOKEN.c.created_at, API_TOKEN.c.expires_at,
                API_TOKEN.c.revoked_at, API_TOKEN.c.last_used_at)
         .join(PERSON, PERSON.c.id == API_TOKEN.c.person_id).order_by(API_TOKEN.c.id))


def list_tokens(session: Session, person_key: str | None = None) -> list[TokenInfo]:
    """Every token (or one person's), newest last; never a secret or a hash."""
    query = _LIST
    if person_key is not None:
        store.get(session.connection(), person_key)
        query = query.where(PERSON.c.key == person_key)
    return [TokenInfo(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), as_utc(r[5]) or utcnow(),
                      as_utc(r[6]), as_utc(r[7]), as_utc(r[8]))
            for r in session.connection().execute(query)]


def revoke_token(session: Session, token_id: int, *, actor: str, only_person: str | None = None,
                 now: datetime | None = None) -> TokenInfo:
    """Revoke a token (``only_person``: refuse anyone else's). The caller commits."""
    moment = now or utcnow()
    found = next((t for t in list_tokens(session) if t.id == token_id), None)
    if found is None:
        raise NotFound(f"未找到令牌 {token_id}", token_id=token_id)
    if only_person is not None and found.person_key != only_person:
        raise PermissionDenied("只能撤销本人的令牌")
    if found.revoked_at is not None:
        raise InvalidInput(f"令牌 {token_id} 已于 {found.revoked_at:%Y-%m-%d %H:%M} UTC 撤销")
    session.connection().execute(update(API_TOKEN).where(API_TOKEN.c.id == token_id)
                                 .values(revoked_at=moment))
    store.audit(session, found.person_key, "token_revoke", actor=actor,
                role=store.ROLE if actor == found.person_key else store.ADMIN_ROLE,
                data={"token_id": token_id})
    return found


_AUTH = (select(API_TOKEN.c.id, API_TOKEN.c.expires_at, API_TOKEN.c.revoked_at,
                API_TOKEN.c.last_used_at, PERSON.c.id, PERSON.c.key, PERSON.c.name,
                ACCOUNT.c.disabled)
         .join(PERSON, PERSON.c.id == API_TOKEN.c.person_id)
         .outerjoin(ACCOUNT, ACCOUNT.c.person_id == PERSON.c.id))


def authenticate_token(session: Session, secret: str, *, channel: str = "api",
                       now: datetime | None = None, writer: Session | None = None) -> Principal:
    """The token's person, or ``NotAuthenticated`` (one message) for a malformed, unknown,
    expired or revoked token or a disabled account. Call it first on a fresh session: when it
    records the use (see the module) it commits -- in ``writer`` when given (a request that only
    reads keeps its own session read-only and records the use beside it)."""
    moment = now or utcnow()
    if not isinstance(secret, str) or SHAPE.fullmatch(secret) is None:
        raise NotAuthenticated()
    row = session.connection().execute(_AUTH.where(API_TOKEN.c.token_hash == digest(secret))).first()
    if row is None:
        raise NotAuthenticated()
    token_id, expires, revoked, last_used = int(row[0]), as_utc(row[1]), row[2], as_utc(row[3])
    disabled = row[7] is None or bool(row[7])  # no account row: not a usable account
    if revoked is not None or (expires is not None and expires <= moment) or disabled:
        raise NotAuthenticated()
    credential = f"token:{token_id}"
    if last_used is None or moment - last_used >= USE_AUDIT_INTERVAL:
        _record_use(writer or session, token_id, str(row[5]), channel, credential, moment)
    return Principal(int(row[4]), str(row[5]), str(row[6]), channel, credential)


def _record_use(session: Session, token_id: int, person_key: str, channel: str, credential: str,
                moment: datetime) -> None:
    """``last_used_at`` and one ``token_use`` audit row; when requests race, the UPDATE's own
    condition lets exactly one of them record it. Commits."""
    with store.channel(session, channel, credential):
        used = API_TOKEN.c.last_used_at
        touched = session.connection().execute(update(API_TOKEN).where(
            API_TOKEN.c.id == token_id, or_(used.is_(None), used <= moment - USE_AUDIT_INTERVAL))
            .values(last_used_at=moment)).rowcount
        if touched:
            store.audit(session, person_key, "token_use", actor=person_key, data={"token_id": token_id})
        session.commit()
