"""The pages through httpx on a real database: login, CSRF, logout, expiry, the one-time password
gate, the inbox, the entity page's scope and its event forms -- and nothing written by a refusal."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from models.db import utcnow
from models.tables import HAZARD, LOGIN_SESSION
from safeloop.web import auth, is_page
from safeloop.web.pages import CSRF_REFUSED, STALE
from tests.web.conftest import (
    VERSION,
    counts,
    csrf_of,
    fire,
    in_a_week,
    login,
    report,
    set_password,
    signed_in,
)


def state_of(engine: Engine, code: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(HAZARD.c.state).where(HAZARD.c.code == code)).scalar())


def test_every_page_but_login_and_static_needs_a_session(app: FastAPI, client: TestClient) -> None:
    pages = [r for r in app.routes if is_page(r)]
    assert {r.path for r in pages} >= {"/login", "/logout", "/password", "/", "/hazard/{code}",
                                       "/hazard/{code}/events/{event}", "/static"}
    for route in pages:
        if route.path in {"/login", "/static"}:
            continue
        path = route.path.replace("{code}", "YH-000001").replace("{event}", "assign")
        for method in route.methods:
            answer = client.request(method, path)
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/login"), (method, path)


def test_login_sets_an_httponly_cookie_and_opens_the_inbox(client: TestClient, engine: Engine) -> None:
    assert client.get("/").headers["location"] == "/login?next=/"
    set_password(engine, "li.anquan")
    answer = login(client, "li.anquan")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert f"{auth.COOKIE}=ss_" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # not configured: the demo runs on http://127.0.0.1
    inbox = client.get("/")
    assert inbox.status_code == 200 and "我的待办" in inbox.text and "李安全" in inbox.text
    assert inbox.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in inbox.headers["content-security-policy"]
    with engine.connect() as conn:
        channel = conn.execute(select(LOGIN_SESSION.c.channel)).scalar()
    assert channel == "web"


def test_secure_cookie_when_configured(client: TestClient, app: FastAPI, engine: Engine) -> None:
    app.state.settings = app.state.settings.model_copy(update={"web_cookie_secure": True})
    set_password(engine, "li.anquan")
    assert "Secure" in login(client, "li.anquan").headers["set-cookie"]


def test_wrong_password_then_locked_with_the_zh_message(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan")
    for _ in range(5):
        answer = login(client, "li.anquan", "wrong-password-1")
        assert answer.status_code == 401 and "未登录或凭据无效" in answer.text
        assert auth.COOKIE not in answer.cookies
    locked = login(client, "li.anquan")  # even the right password while locked
    assert locked.status_code == 429 and "账号已临时锁定" in locked.text
    assert auth.COOKIE not in client.cookies


def test_login_without_its_csrf_token_is_refused(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan")
    before = counts(engine)
    client.get("/login")
    answer = client.post("/login", data={"person": "li.anquan", "password": "correct-horse-7"})
    assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    assert counts(engine) == before  # no session, no audit row


def test_forms_without_csrf_are_refused_and_write_nothing(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    signed_in(client, engine, "li.anquan")
    before = counts(engine)
    fields = {"version": "1", "owner": "sun.banzhang", "deadline": in_a_week()}
    for data in (fields, {**fields, "csrf": "0" * 64}):
        answer = client.post(f"/hazard/{code}/events/assign", data=data)
        assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    assert client.post("/logout", data={}).status_code == 403
    assert counts(engine) == before and state_of(engine, code) == "reported"
    assert client.get("/").status_code == 200  # the session lives on


def test_logout_ends_the_session_for_the_old_cookie(client: TestClient, engine: Engine) -> None:
    secret = signed_in(client, engine, "li.anquan")
    csrf = csrf_of(client.get("/").text)
    answer = client.post("/logout", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert f'{auth.COOKIE}=""' in answer.headers["set-cookie"] or "Max-Age=0" in answer.headers["set-cookie"]
    client.cookies.set(auth.COOKIE, secret)  # someone kept the old cookie
    assert client.get("/").headers["location"].startswith("/login")


def test_an_idle_session_expires(client: TestClient, engine: Engine, app: FastAPI) -> None:
    signed_in(client, engine, "li.anquan")
    idle = app.state.settings.session_idle_s
    with engine.begin() as conn:
        conn.execute(update(LOGIN_SESSION).values(last_seen_at=utcnow() - timedelta(seconds=idle + 5)))
    answer = client.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_a_one_time_password_must_be_changed_first(client: TestClient, engine: Engine) -> None:
    set_password(engine, "li.anquan", "one-time-pass-9", must_change=True)
    answer = login(client, "li.anquan", "one-time-pass-9")
    assert answer.status_code == 303 and answer.headers["location"] == "/password"
    assert client.get("/").headers["location"] == "/password"
    form = client.get("/password")
    assert form.status_code == 200 and "一次性密码" in form.text
    csrf = csrf_of(form.text)
    bad = client.post("/password", data={"csrf": csrf, "old": "one-time-pass-9", "new": "battery-staple-42",
                                         "again": "battery-staple-43"})
    assert bad.status_code == 422 and "两次输入的新密码不一致" in bad.text
    done = client.post("/password", data={"csrf": csrf, "old": "one-time-pass-9", "new": "battery-staple-42",
                                          "again": "battery-staple-42"})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert client.get("/").status_code == 200


def test_inbox_lists_what_the_person_can_act_on(client: TestClient, engine: Engine) -> None:
    late = report(engine, title="逾期隐患")
    fire(engine, late, "assign", "li.anquan", owner="sun.banzhang",
         deadline=(utcnow() + timedelta(days=3)).isoformat())
    with engine.begin() as conn:  # made overdue as the sweep would find it
        conn.execute(update(HAZARD).where(HAZARD.c.code == late)
                     .values(deadline=utcnow() - timedelta(days=1)))
    fresh = report(engine, title="新报隐患")
    signed_in(client, engine, "sun.banzhang")  # the owner; as inspector he may also fix the fresh one
    page = client.get("/").text
    assert late in page and fresh in page and page.index(late) < page.index(fresh)  # overdue first
    assert "已逾期" in page and '<span class="badge late">逾期</span>' in page
    assert "共 <strong>2</strong> 项" in page and "已逾期 <strong>1</strong> 项" in page
    client.cookies.clear()
    signed_in(client, engine, "chen.anyuan")  # another enterprise: nothing of these
    page = client.get("/").text
    assert late not in page and fresh not in page and "暂无待办事项" in page
    client.cookies.clear()
    signed_in(client, engine, "he.shenji")  # an auditor only looks
    assert "只读" in client.get("/").text


def test_due_today_badge(client: TestClient, engine: Engine, app: FastAPI) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    code = report(engine)
    zone = ZoneInfo(app.state.settings.timezone)
    end_of_today = datetime.now(zone).replace(hour=23, minute=59, second=0, microsecond=0)
    fire(engine, code, "assign", "li.anquan", owner="sun.banzhang", deadline=end_of_today.isoformat())
    signed_in(client, engine, "sun.banzhang")
    page = client.get("/").text
    assert "今日到期 1" in page and '<span class="badge today">今日到期</span>' in page


def test_out_of_scope_is_not_found(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    signed_in(client, engine, "chen.anyuan")  # another enterprise's safety officer
    answer = client.get(f"/hazard/{code}")
    assert answer.status_code == 404 and "不存在" in answer.text and "压力表失效" not in answer.text
    csrf = csrf_of(client.get("/").text)
    before = counts(engine)
    posted = client.post(f"/hazard/{code}/events/assign", data={
        "csrf": csrf, "version": "1", "owner": "sun.banzhang", "deadline": in_a_week()})
    assert posted.status_code == 404 and counts(engine) == before


def test_assign_through_the_form_shows_state_and_timeline(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    signed_in(client, engine, "li.anquan")
    page = client.get(f"/hazard/{code}").text
    assert f'action="/hazard/{code}/events/assign"' in page and "整改责任人编号" in page
    answer = client.post(f"/hazard/{code}/events/assign", data={
        "csrf": csrf_of(page), "version": VERSION.search(page).group(1), "owner": "sun.banzhang",
        "deadline": in_a_week(), "comment": ""})
    assert answer.status_code == 303 and answer.headers["location"] == f"/hazard/{code}"
    shown = client.get(f"/hazard/{code}").text
    assert state_of(engine, code) == "rectifying" and "整改中" in shown
    assert "分派整改" in shown and "李安全（安全管理员） · 网页" in shown


def test_stale_page_gets_the_409_message_and_a_reload_link(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    signed_in(client, engine, "li.anquan")
    page = client.get(f"/hazard/{code}").text
    fire(engine, code, "regrade", "li.anquan", comment="复核", grade="major")  # changed meanwhile
    before = counts(engine)
    answer = client.post(f"/hazard/{code}/events/assign", data={
        "csrf": csrf_of(page), "version": "1", "owner": "sun.banzhang", "deadline": in_a_week()})
    assert answer.status_code == 409 and "重新加载" in answer.text
    assert f'href="/hazard/{code}"' in answer.text
    assert counts(engine) == before
    assert STALE  # the page's own wording stays available for other stale checks


def test_a_refusal_shows_the_engine_message_inline(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    signed_in(client, engine, "li.anquan")
    page = client.get(f"/hazard/{code}").text
    before = counts(engine)
    answer = client.post(f"/hazard/{code}/events/assign", data={
        "csrf": csrf_of(page), "version": "1", "owner": "sun.banzhang", "deadline": "2020-01-01T08:00"})
    assert answer.status_code == 403 and 'role="alert"' in answer.text
    assert counts(engine) == before and state_of(engine, code) == "reported"
    missing = client.post(f"/hazard/{code}/events/assign", data={"csrf": csrf_of(page), "version": "1"})
    assert missing.status_code == 422 and "owner" in missing.text


def test_a_rectifier_forging_accept_is_refused(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    fire(engine, code, "assign", "li.anquan", owner="sun.banzhang",
         deadline=(utcnow() + timedelta(days=7)).isoformat())
    fire(engine, code, "submit", "sun.banzhang", measures="已更换压力表")
    signed_in(client, engine, "sun.banzhang")
    page = client.get(f"/hazard/{code}").text
    assert "events/accept" not in page  # no accept button for the rectifier
    before = counts(engine)
    answer = client.post(f"/hazard/{code}/events/accept", data={
        "csrf": csrf_of(page), "version": VERSION.search(page).group(1) if VERSION.search(page) else "3"})
    assert answer.status_code == 403 and 'role="alert"' in answer.text
    assert counts(engine) == before and state_of(engine, code) == "pending_acceptance"


def test_static_files_are_vendored(client: TestClient) -> None:
    htmx = client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and htmx.text.startswith("var htmx=")
    page = client.get("/login").text
    assert 'src="/static/htmx.min.js"' in page and "http" not in page.split("<body")[0].replace(
        "http-equiv", "")
