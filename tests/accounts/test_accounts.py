"""Accounts through their Python API on a real database: Argon2id hashes, throttled logins,
tokens stored as hashes only, the org file's sync, and an audit row for every act."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import AccountLocked, InvalidInput, NotAuthenticated, PermissionDenied
from models.db import utcnow
from models.tables import ACCOUNT, API_TOKEN, AUDIT_ENTRY, PERSON
from safeloop import orgfile
from safeloop.accounts import passwords, store, tokens
from states import audit
from tests.conftest import DEMO_ORG

PASSWORD = "correct-horse-7"
GENERIC = NotAuthenticated.GENERIC


def _account(session, key: str):
    return session.connection().execute(
        select(ACCOUNT).join(PERSON, PERSON.c.id == ACCOUNT.c.person_id)
        .where(PERSON.c.key == key)).mappings().one()


def _rows(session, code: str | None = None) -> list[dict]:
    query = select(AUDIT_ENTRY).where(AUDIT_ENTRY.c.entity_type == "account")
    if code is not None:
        query = query.where(AUDIT_ENTRY.c.entity_code == code)
    return [dict(r) for r in session.connection().execute(query.order_by(AUDIT_ENTRY.c.seq)).mappings()]


def _verified(session) -> None:
    result = audit.verify(session.connection())
    assert result.ok, result
    session.rollback()


@pytest.fixture
def people(org):
    passwords.set_password(org, "sun.banzhang", PASSWORD, actor="admin")
    org.commit()
    return org


def test_org_load_creates_accounts_without_passwords(org):
    rows = org.connection().execute(select(ACCOUNT.c.password_hash, ACCOUNT.c.org_file)).all()
    assert len(rows) == 11 and {r[0] for r in rows} == {None} and {r[1] for r in rows} == {"demo_org.yaml"}
    with pytest.raises(NotAuthenticated, match=GENERIC):
        passwords.login(org, "li.anquan", "anything-at-all")  # no password yet: cannot log in


def test_password_is_argon2id_and_never_stored_in_clear(people):
    stored = _account(people, "sun.banzhang")["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert passwords.login(people, "sun.banzhang", PASSWORD).person_key == "sun.banzhang"
    for row in _rows(people):
        assert PASSWORD not in row["data"] and "argon2" not in row["data"]


def test_policy(people):
    for bad, reason in [("short", "至少 10"), ("sun.banzhang", "本人编号"), ("SUN.BANZHANG", "本人编号"),
                        ("x" * 100_000, "过长"), ("   ", "不能为空"), ("line\nbreak-here", "换行")]:
        with pytest.raises(InvalidInput, match=reason):
            passwords.set_password(people, "sun.banzhang", bad, actor="admin")
        people.rollback()
    markup = "<script>[b]x[/b]</script>"
    passwords.set_password(people, "sun.banzhang", markup, actor="admin")
    people.commit()
    assert passwords.login(people, "sun.banzhang", markup).person_key == "sun.banzhang"


def test_login_success_and_failure_audited_with_channel(people):
    with pytest.raises(NotAuthenticated) as wrong:
        passwords.login(people, "sun.banzhang", "wrong-password", channel="web")
    assert wrong.value.message == GENERIC
    principal = passwords.login(people, "sun.banzhang", PASSWORD, channel="api")
    assert (principal.channel, principal.credential, principal.must_change) == ("api", None, False)
    events = [(r["event"], r["channel"], r["actor"]) for r in _rows(people, "sun.banzhang")]
    assert events == [("set_password", "flow", "admin"), ("login_failed", "web", "sun.banzhang"),
                      ("login", "api", "sun.banzhang")]
    assert _account(people, "sun.banzhang")["failed_logins"] == 0
    _verified(people)


def test_unknown_person_same_message_and_about_the_same_time(people):
    def timed(key: str) -> tuple[float, str]:
        start = time.perf_counter()
        with pytest.raises(NotAuthenticated) as caught:
            passwords.login(people, key, "wrong-password")
        return time.perf_counter() - start, caught.value.message

    timed("nobody.at.all")  # warm the dummy hash
    known = sorted(timed("sun.banzhang")[0] for _ in range(3))[1]
    unknown_times, messages = zip(*(timed("nobody.at.all") for _ in range(3)), strict=True)
    unknown = sorted(unknown_times)[1]
    assert set(messages) == {GENERIC}
    assert 0.5 < unknown / known < 2.0, (known, unknown)
    assert all(r["entity_code"] != "nobody.at.all" for r in _rows(people))


def test_lock_after_five_failures_with_growing_back_off(people):
    t0 = utcnow()
    for i in range(4):
        with pytest.raises(NotAuthenticated) as caught:
            passwords.login(people, "sun.banzhang", "wrong-password", now=t0)
        assert not isinstance(caught.value, AccountLocked), i
    with pytest.raises(NotAuthenticated):
        passwords.login(people, "sun.banzhang", "wrong-password", now=t0)  # the fifth: locks
    assert _account(people, "sun.banzhang")["failed_logins"] == 5
    with pytest.raises(AccountLocked, match="锁定") as locked:
        passwords.login(people, "sun.banzhang", PASSWORD, now=t0 + timedelta(seconds=30))
    assert "until" in locked.value.details
    # after the minute: one more failure locks for two, then four minutes
    with pytest.raises(NotAuthenticated):
        passwords.login(people, "sun.banzhang", "wrong-password", now=t0 + timedelta(seconds=61))
    until = _account(people, "sun.banzhang")["locked_until"]
    assert abs((until.replace(tzinfo=None) - (t0 + timedelta(seconds=61 + 120)).replace(tzinfo=None))
               .total_seconds()) < 1
    assert passwords.lock_for(7) == timedelta(minutes=4) and passwords.lock_for(30) == timedelta(hours=1)
    with pytest.raises(AccountLocked):
        passwords.login(people, "sun.banzhang", PASSWORD, now=t0 + timedelta(seconds=150))
    # unlocked after the time: the right password works and resets the count
    assert passwords.login(people, "sun.banzhang", PASSWORD, now=t0 + timedelta(seconds=200))
    assert _account(people, "sun.banzhang")["failed_logins"] == 0
    events = [r["event"] for r in _rows(people, "sun.banzhang")]
    assert events.count("lock") == 2 and events.count("login_failed") == 6 and events[-1] == "login"
    _verified(people)


def test_disabled_account_refused_and_one_time_password(people):
    store.set_disabled(people, "sun.banzhang", True, actor="admin")
    people.commit()
    with pytest.raises(NotAuthenticated, match=GENERIC):
        passwords.login(people, "sun.banzhang", PASSWORD)
    store.set_disabled(people, "sun.banzhang", False, actor="admin")
    people.commit()
    one_time = passwords.generate_password()
    passwords.set_password(people, "sun.banzhang", one_time, actor="admin", must_change=True)
    people.commit()
    assert passwords.login(people, "sun.banzhang", one_time).must_change
    changed = passwords.change_password(people, "sun.banzhang", one_time, "a-new-password-1")
    assert not changed.must_change and not _account(people, "sun.banzhang")["must_change"]
    assert [r["event"] for r in _rows(people, "sun.banzhang")][-4:] == [
        "set_password", "login", "login", "set_password"]  # the change checks the old one as a login


# ---- tokens ------------------------------------------------------------------------------------


def test_token_shown_once_and_only_its_hash_stored(people):
    created = tokens.create_token(people, "sun.banzhang", name="巡检 App", actor="admin")
    people.commit()
    assert tokens.SHAPE.fullmatch(created.secret)
    stored = dict(people.connection().execute(select(API_TOKEN)).mappings().one())
    assert created.secret not in json.dumps(stored, default=str)
    assert stored["token_hash"] == tokens.digest(created.secret)
    assert created.secret.startswith(stored["prefix"])
    for row in _rows(people):
        assert created.secret not in row["data"] and stored["token_hash"] not in row["data"]
    principal = tokens.authenticate_token(people, created.secret, channel="api")
    assert (principal.person_key, principal.credential) == ("sun.banzhang", f"token:{created.id}")
    use = _rows(people)[-1]
    assert (use["event"], use["channel"], use["credential"]) == ("token_use", "api", f"token:{created.id}")
    # a second use within the minute writes no row
    count = len(_rows(people))
    tokens.authenticate_token(people, created.secret)
    assert len(_rows(people)) == count
    _verified(people)


def test_expired_revoked_disabled_and_malformed_tokens(people):
    now = utcnow()
    short = tokens.create_token(people, "sun.banzhang", name="短期", actor="admin",
                                expires_at=now + timedelta(days=1))
    other = tokens.create_token(people, "sun.banzhang", name="另一个", actor="admin")
    people.commit()
    with pytest.raises(NotAuthenticated, match=GENERIC):
        tokens.authenticate_token(people, short.secret, now=now + timedelta(days=2))
    tokens.revoke_token(people, other.id, actor="admin")
    people.commit()
    with pytest.raises(NotAuthenticated, match=GENERIC):
        tokens.authenticate_token(people, other.secret)
    with pytest.raises(InvalidInput, match="已于"):
        tokens.revoke_token(people, other.id, actor="admin")
    with pytest.raises(PermissionDenied):
        tokens.revoke_token(people, short.id, actor="li.anquan", only_person="li.anquan")
    people.rollback()
    assert tokens.authenticate_token(people, short.secret).person_key == "sun.banzhang"
    store.set_disabled(people, "sun.banzhang", True, actor="admin")
    people.commit()
    with pytest.raises(NotAuthenticated):
        tokens.authenticate_token(people, short.secret)
    for bad in [short.secret + "\n", short.secret[:-1] + "\nX", "", "x" * 100_000,
                short.secret.replace("sl_", "SL_")]:
        with pytest.raises(NotAuthenticated, match=GENERIC):
            tokens.authenticate_token(people, bad)
    with pytest.raises(InvalidInput, match="已停用"):
        tokens.create_token(people, "sun.banzhang", name="x", actor="admin")
    people.rollback()
    with pytest.raises(InvalidInput, match="控制字符"):
        tokens.create_token(people, "li.anquan", name="a\nb", actor="admin")
    people.rollback()
    assert {t.id: t.status(now + timedelta(days=2)) for t in tokens.list_tokens(people)} == {
        short.id: "expired", other.id: "revoked"}
    _verified(people)


# ---- the org file -----------------------------------------------------------------------------


def test_org_load_disables_a_removed_person_and_enables_them_again(session, tmp_path: Path):
    text = DEMO_ORG.read_text(encoding="utf-8")
    full = tmp_path / "org.yaml"
    full.write_text(text, encoding="utf-8")
    assert orgfile.load(session, full).accounts == {"account": 11}
    start = text.index("  - id: feng.hanjie")
    end = text.index("  - id:", start + 5)
    without = text[:start] + text[end:]
    assert "feng.hanjie" not in without
    full.write_text(without, encoding="utf-8")
    passwords.set_password(session, "feng.hanjie", PASSWORD, actor="admin")
    session.commit()
    assert orgfile.load(session, full).accounts == {"account_disabled": 1}
    row = _account(session, "feng.hanjie")
    assert row["disabled"] and row["disabled_reason"] == "org"
    assert session.connection().execute(select(PERSON.c.id).where(PERSON.c.key == "feng.hanjie")).first()
    session.rollback()
    with pytest.raises(NotAuthenticated):
        passwords.login(session, "feng.hanjie", PASSWORD)
    # a partial file of another name leaves them alone; the same file listing them again enables
    other = tmp_path / "extra.yaml"
    other.write_text("jurisdictions:\n  - {id: xz, name: 忻州市}\n", encoding="utf-8")
    assert orgfile.load(session, other).accounts == {}
    full.write_text(text, encoding="utf-8")
    assert orgfile.load(session, full).accounts == {"account_enabled": 1}
    assert passwords.login(session, "feng.hanjie", PASSWORD).person_key == "feng.hanjie"
    events = [(r["event"], json.loads(r["data"]).get("reason")) for r in _rows(session, "feng.hanjie")]
    assert ("disable", "org") in events and ("enable", "org") in events
    _verified(session)


def test_a_person_disabled_by_hand_stays_disabled_after_a_reload(org):
    store.set_disabled(org, "li.anquan", True, actor="admin")
    org.commit()
    orgfile.load(org, DEMO_ORG)
    assert _account(org, "li.anquan")["disabled_reason"] == "admin"
