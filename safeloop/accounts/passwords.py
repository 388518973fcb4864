"""Passwords: Argon2id hashes (argon2-cffi, RFC 9106's parameters), the policy, and logins with
throttling.

A login that fails for any reason (unknown person, wrong password, disabled account, no
password yet) says the same thing (``NotAuthenticated``) and costs the same: an unknown person's
attempt is verified against a dummy hash. After ``LOCK_AFTER`` consecutive failures the account
is locked, and every further failure locks it again for twice as long (1 min, 2, 4 … capped at
1 h); a successful login resets the count. While locked no password is checked. Each login,
failure, lock and password change is an audit row (entity ``account``); a failure for an unknown
person is not (it would let anyone write into the trail), and ``login`` commits, since a
failure's count must be kept although it raises.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session

from core.calendar import DEFAULT_ZONE
from core.errors import AccountLocked, InvalidInput, NotAuthenticated
from core.rules import rules_on
from core.timeparse import to_local
from models.db import utcnow
from safeloop.accounts import store
from safeloop.accounts.principal import Principal

MIN_LENGTH = 10
MAX_LENGTH = 1024  # longer input is refused (set) or fails (login) before any hashing
LOCK_AFTER = 5
FIRST_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(hours=1)
HASH_PREFIX = "$argon2id$"

# Opens a login session for a successful login, in its transaction; returns the session's id.
Opener = Callable[[Session, store.AccountRow, datetime], int]

_hasher = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4 (RFC 9106 low-memory profile)


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_policy(password: str, person_key: str) -> None:
    """Refuse a password the policy does not allow, saying why in zh-CN (never echoing it)."""
    if not isinstance(password, str) or not password.strip():
        raise InvalidInput("密码不能为空")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"密码过长（{len(password)} 个字符，最多 {MAX_LENGTH} 个）")
    if password.strip().casefold() == person_key.casefold():
        raise InvalidInput("密码不能与本人编号（组织文件中的 id）相同")
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"密码太短：至少 {MIN_LENGTH} 个字符")
    if any(c in password for c in "\x00\r\n"):
        raise InvalidInput("密码不能含有空字符或换行")


def generate_password() -> str:
    """A one-time password (about 95 bits), to be changed at first login."""
    return secrets.token_urlsafe(12)


def lock_for(failures: int) -> timedelta:
    """How long the ``failures``-th consecutive failure locks the account (none below 5)."""
    if failures < LOCK_AFTER:
        return timedelta(0)
    return min(FIRST_LOCK * (2 ** min(failures - LOCK_AFTER, 16)), MAX_LOCK)


def set_password(session: Session, person_key: str, password: str, *, actor: str,
                 must_change: bool = False, now: datetime | None = None) -> None:
    """Set a person's password (an operator's act, or the person's own through
    ``change_password``); ``must_change`` makes it a one-time password. Clears a lock."""
    conn = session.connection()
    found = store.get(conn, person_key)
    check_policy(password, found.person_key)
    moment = now or utcnow()
    store.change(conn, found.person_id, moment, password_hash=hash_password(password),
                 must_change=must_change, password_changed_at=moment, failed_logins=0,
                 locked_until=None)
    store.audit(session, found.person_key, "set_password", actor=actor,
                role=store.ROLE if actor == found.person_key else store.ADMIN_ROLE,
                data={"one_time": must_change})


def change_password(session: Session, person_key: str, old: str, new: str, *,
                    channel: str = "web", credential: str | None = None,
                    now: datetime | None = None) -> Principal:
    """The person's own change: the old password is checked as a login is (throttled, audited),
    then the new one is set (``must_change`` cleared). ``credential``: the session or token the
    change comes through, for the audit rows. Commits."""
    principal = login(session, person_key, old, channel=channel, credential=credential, now=now)
    if new == old:
        raise InvalidInput("新密码不能与原密码相同")
    with store.channel(session, channel, principal.credential):
        set_password(session, principal.person_key, new, actor=principal.person_key, now=now)
        session.commit()
    return Principal(principal.person_id, principal.person_key, principal.name, channel,
                     principal.credential, must_change=False)


def _verify(encoded: str | None, password: str) -> bool:
    try:
        return _hasher.verify(encoded or _dummy_hash(), password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def login(session: Session, person_key: str, password: str, *, channel: str = "web",
          credential: str | None = None, opener: Opener | None = None,
          now: datetime | None = None) -> Principal:
    """The person if the password is theirs; else ``NotAuthenticated`` (``AccountLocked`` while
    locked), having counted and audited the failure. ``now`` drives the lock (tests pass it).
    ``opener`` (``sessions.login``) opens a login session in the login's transaction: the login
    row then names it (``session:<id>``); ``credential`` names the one already in use."""
    moment = now or utcnow()
    key = person_key if isinstance(person_key, str) else ""
    text = password if isinstance(password, str) else ""
    found = store.find(session.connection(), key[:200]) if 0 < len(key) <= 200 else None
    if found is None or found.account_id is None:
        _verify(None, text[:MAX_LENGTH])  # the same cost as a known person's attempt
        raise NotAuthenticated()
    with store.channel(session, channel, credential):
        if found.locked_until is not None and found.locked_until > moment and not found.disabled:
            session.rollback()
            raise AccountLocked(_locked_message(session, found.locked_until),
                                until=found.locked_until.isoformat())
        matches = len(text) <= MAX_LENGTH and _verify(found.password_hash, text)
        if found.disabled or not matches:
            _fail(session, found, moment, "disabled" if found.disabled else
                  "no_password" if found.password_hash is None else "bad_password")
            raise NotAuthenticated()
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None, "last_login_at": moment}
        if found.password_hash and _hasher.check_needs_rehash(found.password_hash):
            values["password_hash"] = hash_password(text)
        store.change(session.connection(), found.person_id, moment, **values)
        data: dict[str, object] = {"must_change": found.must_change}
        if opener is not None:
            session_id = opener(session, found, moment)
            credential, data["session_id"] = f"session:{session_id}", session_id
        with store.channel(session, channel, credential):
            store.audit(session, found.person_key, "login", actor=found.person_key, data=data)
        session.commit()
    return Principal(found.person_id, found.person_key, found.name, channel, credential,
                     must_change=found.must_change)


def _fail(session: Session, found: store.AccountRow, moment: datetime, reason: str) -> None:
    failures = found.failed_logins + 1
    lock = lock_for(failures)
    until = moment + lock if lock else None
    store.change(session.connection(), found.person_id, moment, failed_logins=failures,
                 locked_until=until)
    store.audit(session, found.person_key, "login_failed", actor=found.person_key,
                data={"reason": reason, "failures": failures})
    if until is not None:
        store.audit(session, found.person_key, "lock", actor=found.person_key,
                    data={"failures": failures, "until": until.isoformat(),
                          "minutes": int(lock.total_seconds() // 60)})
    session.commit()


def _locked_message(session: Session, until: datetime) -> str:
    rules = rules_on(session)
    zone = rules.zone if rules is not None else DEFAULT_ZONE
    return f"登录失败次数过多，账号已临时锁定，请于 {to_local(until, zone)}（{zone}）后再试"
