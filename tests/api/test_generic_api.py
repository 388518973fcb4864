"""Every workflow's list and show through the generated routes; the inbox; evidence upload;
audit endpoints; the CLI's --json times."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.tables import AUDIT_ENTRY, EVIDENCE, PERSON
from states.registry import WORKFLOWS
from tests.api.conftest import auth
from tests.api.test_hazard_api import OFFSET, report

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200


def test_every_workflow_lists_and_shows(client: TestClient) -> None:
    hazard = report(client)["code"]
    risk = client.post("/api/v1/risk", headers=auth("li.anquan"), json={
        "unit": "jinhua-ws-synth", "name": "合成反应釜", "kind": "facility",
        "hazard_factors": ["液氨泄漏"], "accident_types": ["中毒和窒息"],
        "measures": [{"kind": "engineering", "text": "氨气泄漏报警仪完好"}]})
    assert risk.status_code == 201, risk.text
    order = client.post("/api/v1/suspension", headers=auth("qian.jianguan"), json={
        "unit": "jinhua-plant1", "reason": "重大隐患未整改", "scope": "partial"})
    assert order.status_code == 201, order.text
    made = {"hazard": hazard, "risk": risk.json()["code"], "suspension": order.json()["code"]}
    for name in WORKFLOWS:
        listed = client.get(f"/api/v1/{name}", headers=auth("wang.zhuren"))
        assert listed.status_code == 200, (name, listed.text)
        codes = [i["code"] for i in listed.json()["items"]]
        assert codes == ([made[name]] if name in made else []), name
        missing = client.get(f"/api/v1/{name}/NOPE-1", headers=auth("wang.zhuren"))
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        if name in made:
            shown = client.get(f"/api/v1/{name}/{made[name]}", headers=auth("wang.zhuren"))
            assert shown.status_code == 200 and shown.headers["etag"] == '"1"'
            assert OFFSET.search(shown.json()["entity"]["created_at"])
        bad_state = client.get(f"/api/v1/{name}", params={"state": "nope"}, headers=auth("wang.zhuren"))
        assert bad_state.status_code == 422 and bad_state.json()["field"] == "state"
        bad_cursor = client.get(f"/api/v1/{name}", params={"cursor": "@@"}, headers=auth("wang.zhuren"))
        assert bad_cursor.status_code == 422 and bad_cursor.json()["field"] == "cursor"


def test_inbox_lists_what_the_caller_may_act_on(client: TestClient, engine) -> None:
    first = report(client)["code"]
    second = report(client)["code"]
    deadline = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    client.post(f"/api/v1/hazard/{second}/events/assign", headers=auth("li.anquan"),
                json={"owner": "sun.banzhang", "deadline": deadline})
    officer = client.get("/api/v1/inbox", headers=auth("li.anquan")).json()
    assert [i["code"] for i in officer["items"]][:2] == [second, first]  # dated first
    assert officer["counts"]["hazard"]["total"] == 2 and officer["items"][0]["overdue"] is False
    assert OFFSET.search(officer["items"][0]["due"])
    other = client.get("/api/v1/inbox", headers=auth("feng.hanjie")).json()
    assert other["items"] == [] and other["total"] == 0
    auditor = client.get("/api/v1/inbox", headers=auth("he.shenji")).json()
    assert auditor["total"] == 0
    # the same answer as the engine's, entity by entity, for every person of the demo org
    with engine.connect() as conn:
        people = list(conn.execute(select(PERSON.c.key)).scalars())
        conn.rollback()
    for person in people:
        inbox = {i["code"] for i in client.get("/api/v1/inbox", headers=auth(person)).json()["items"]}
        shown = {code: client.get(f"/api/v1/hazard/{code}", headers=auth(person)) for code in (first, second)}
        assert {a.status_code for a in shown.values()} <= {200, 404}, person
        may = {code for code, a in shown.items() if a.status_code == 200 and a.json()["allowed_events"]}
        assert inbox == may, person


def test_evidence_upload_by_content(client: TestClient, api_settings, engine) -> None:
    storage: Path = api_settings.storage_dir
    hostile = client.post("/api/v1/evidence", headers=auth("sun.banzhang"),
                          files={"file": ("../../etc/passwd", JPEG, "text/plain")})
    assert hostile.status_code == 201, hostile.text
    ref = hostile.json()
    assert ref["name"] == "passwd" and ref["media_type"] == "image/jpeg" and ref["size"] == len(JPEG)
    stored = storage / ref["path"]
    assert stored.resolve().is_relative_to(storage.resolve()) and stored.read_bytes() == JPEG
    assert not (storage.parent / "etc").exists()
    assert list((storage / "evidence" / "incoming").iterdir()) == []
    code = report(client)["code"]
    fixed = client.post(f"/api/v1/hazard/{code}/events/fix_on_spot", headers=auth("sun.banzhang"),
                        json={"evidence": [{k: ref[k] for k in ("sha256", "name", "size")}]})
    assert fixed.status_code == 200, fixed.text
    shown = client.get(f"/api/v1/hazard/{code}", headers=auth("li.anquan")).json()
    assert shown["evidence"] == [{"sha256": ref["sha256"], "name": "passwd", "size": len(JPEG)}]
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(EVIDENCE)).scalar()
        conn.rollback()
    exe = client.post("/api/v1/evidence", headers=auth("sun.banzhang"),
                      files={"file": ("photo.jpg", EXE, "image/jpeg")})
    assert exe.status_code == 415 and exe.json()["error"] == "unsupported_media_type"
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("a.txt", "not office")
    assert client.post("/api/v1/evidence", headers=auth("sun.banzhang"),
                       files={"file": ("a.docx", plain_zip.getvalue())}).status_code == 415
    huge = client.post("/api/v1/evidence", headers=auth("sun.banzhang"),
                       files={"file": ("big.jpg", JPEG + b"\x00" * 200 * 1024, "image/jpeg")})
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    assert client.post("/api/v1/evidence", files={"file": ("a.jpg", JPEG)}).status_code == 401
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EVIDENCE)).scalar() == before
    assert list((storage / "evidence" / "incoming").iterdir()) == []


def test_office_documents_are_accepted(client: TestClient) -> None:
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    answer = client.post("/api/v1/evidence", headers=auth("li.anquan"),
                         files={"file": ("整改报告.docx", docx.getvalue())})
    assert answer.status_code == 201, answer.text
    assert answer.json()["media_type"].endswith("wordprocessingml.document")
    assert answer.json()["name"] == "整改报告.docx"


def test_audit_endpoints_for_auditors(client: TestClient, engine) -> None:
    code = report(client)["code"]
    report(client), report(client)
    assert client.get("/api/v1/audit", headers=auth("li.anquan")).status_code == 403
    rows = client.get("/api/v1/audit", params={"entity": code}, headers=auth("he.shenji")).json()
    assert [r["event"] for r in rows["items"]] == ["report"]
    assert OFFSET.search(rows["items"][0]["at"])
    everything, cursor = [], None
    while True:
        page = client.get("/api/v1/audit", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=auth("he.shenji")).json()
        everything += [r["seq"] for r in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    # the auditor of the development zone sees the rows of its enterprises' entities -- here every
    # hazard row -- and not the administrative ones (the org load; the tokens, entity account)
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT_ENTRY.c.seq, AUDIT_ENTRY.c.entity_type)
                            .order_by(AUDIT_ENTRY.c.seq)).all()
        conn.rollback()
    assert everything == [seq for seq, kind in rows if kind == "hazard"] and len(everything) == 3
    assert {kind for _, kind in rows} == {"hazard", "account", "org"}
    by_person = client.get("/api/v1/audit", params={"person": "sun.banzhang"},
                           headers=auth("he.shenji")).json()
    assert {r["actor"] for r in by_person["items"]} == {"sun.banzhang"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/audit", params={"since": future},
                      headers=auth("he.shenji")).json()["items"] == []
    naive = client.get("/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=auth("he.shenji"))
    assert naive.status_code == 422 and naive.json()["field"] == "since"
    lines = client.get("/api/v1/audit/export", headers=auth("he.shenji")).text.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == everything
    csv_text = client.get("/api/v1/audit/export", params={"format": "csv"}, headers=auth("he.shenji")).text
    assert csv_text.splitlines()[0].startswith("seq,entity_type")
    assert len(csv_text.splitlines()) == len(lines) + 1
    verified = client.get("/api/v1/audit/verify", headers=auth("he.shenji")).json()
    assert verified["ok"] is True and verified["count"] == len(rows)  # the whole chain


def test_cli_json_times_carry_offsets() -> None:
    import typer
    from typer.testing import CliRunner

    from safeloop.cli.output import print_json

    app = typer.Typer()

    @app.command()
    def show() -> None:
        print_json({"naive": datetime(2026, 11, 2, 2, 0), "aware": datetime(2026, 11, 2, 10, 0,
                    tzinfo=UTC)})

    out = json.loads(CliRunner().invoke(app, []).stdout)
    assert out == {"naive": "2026-11-02T02:00:00+00:00", "aware": "2026-11-02T10:00:00+00:00"}
