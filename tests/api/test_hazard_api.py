"""Hazards through the API end to end: create, list, show, fire, ETag/If-Match, errors, times."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.tables import AUDIT_ENTRY, HAZARD
from states.audit import verify
from states.jobs.replay import replay
from tests.api.conftest import auth

OFFSET = re.compile(r"T\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def report(client: TestClient, who: str = "sun.banzhang", **extra: Any) -> dict[str, Any]:
    body = {"unit": "jinhua-team-a", "title": "压力表失效", "category": "thing", "grade": "general", **extra}
    answer = client.post("/api/v1/hazard", json=body, headers=auth(who))
    assert answer.status_code == 201, answer.text
    return answer.json()


def deadline() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).isoformat()


def test_create_list_show_fire(client: TestClient) -> None:
    made = report(client)
    code = made["code"]
    assert made["to_state"] == "reported" and made["version"] == 1
    listed = client.get("/api/v1/hazard", headers=auth("li.anquan")).json()
    assert [i["code"] for i in listed["items"]] == [code]
    shown = client.get(f"/api/v1/hazard/{code}", headers=auth("li.anquan"))
    assert shown.status_code == 200 and shown.headers["etag"] == '"1"'
    detail = shown.json()
    assert "assign" in [e["event"] for e in detail["allowed_events"]]
    assert [t["event"] for t in detail["timeline"]] == ["report"]
    fired = client.post(f"/api/v1/hazard/{code}/events/assign", headers={
        **auth("li.anquan"), "If-Match": '"1"'}, json={"owner": "sun.banzhang", "deadline": deadline()})
    assert fired.status_code == 200, fired.text
    assert fired.json()["to_state"] == "rectifying" and fired.headers["etag"] == '"2"'
    detail = client.get(f"/api/v1/hazard/{code}", headers=auth("sun.banzhang")).json()
    assert [t["event"] for t in detail["timeline"]] == ["report", "assign"]
    assert detail["timeline"][1]["channel"] == "api"
    assert [e["event"] for e in detail["allowed_events"]] == ["submit", "fix_on_spot"] or \
        "submit" in [e["event"] for e in detail["allowed_events"]]


def test_times_carry_offsets(client: TestClient) -> None:
    code = report(client)["code"]
    detail = client.get(f"/api/v1/hazard/{code}", headers=auth("li.anquan")).json()
    for key in ("created_at", "updated_at", "found_at"):
        assert OFFSET.search(detail["entity"][key]), (key, detail["entity"][key])
    for event in detail["timeline"]:
        assert OFFSET.search(event["at"]) and OFFSET.search(event["recorded_at"])
        assert not event["at"].endswith("Z")


def test_filters_and_cursor_pages(client: TestClient) -> None:
    codes = [report(client, title=f"隐患{i}")["code"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/hazard", params=params, headers=auth("li.anquan")).json()
        seen += [i["code"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(codes))
    by_text = client.get("/api/v1/hazard", params={"text": "隐患3"}, headers=auth("li.anquan")).json()
    assert [i["code"] for i in by_text["items"]] == [codes[3]]
    assert client.get("/api/v1/hazard", params={"state": "closed"},
                      headers=auth("li.anquan")).json()["items"] == []
    assert len(client.get("/api/v1/hazard", params={"unit": "jinhua-plant1"},
                          headers=auth("li.anquan")).json()["items"]) == 5  # the unit's subtree
    assert client.get("/api/v1/hazard", params={"enterprise": "xinfeng"},
                      headers=auth("li.anquan")).json()["items"] == []
    assert client.get("/api/v1/hazard", params={"overdue": True},
                      headers=auth("li.anquan")).json()["items"] == []
    asc = client.get("/api/v1/hazard", params={"sort": "created_at", "limit": 50},
                     headers=auth("li.anquan")).json()
    assert [i["code"] for i in asc["items"]] == codes


def test_stale_if_match_is_409_and_changes_nothing(client: TestClient, engine) -> None:
    code = report(client)["code"]
    stale = client.post(f"/api/v1/hazard/{code}/events/cancel", json={"comment": "重复上报"},
                        headers={**auth("li.anquan"), "If-Match": '"7"'})
    assert stale.status_code == 409
    body = stale.json()
    assert body["error"] == "conflict" and body["state"] == "reported"
    assert "assign" in body["allowed_events"]
    with engine.connect() as conn:
        assert conn.execute(select(HAZARD.c.version).where(HAZARD.c.code == code)).scalar() == 1


def test_two_clients_on_one_version_exactly_one_wins(client: TestClient, engine) -> None:
    code = report(client)["code"]
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def fire(who: str) -> None:
        barrier.wait()
        answer = client.post(f"/api/v1/hazard/{code}/events/assign", headers={
            **auth(who), "If-Match": '"1"'}, json={"owner": "sun.banzhang", "deadline": deadline()})
        answers.append(answer.status_code)

    threads = [threading.Thread(target=fire, args=(w,)) for w in ("li.anquan", "wang.zhuren")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409]
    with engine.connect() as conn:
        assert verify(conn).ok
        conn.rollback()
        assert replay(conn).ok
        assert conn.execute(select(func.count()).select_from(AUDIT_ENTRY).where(
            AUDIT_ENTRY.c.entity_code == code)).scalar() == 2


def test_error_shapes(client: TestClient, engine) -> None:
    code = report(client)["code"]
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(AUDIT_ENTRY)).scalar()
        conn.rollback()
    # 401: no token, a wrong scheme, an unknown token
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        answer = client.get("/api/v1/hazard", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"] == "not_authenticated"
    # 404: another enterprise's person does not learn that the hazard exists
    hidden = client.post(f"/api/v1/hazard/{code}/events/assign", headers=auth("feng.hanjie"),
                         json={"owner": "sun.banzhang", "deadline": deadline()})
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    assert "state" not in hidden.json() and "allowed_events" not in hidden.json()
    assert hidden.json()["message"] == client.get("/api/v1/hazard/YH-999999", headers=auth(
        "feng.hanjie")).json()["message"].replace("YH-999999", code)
    # 403: a role that may not (a rectifier who sees it); a state that does not allow it; a rule
    denied = client.post(f"/api/v1/hazard/{code}/events/assign", headers=auth("zhou.weixiu"),
                         json={"owner": "sun.banzhang", "deadline": deadline()})
    assert denied.status_code == 403
    assert denied.json()["error"] == "permission_denied" and denied.json()["state"] == "reported"
    may = [e["event"] for e in client.get(f"/api/v1/hazard/{code}",
                                            headers=auth("zhou.weixiu")).json()["allowed_events"]]
    assert denied.json()["allowed_events"] == may == ["fix_on_spot"]  # what this caller may do
    wrong_state = client.post(f"/api/v1/hazard/{code}/events/accept", headers=auth("li.anquan"))
    assert wrong_state.status_code == 403
    shape = wrong_state.json()
    assert shape["error"] == "transition_not_allowed" and shape["state"] == "reported"
    assert "assign" in shape["allowed_events"] and "当前状态" in shape["message"]
    major = report(client, grade="major")["code"]
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    guard = client.post(f"/api/v1/hazard/{major}/events/assign", headers=auth("li.anquan"),
                        json={"owner": "sun.banzhang", "deadline": past})
    assert guard.status_code == 403 and guard.json()["error"] == "guard_failed"
    # 404: unknown code, with the same shape
    missing = client.get("/api/v1/hazard/YH-999999", headers=auth("li.anquan"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.post("/api/v1/hazard/YH-999999/events/accept",
                       headers=auth("li.anquan")).status_code == 404
    # 422: wrong type, unknown field, missing field, a reason the rule requires -- naming the field
    for body, field in (({"owner": "sun.banzhang", "deadline": "明天"}, "deadline"),
                        ({"owner": "sun.banzhang", "deadline": deadline(), "colour": 1}, "colour"),
                        ({"deadline": deadline()}, "owner")):
        bad = client.post(f"/api/v1/hazard/{code}/events/assign", headers=auth("li.anquan"),
                          json=body)
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"] == "invalid_input" and bad.json()["field"] == field
    no_reason = client.post(f"/api/v1/hazard/{code}/events/cancel", headers=auth("li.anquan"))
    assert no_reason.status_code == 422 and "原因" in no_reason.json()["message"]
    bad_match = client.post(f"/api/v1/hazard/{code}/events/cancel", json={"comment": "x"},
                            headers={**auth("li.anquan"), "If-Match": "abc"})
    assert bad_match.status_code == 422 and bad_match.json()["field"] == "If-Match"
    huge = client.post("/api/v1/hazard", headers={**auth("sun.banzhang"),
                                                  "Content-Type": "application/json"},
                       content=b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    with engine.connect() as conn:  # nothing any refusal above wrote
        assert conn.execute(select(func.count()).select_from(AUDIT_ENTRY)).scalar() == before + 1


def test_auditor_is_read_only(client: TestClient) -> None:
    code = report(client)["code"]
    answer = client.post(f"/api/v1/hazard/{code}/events/cancel", json={"comment": "x"},
                         headers=auth("he.shenji"))
    assert answer.status_code == 403 and answer.json()["error"] == "permission_denied"
    shown = client.get(f"/api/v1/hazard/{code}", headers=auth("he.shenji")).json()
    assert shown["allowed_events"] == []
