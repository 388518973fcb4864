"""Logins, sessions and tokens through the API on a real database (SQLite, and PostgreSQL when
configured): the statuses the README documents, and nothing written by any refusal."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.errors import NotAuthenticated
from models.db import utcnow
from models.tables import AUDIT_ENTRY, LOGIN_SESSION
from safeloop.accounts import passwords, sessions, store, tokens
from safeloop.api.app import RedactSecrets
from safeloop.api.deps import MUST_CHANGE
from tests.api.conftest import auth
from tests.api.test_hazard_api import OFFSET, deadline, report
from tests.helpers import CJK, row_counts

PASSWORD = "correct-horse-7"
NEW_PASSWORD = "battery-staple-42"
GENERIC = NotAuthenticated.GENERIC


def set_password(engine: Engine, person: str, password: str = PASSWORD, *, must_change: bool = False) -> None:
    with Session(engine) as session:
        passwords.set_password(session, person, password, actor="admin", must_change=must_change)
        session.commit()


def login(client: TestClient, person: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = client.post("/api/v1/login", json={"person": person, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(secret: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {secret}".encode()}  # bytes: a non-ASCII value is sent as is


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return row_counts(session)


def account_rows(engine: Engine, since: int = 0) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(AUDIT_ENTRY).where(
            AUDIT_ENTRY.c.entity_type == "account", AUDIT_ENTRY.c.seq > since)
            .order_by(AUDIT_ENTRY.c.seq)).mappings()]
        conn.rollback()
    return rows


def last_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        seq = conn.execute(select(AUDIT_ENTRY.c.seq).order_by(AUDIT_ENTRY.c.seq.desc()).limit(1)).scalar()
        conn.rollback()
    return int(seq or 0)


def test_login_me_logout(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan")
    before = last_seq(engine)
    opened = login(client, "li.anquan")
    assert set(opened) == {"token", "expires_at", "idle_timeout_s", "must_change"}
    assert sessions.SHAPE.fullmatch(opened["token"]) and opened["must_change"] is False
    assert OFFSET.search(opened["expires_at"]) and opened["idle_timeout_s"] == 30 * 60
    lifetime = datetime.fromisoformat(opened["expires_at"]) - utcnow()
    assert timedelta(hours=11, minutes=59) < lifetime <= timedelta(hours=12)
    me = client.get("/api/v1/me", headers=bearer(opened["token"]))
    assert me.status_code == 200, me.text
    body = me.json()
    session_id = int(body["credential"].removeprefix("session:"))
    assert body == {"person": "li.anquan", "name": "李安全", "read_only": False, "must_change": False,
                    "roles": [{"role": "safety_officer", "unit": "jinhua-plant1", "jurisdiction": None,
                               "department": None}],
                    "credential": f"session:{session_id}", "channel": "api"}
    auditor = client.get("/api/v1/me", headers=auth("he.shenji")).json()
    assert auditor["read_only"] is True and auditor["credential"].startswith("token:")
    assert client.get("/api/v1/hazard", headers=bearer(opened["token"])).status_code == 200
    assert client.post("/api/v1/logout", headers=bearer(opened["token"])).status_code == 204
    gone = client.get("/api/v1/me", headers=bearer(opened["token"]))
    assert gone.status_code == 401 and gone.json()["message"] == GENERIC
    rows = account_rows(engine, before)
    assert [(r["event"], r["channel"], r["credential"]) for r in rows] == [
        ("login", "api", f"session:{session_id}"), ("logout", "api", f"session:{session_id}")]
    assert json.loads(rows[0]["data"]) == {"must_change": False, "session_id": session_id}
    # a personal token is not logged out: it is revoked (safeloop user token revoke)
    token_logout = client.post("/api/v1/logout", headers=auth("li.anquan"))
    assert token_logout.status_code == 422 and "撤销" in token_logout.json()["message"]


def test_every_refused_login_is_the_same_401(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan")
    set_password(engine, "chen.anyuan")
    with Session(engine) as session:
        store.set_disabled(session, "chen.anyuan", True, actor="admin")
        session.commit()
    answers = [client.post("/api/v1/login", json=body) for body in (
        {"person": "li.anquan", "password": "wrong-password-1"},  # wrong password
        {"person": "nobody.here", "password": PASSWORD},  # unknown person
        {"person": "chen.anyuan", "password": PASSWORD},  # disabled account
        {"person": "zhao.chejian", "password": PASSWORD},  # no password set yet
        {"person": "li.anquan", "password": "x" * 5000},  # over the longest password
        {"person": "x" * 5000, "password": PASSWORD},
        {"person": "", "password": ""})]
    assert {a.status_code for a in answers} == {401}
    assert {json.dumps(a.json(), ensure_ascii=False) for a in answers} == {
        json.dumps({"error": "not_authenticated", "message": GENERIC}, ensure_ascii=False)}
    assert {a.headers["www-authenticate"] for a in answers} == {"Bearer"}
    for body, field in (({"person": "li.anquan"}, "password"),
                        ({"person": "li.anquan", "password": PASSWORD, "role": "admin"}, "role"),
                        ({"person": "li.anquan", "password": 12345678901}, "password")):
        bad = client.post("/api/v1/login", json=body)
        assert bad.status_code == 422 and bad.json()["field"] == field


def test_five_failed_logins_lock_the_account(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan")
    start, before = last_seq(engine), counts(engine)
    for _ in range(5):
        failed = client.post("/api/v1/login", json={"person": "li.anquan", "password": "wrong-password-1"})
        assert failed.status_code == 401 and failed.json()["message"] == GENERIC
    # the failures wrote exactly their audit rows: five failures and the lock, nothing else
    rows = account_rows(engine, start)
    assert [r["event"] for r in rows] == ["login_failed"] * 5 + ["lock"]
    assert {(r["channel"], r["credential"]) for r in rows} == {("api", None)}
    after_lock = counts(engine)
    assert after_lock == {**before, "audit_entry": before["audit_entry"] + 6}
    # locked: even the right password is refused, 429 with Retry-After, and nothing is written
    locked = client.post("/api/v1/login", json={"person": "li.anquan", "password": PASSWORD})
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"] == "account_locked" and "锁定" in locked.json()["message"]
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert counts(engine) == after_lock
    assert locked.headers["cache-control"] == "no-store"
    # the person's token still works (a lock stops password guessing, not the person's tools)
    assert client.get("/api/v1/hazard", headers=auth("li.anquan")).status_code == 200


def test_one_time_password_session_must_change_first(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan", "one-time-secret-1", must_change=True)
    opened = login(client, "li.anquan", "one-time-secret-1")
    assert opened["must_change"] is True
    headers = bearer(opened["token"])
    before = counts(engine)
    for method, path, body in (("GET", "/api/v1/hazard", None), ("GET", "/api/v1/inbox", None),
                               ("POST", "/api/v1/hazard", {"unit": "jinhua-team-a", "title": "x",
                                                           "category": "thing", "grade": "general"}),
                               ("GET", "/metrics", None)):
        refused = client.request(method, path, headers=headers, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json() == {"error": "password_change_required", "message": MUST_CHANGE}
        assert CJK.search(refused.json()["message"])
    assert counts(engine) == before
    assert client.get("/api/v1/me", headers=headers).json()["must_change"] is True
    other = login(client, "li.anquan", "one-time-secret-1")  # another device, same one-time password
    wrong = client.post("/api/v1/me/password", headers=headers,
                        json={"old": "not-the-password", "new": NEW_PASSWORD})
    assert wrong.status_code == 422 and wrong.json()["field"] == "old"  # still signed in: not 401
    same = client.post("/api/v1/me/password", headers=headers,
                       json={"old": "one-time-secret-1", "new": "one-time-secret-1"})
    assert same.status_code == 422
    changed = client.post("/api/v1/me/password", headers=headers,
                          json={"old": "one-time-secret-1", "new": NEW_PASSWORD})
    assert changed.status_code == 204, changed.text
    assert client.get("/api/v1/hazard", headers=headers).status_code == 200  # the same session
    assert client.get("/api/v1/me", headers=headers).json()["must_change"] is False
    assert client.get("/api/v1/me", headers=bearer(other["token"])).status_code == 401  # ended
    session_id = client.get("/api/v1/me", headers=headers).json()["credential"]
    rows = account_rows(engine)
    assert [r["event"] for r in rows[-3:]] == ["login", "set_password", "session_revoke"]
    assert {r["credential"] for r in rows[-3:]} == {session_id}
    assert client.post("/api/v1/login", json={"person": "li.anquan", "password": "one-time-secret-1"}
                       ).status_code == 401
    assert login(client, "li.anquan", NEW_PASSWORD)["must_change"] is False


def _refused_credentials(client: TestClient, engine: Engine) -> dict[str, str]:
    """One bearer value of every kind the API must refuse, made before anything is counted."""
    past = utcnow() - timedelta(days=2)
    with Session(engine) as session:
        expired = tokens.create_token(session, "li.anquan", name="过期", actor="admin", now=past,
                                      expires_at=past + timedelta(hours=1))
        revoked = tokens.create_token(session, "li.anquan", name="撤销", actor="admin")
        tokens.revoke_token(session, revoked.id, actor="admin")
        disabled = tokens.create_token(session, "chen.anyuan", name="停用", actor="admin")
        session.commit()
    set_password(engine, "li.anquan")
    set_password(engine, "chen.anyuan")
    idle, old, out = (login(client, "li.anquan")["token"] for _ in range(3))
    chen = login(client, "chen.anyuan")["token"]
    assert client.post("/api/v1/logout", headers=bearer(out)).status_code == 204
    with Session(engine) as session:
        store.set_disabled(session, "chen.anyuan", True, actor="admin")
        moment = utcnow()
        session.connection().execute(update(LOGIN_SESSION).where(  # no request for 31 minutes
            LOGIN_SESSION.c.digest == sessions.digest(idle)).values(
            last_seen_at=moment - timedelta(minutes=31)))
        session.connection().execute(update(LOGIN_SESSION).where(  # logged in 13 hours ago,
            LOGIN_SESSION.c.digest == sessions.digest(old)).values(  # used a minute ago
            created_at=moment - timedelta(hours=13), last_seen_at=moment - timedelta(minutes=1),
            expires_at=moment - timedelta(hours=1)))
        session.commit()
    return {"expired token": expired.secret, "revoked token": revoked.secret,
            "disabled account's token": disabled.secret, "disabled account's session": chen,
            "idle session": idle, "expired session": old, "logged-out session": out,
            "unknown token": "sl_" + "B" * 43, "unknown session": "ss_" + "C" * 43,
            "garbage": "not-a-token", "garbage shaped": "sl_" + "é" * 43, "overlong": "sl_" + "A" * 600,
            "overlong session": "ss_" + "A" * 100_000}


def test_refused_credentials_answer_401_and_write_nothing(client: TestClient, engine: Engine) -> None:
    code = report(client)["code"]
    refused = _refused_credentials(client, engine)
    before = counts(engine)
    for what, secret in refused.items():
        for method, path, body in (
                ("GET", "/api/v1/hazard", None), ("GET", f"/api/v1/hazard/{code}", None),
                ("GET", "/api/v1/me", None), ("POST", "/api/v1/logout", None),
                ("POST", "/api/v1/me/password", {"old": PASSWORD, "new": NEW_PASSWORD}),
                ("POST", f"/api/v1/hazard/{code}/events/assign",
                 {"owner": "sun.banzhang", "deadline": deadline()})):
            answer = client.request(method, path, headers=bearer(secret), json=body)
            assert answer.status_code == 401, (what, path, answer.status_code, answer.text[:200])
            assert answer.json() == {"error": "not_authenticated", "message": GENERIC}, what
            assert answer.headers["www-authenticate"] == "Bearer"
    for scheme in ("Basic abc", "Bearer", "Bearer ", "bearer\t", "Token " + refused["idle session"]):
        assert client.get("/api/v1/hazard", headers={"Authorization": scheme}).status_code == 401
    assert counts(engine) == before  # not one row anywhere, audit trail included
    with engine.connect() as conn:  # nor a session touched
        seen = conn.execute(select(LOGIN_SESSION.c.last_seen_at).where(
            LOGIN_SESSION.c.digest == sessions.digest(refused["idle session"]))).scalar()
        conn.rollback()
    assert utcnow() - (seen if seen.tzinfo else seen.replace(tzinfo=utcnow().tzinfo)) > timedelta(minutes=30)


@pytest.mark.parametrize("kind", ["token", "session"])
def test_an_event_through_the_api_records_channel_and_credential(client: TestClient, engine: Engine,
                                                                 kind: str) -> None:
    code = report(client)["code"]
    if kind == "token":
        headers = auth("li.anquan")
    else:
        set_password(engine, "li.anquan")
        headers = bearer(login(client, "li.anquan")["token"])
    credential = client.get("/api/v1/me", headers=headers).json()["credential"]
    assert credential.startswith(f"{kind}:")
    fired = client.post(f"/api/v1/hazard/{code}/events/assign", headers=headers,
                        json={"owner": "sun.banzhang", "deadline": deadline()})
    assert fired.status_code == 200, fired.text
    with engine.connect() as conn:
        row = conn.execute(select(AUDIT_ENTRY).where(AUDIT_ENTRY.c.entity_code == code,
                                                     AUDIT_ENTRY.c.event == "assign")).mappings().one()
        conn.rollback()
    assert (row["actor"], row["channel"], row["credential"]) == ("li.anquan", "api", credential)


def test_no_secret_or_password_in_any_log_record_or_the_trail(client: TestClient, engine: Engine,
                                                              tokens: dict[str, str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    set_password(engine, "li.anquan")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)  # statements and parameters too
    try:
        opened = login(client, "li.anquan")
        client.post("/api/v1/login", json={"person": "li.anquan", "password": "wrong-password-1"})
        headers = bearer(opened["token"])
        code = report(client)["code"]
        client.get(f"/api/v1/hazard/{code}", headers=headers)
        client.post(f"/api/v1/hazard/{code}/events/assign", headers=headers,
                    json={"owner": "sun.banzhang", "deadline": deadline()})
        client.get("/api/v1/hazard", headers={"Authorization": f"Bearer {opened['token']}x"})
        assert client.post("/api/v1/me/password", headers=headers,
                           json={"old": PASSWORD, "new": NEW_PASSWORD}).status_code == 204
        client.post("/api/v1/logout", headers=headers)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    secrets = [opened["token"], PASSWORD, NEW_PASSWORD, "wrong-password-1", *tokens.values()]
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # the capture worked
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    assert len(text) > 1000
    for secret in secrets:
        assert secret not in text
    with engine.connect() as conn:
        trail = [dict(r) for r in conn.execute(select(AUDIT_ENTRY)).mappings()]
        stored = [dict(r) for r in conn.execute(select(LOGIN_SESSION)).mappings()]
        conn.rollback()
    dumped = json.dumps(trail + stored, default=str, ensure_ascii=False)
    for secret in secrets:
        assert secret not in dumped
    assert sessions.digest(opened["token"]) in dumped  # the session row keeps the hash only


def test_log_filter_masks_any_secret_that_would_reach_a_log_line() -> None:
    token, session_secret = "sl_" + "a1B2" * 10 + "xyz", "ss_" + "Q-_9" * 10 + "abc"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               "%s %s Authorization: Bearer %s password=%s next=%s", (
                                   "GET", f"/x?token={token}", session_secret, "hunter2-long", token), None)
    assert RedactSecrets().filter(record) is True
    text = record.getMessage()
    assert token not in text and session_secret not in text and "hunter2-long" not in text
    assert text == ("GET /x?token=*** Authorization: Bearer *** password=*** next=***")
