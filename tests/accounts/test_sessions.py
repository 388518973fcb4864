"""Login sessions through their Python API on a real database: the secret stored as a hash only,
the idle and absolute limits, last_seen_at written at most once a minute, logout, and a
disabled account's sessions refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import NotAuthenticated
from models.db import as_utc, utcnow
from models.tables import LOGIN_SESSION
from safeloop.accounts import passwords, sessions, store
from tests.helpers import row_counts

PASSWORD = "correct-horse-7"
LIMITS = sessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


@pytest.fixture
def person(org):
    passwords.set_password(org, "li.anquan", PASSWORD, actor="admin")
    org.commit()
    return org


def _last_seen(session, session_id: int):
    found = session.connection().execute(
        select(LOGIN_SESSION.c.last_seen_at).where(LOGIN_SESSION.c.id == session_id)).scalar()
    session.rollback()
    return as_utc(found)


def test_secret_shape_and_hash_only(person):
    opened = sessions.login(person, "li.anquan", PASSWORD, channel="web", lifetimes=LIMITS)
    assert sessions.SHAPE.fullmatch(opened.secret)
    assert opened.principal.credential == f"session:{opened.session_id}"
    row = person.connection().execute(select(LOGIN_SESSION)).mappings().one()
    assert row["digest"] == sessions.digest(opened.secret) and opened.secret not in str(dict(row))
    assert row["channel"] == "web"
    again = sessions.authenticate_session(person, opened.secret, channel="web", lifetimes=LIMITS)
    assert (again.person_key, again.credential, again.must_change) == (
        "li.anquan", opened.principal.credential, False)


def test_idle_and_absolute_limits(person):
    start = utcnow()
    opened = sessions.login(person, "li.anquan", PASSWORD, channel="api", lifetimes=LIMITS, now=start)
    assert opened.expires_at == start + LIMITS.absolute
    check = sessions.authenticate_session
    # used every 29 minutes, the session lives until its absolute end, and not a moment longer
    moment = start
    while moment + timedelta(minutes=29) < start + LIMITS.absolute:
        moment += timedelta(minutes=29)
        check(person, opened.secret, channel="api", lifetimes=LIMITS, now=moment)
        assert _last_seen(person, opened.session_id) == moment
    with pytest.raises(NotAuthenticated):
        check(person, opened.secret, channel="api", lifetimes=LIMITS, now=start + LIMITS.absolute)
    # a second session left alone for 30 minutes is idle: refused, and nothing written
    other = sessions.login(person, "li.anquan", PASSWORD, channel="api", lifetimes=LIMITS, now=start)
    before = row_counts(person)
    check(person, other.secret, channel="api", lifetimes=LIMITS, now=start + timedelta(seconds=59))
    assert _last_seen(person, other.session_id) == start  # within a minute: not written
    assert row_counts(person) == before
    with pytest.raises(NotAuthenticated):
        check(person, other.secret, channel="api", lifetimes=LIMITS, now=start + LIMITS.idle)
    assert row_counts(person) == before and _last_seen(person, other.session_id) == start
    # a shorter lifetime set later applies to sessions already open
    third = sessions.login(person, "li.anquan", PASSWORD, channel="api", lifetimes=LIMITS, now=start)
    short = sessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(minutes=10))
    with pytest.raises(NotAuthenticated):
        check(person, third.secret, channel="api", lifetimes=short, now=start + timedelta(minutes=10))


def test_logout_and_disabled_account(person):
    opened = sessions.login(person, "li.anquan", PASSWORD, channel="api", lifetimes=LIMITS)
    kept = sessions.login(person, "li.anquan", PASSWORD, channel="api", lifetimes=LIMITS)
    assert sessions.logout(person, opened.principal) == opened.session_id
    with pytest.raises(NotAuthenticated):
        sessions.authenticate_session(person, opened.secret, channel="api", lifetimes=LIMITS)
    assert sessions.authenticate_session(person, kept.secret, channel="api", lifetimes=LIMITS)
    store.set_disabled(person, "li.anquan", True, actor="admin")
    person.commit()
    with pytest.raises(NotAuthenticated):
        sessions.authenticate_session(person, kept.secret, channel="api", lifetimes=LIMITS)
    for bad in ("", "ss_short", "sl_" + "A" * 43, "ss_" + "A" * 43, kept.secret + "A", None):
        with pytest.raises(NotAuthenticated):
            sessions.authenticate_session(person, bad, channel="api", lifetimes=LIMITS)  # type: ignore[arg-type]
