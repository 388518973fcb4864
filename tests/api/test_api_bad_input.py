"""Bad input through the API, with real tokens: the documented status and NOTHING written.

Every case counts the rows of every table (``realauth.written``) and sums every entity's version
before and after, and the evidence store's incoming folder must be empty after: wrong types,
unknown and missing fields (422 naming the field), bodies over ``api_max_body_bytes`` (413, a
declared length or a chunked stream), 100 KB strings (422), a stale If-Match (409), an event the
workflow does not have and a code that does not exist (404), hostile evidence file names (kept as
a display name only, the file stored by its hash inside the store) and types by content (an .exe
named .jpg, a plain zip, a GBK text file: 415). Markup in a text field is stored as text and
comes back as JSON data, never as markup the answer's type would let a browser run.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.tables import ENTITY_TABLES, EVIDENCE
from safeloop.api.routes.evidence import safe_name
from states.registry import WORKFLOWS
from tests.api.realauth import BODY_CAP, Tokens, api_settings, real_app, written
from tests.api.samples import body_for

API = "/api/v1"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 300
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 300
MARKUP = "<script>alert('x')</script><img src=x onerror=alert(1)>\"引号\" \\ &amp; {{7*7}}"


@pytest.fixture
def api(org: Session, engine: Engine, db_url: str,
        tmp_path: Path) -> Iterator[tuple[TestClient, Tokens, Path]]:
    tokens = Tokens(engine)
    for person in ("sun.banzhang", "li.anquan", "qian.jianguan", "he.shenji"):
        tokens.secret(person)
    org.rollback()
    settings = api_settings(db_url, tmp_path)
    with TestClient(real_app(settings, engine)) as client:
        yield client, tokens, settings.storage_dir


def _state(engine: Engine) -> tuple[dict[str, int], int]:
    with engine.connect() as conn:
        counts = written(conn)
        versions = sum(int(conn.execute(select(func.coalesce(func.sum(t.c.version), 0))).scalar_one())
                       for t in ENTITY_TABLES.values())
        conn.rollback()
    return counts, versions


@contextmanager
def nothing_written(engine: Engine, storage: Path) -> Iterator[None]:
    before = _state(engine)
    yield
    assert _state(engine) == before
    incoming = storage / "evidence" / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []


def _hazard(client: TestClient, tokens: Tokens, **extra: Any) -> dict[str, Any]:
    body = {"unit": "jinhua-team-a", "title": "压力表失效", "category": "thing", "grade": "general", **extra}
    made = client.post(f"{API}/hazard", json=body, headers=tokens.headers("sun.banzhang"))
    assert made.status_code == 201, made.text
    return made.json()


def _deadline() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).isoformat()


def test_wrong_unknown_missing_fields_are_422_naming_the_field(
        api: tuple[TestClient, Tokens, Path], engine: Engine) -> None:
    client, tokens, storage = api
    code = _hazard(client, tokens)["code"]
    officer = tokens.headers("li.anquan")
    cases: list[tuple[str, Any, str]] = [
        # create routes: every workflow that has one, each field of its body wrong in turn
        (f"{API}/hazard", {"unit": "jinhua-team-a", "title": 42, "category": "thing", "grade": "general"},
         "title"),
        (f"{API}/hazard", {"unit": "jinhua-team-a", "title": "x", "category": "thing", "grade": "huge"},
         "grade"),
        (f"{API}/hazard", {"unit": "jinhua-team-a", "title": "x", "category": "thing", "grade": "general",
                           "state": "closed"}, "state"),
        (f"{API}/hazard", {"unit": "jinhua-team-a", "category": "thing", "grade": "general"}, "title"),
        (f"{API}/hazard", {"unit": ["jinhua-team-a"], "title": "x", "category": "thing", "grade": "general"},
         "unit"),
        (f"{API}/hazard/{code}/events/assign", {"owner": "sun.banzhang", "deadline": "下周"}, "deadline"),
        (f"{API}/hazard/{code}/events/assign", {"owner": 7, "deadline": _deadline()}, "owner"),
        (f"{API}/hazard/{code}/events/assign", {"owner": "sun.banzhang", "deadline": _deadline(),
                                                "version": 99}, "version"),
        (f"{API}/hazard/{code}/events/assign", {"owner": "sun.banzhang"}, "deadline"),
        (f"{API}/hazard/{code}/events/assign", {"owner": "sun.banzhang", "deadline": _deadline(),
                                                "role": "regulator"}, "role"),
        (f"{API}/hazard/{code}/events/assign", [1, 2, 3], "body"),
    ]
    for name, workflow in WORKFLOWS.items():
        if workflow.materialized:
            continue
        body = body_for(workflow, workflow.create_event)
        cases.append((f"{API}/{name}", {**body, "colour": "red"}, "colour"))
        first = next(iter(k for k in body if k != "comment"))
        cases.append((f"{API}/{name}", {k: v for k, v in body.items() if k != first}, first))
    with nothing_written(engine, storage):
        for path, body, field in cases:
            answer = client.post(path, json=body, headers=officer)
            assert answer.status_code == 422, (path, body, answer.text)
            shape = answer.json()
            assert shape["error"] == "invalid_input" and shape["field"].split(".")[0] == field, (path, shape)
        not_json = client.post(f"{API}/hazard", content=b"{not json", headers={
            **officer, "Content-Type": "application/json"})
        assert not_json.status_code == 422 and not_json.json()["error"] == "invalid_input"
        for params, field in (({"limit": "many"}, "limit"), ({"limit": 0}, "limit"),
                              ({"overdue": "maybe"}, "overdue"), ({"sort": "title"}, "sort"),
                              ({"text": "x" * 201}, "text")):
            listed = client.get(f"{API}/hazard", params=params, headers=officer)
            assert listed.status_code == 422 and listed.json()["field"] == field, (params, listed.text)


def test_huge_bodies_and_long_strings(api: tuple[TestClient, Tokens, Path], engine: Engine) -> None:
    client, tokens, storage = api
    code = _hazard(client, tokens)["code"]
    headers = tokens.headers("sun.banzhang", **{"Content-Type": "application/json"})
    long = "长" * (100 * 1024 // 3 + 1)  # 100 KB of UTF-8 in one field, under the body cap
    with nothing_written(engine, storage):
        huge = json.dumps({"unit": "jinhua-team-a", "title": "x" * (BODY_CAP + 1), "category": "thing",
                           "grade": "general"}).encode()
        declared = client.post(f"{API}/hazard", content=huge, headers=headers)
        assert declared.status_code == 413 and declared.json()["error"] == "payload_too_large"
        streamed = client.post(f"{API}/hazard", content=_chunks(huge), headers=headers)
        assert streamed.status_code == 413  # refused while it is read
        for path, body, field in (
                (f"{API}/hazard", {"unit": "jinhua-team-a", "title": long, "category": "thing",
                                   "grade": "general"}, "title"),
                (f"{API}/hazard/{code}/events/cancel", {"comment": long}, "comment"),
                (f"{API}/hazard/{code}/events/fix_on_spot",
                 {"evidence": [{"sha256": "a" * 64, "name": long, "size": 10}]}, "evidence")):
            assert len(json.dumps(body, ensure_ascii=False).encode()) < BODY_CAP
            answer = client.post(path, json=body, headers=tokens.headers("li.anquan"))
            assert answer.status_code == 422, (path, answer.text[:300])
            assert answer.json()["field"].split(".")[0] == field
            assert len(answer.content) < 8 * 1024  # the refusal does not echo the 100 KB back


def _chunks(data: bytes) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked): the cap is met while it is read."""
    for start in range(0, len(data), 16 * 1024):
        yield data[start:start + 16 * 1024]


def test_chunked_body_over_the_cap_is_413(api: tuple[TestClient, Tokens, Path], engine: Engine) -> None:
    client, tokens, storage = api
    huge = b'{"title": "' + b"x" * (BODY_CAP + 1) + b'"}'
    with nothing_written(engine, storage):
        streamed = client.post(f"{API}/hazard", content=_chunks(huge), headers=tokens.headers(
            "sun.banzhang", **{"Content-Type": "application/json"}))
    assert streamed.status_code == 413 and streamed.json()["error"] == "payload_too_large", streamed.text


def test_markup_is_stored_as_text_and_returned_as_json(api: tuple[TestClient, Tokens, Path]) -> None:
    client, tokens, _ = api
    made = _hazard(client, tokens, title=MARKUP, location="</td><b>罐区</b>")
    shown = client.get(f"{API}/hazard/{made['code']}", headers=tokens.headers("li.anquan"))
    assert shown.status_code == 200
    assert shown.headers["content-type"].startswith("application/json")
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in shown.headers["content-security-policy"]
    entity = shown.json()["entity"]
    assert entity["title"] == MARKUP and entity["location"] == "</td><b>罐区</b>"
    raw = shown.content.decode("utf-8")
    assert '\\"引号\\"' in raw and "\\\\ &amp;" in raw  # quotes and backslashes escaped as JSON
    found = client.get(f"{API}/hazard", params={"text": "<script>"}, headers=tokens.headers("li.anquan"))
    assert [i["code"] for i in found.json()["items"]] == [made["code"]]
    assert client.get(f"{API}/hazard", params={"text": "%"}, headers=tokens.headers("li.anquan")
                      ).json()["items"] == []  # LIKE wildcards are searched for, not expanded


def test_stale_if_match_unknown_event_missing_code(api: tuple[TestClient, Tokens, Path],
                                                   engine: Engine) -> None:
    client, tokens, storage = api
    made = _hazard(client, tokens)
    code = made["code"]
    officer = tokens.headers("li.anquan")
    assign = {"owner": "sun.banzhang", "deadline": _deadline()}
    with nothing_written(engine, storage):
        stale = client.post(f"{API}/hazard/{code}/events/assign", json=assign,
                            headers={**officer, "If-Match": '"0"'})
        assert stale.status_code == 409, stale.text
        shape = stale.json()
        assert shape["error"] == "conflict" and shape["state"] == "reported"
        assert "assign" in shape["allowed_events"]
        weak = client.post(f"{API}/hazard/{code}/events/assign", json=assign,
                           headers={**officer, "If-Match": 'W/"5"'})
        assert weak.status_code == 409
        for path, body in ((f"{API}/hazard/{code}/events/explode", {}),
                           (f"{API}/hazard/{code}/events/start", {}),  # an inspection's event
                           (f"{API}/hazard/{code}/events/", {}),
                           (f"{API}/hazard/YH-999999/events/assign", assign),
                           (f"{API}/hazard/{code}x/events/cancel", {"comment": "x"}),
                           (f"{API}/inspection/nope%2F2026-11/events/start", {}),
                           (f"{API}/nothing/{code}/events/assign", assign)):
            answer = client.post(path, json=body, headers=officer)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found", (path, answer.text)
        for path in (f"{API}/hazard/YH-999999", f"{API}/hazard/{code}%2Fx", f"{API}/inspection/a/b/c",
                     f"{API}/hazard/" + "9" * 64):
            answer = client.get(path, headers=officer)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found", (path, answer.text)
        too_long = client.get(f"{API}/hazard/" + "9" * 65, headers=officer)
        assert too_long.status_code == 422
    good = client.post(f"{API}/hazard/{code}/events/assign", json=assign,
                       headers={**officer, "If-Match": f'"{made["version"]}"'})
    assert good.status_code == 200 and good.headers["etag"] == f'"{made["version"] + 1}"'


def test_slash_codes_route_raw_and_encoded(api: tuple[TestClient, Tokens, Path], org: Session) -> None:
    """An inspection task's code holds a slash: show finds it sent raw or as %2F."""
    from safeloop import checklists, plans
    from states.jobs.materialize import materialize

    client, tokens, _ = api
    checklists.load_shipped(org)
    plans.add(org, plans.PlanSpec("bad-input-team-a", "jinhua-team-a"))
    materialize(org, as_of=datetime.now(UTC))
    table = ENTITY_TABLES["inspection"]
    code = org.connection().execute(select(table.c.code)).scalars().first()
    org.rollback()
    assert code and "/" in code
    for path in (f"{API}/inspection/{code}", f"{API}/inspection/{code.replace('/', '%2F')}"):
        shown = client.get(path, headers=tokens.headers("li.anquan"))
        assert shown.status_code == 200 and shown.json()["entity"]["code"] == code, (path, shown.text)
    started = client.post(f"{API}/inspection/{code}/events/start", headers=tokens.headers("li.anquan"))
    assert started.status_code == 200 and started.json()["to_state"] == "in_progress", started.text


def test_hostile_evidence_names_stay_inside_the_store(api: tuple[TestClient, Tokens, Path],
                                                      engine: Engine, tmp_path: Path) -> None:
    client, tokens, storage = api
    headers = tokens.headers("sun.banzhang")
    names = {"../../etc/passwd": "passwd", "/etc/shadow": "shadow", "..\\..\\win.ini": "win.ini",
             "C:\\Windows\\system32\\x.jpg": "x.jpg", "a\x00b.jpg": "a%00b.jpg", "....": "upload",
             "\x1b[31mred.jpg": "[31mred.jpg", ".hidden.jpg": "hidden.jpg", "照片/../../整改.jpg": "整改.jpg",
             "x" * 400 + ".jpg": "x" * 120}
    outside = set(tmp_path.parent.iterdir())
    for i, (given, shown) in enumerate(names.items()):
        content = JPEG + bytes([i])  # a new file each time: each is stored, none deduplicated away
        answer = client.post(f"{API}/evidence", headers=headers,
                             files={"file": (given, content, "image/jpeg")})
        assert answer.status_code == 201, (given, answer.text)
        ref = answer.json()
        assert ref["name"] == shown and ref["size"] == len(content), (given, ref)
        stored = (storage / ref["path"]).resolve()
        assert stored.is_relative_to(storage.resolve()) and stored.read_bytes() == content
        assert "/" not in ref["name"] and "\\" not in ref["name"] and "\x00" not in ref["name"]
    assert set(tmp_path.parent.iterdir()) == outside  # nothing written beside the test's folder
    # a raw NUL or path in a part's name (multipart clients percent-encode them as above)
    assert [safe_name(n) for n in ("a\x00b.jpg", "/etc/passwd\x00.jpg", "..", "x/\x00")] == [
        "ab.jpg", "passwd.jpg", "upload", "upload"]
    assert not (storage.parent / "etc").exists() and not Path("/etc/shadow.jpg").exists()
    incoming = storage / "evidence" / "incoming"
    assert list(incoming.iterdir()) == []


def test_evidence_types_by_content(api: tuple[TestClient, Tokens, Path], engine: Engine) -> None:
    client, tokens, storage = api
    headers = tokens.headers("sun.banzhang")
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("a.txt", "not office")
    fake_docx = io.BytesIO()
    with zipfile.ZipFile(fake_docx, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("payload.exe", EXE)
    gbk = "整改报告：已更换压力表，现场复查合格。".encode("gbk")
    with nothing_written(engine, storage):
        with engine.connect() as conn:
            before = conn.execute(select(func.count()).select_from(EVIDENCE)).scalar()
            conn.rollback()
        for name, content, declared in (
                ("photo.jpg", EXE, "image/jpeg"), ("a.docx", plain_zip.getvalue(), None),
                ("b.docx", fake_docx.getvalue(), None), ("整改.txt", gbk, "text/plain"),
                ("report.pdf", b"<html><script>1</script></html>", "application/pdf"),
                ("broken.zip", b"PK\x03\x04" + b"\x00" * 40, "application/zip")):
            files = {"file": (name, content, declared) if declared else (name, content)}
            answer = client.post(f"{API}/evidence", headers=headers, files=files)
            assert answer.status_code == 415, (name, answer.text)
            assert answer.json()["error"] == "unsupported_media_type" and answer.json()["field"] == "file"
        empty = client.post(f"{API}/evidence", headers=headers, files={"file": ("a.jpg", b"")})
        assert empty.status_code == 422 and empty.json()["field"] == "file"
        missing = client.post(f"{API}/evidence", headers=headers, data={"other": "x"})
        assert missing.status_code == 422 and missing.json()["field"] == "file"
        too_big = client.post(f"{API}/evidence", headers=headers,
                              files={"file": ("big.jpg", JPEG + b"\x00" * (128 * 1024), "image/jpeg")})
        assert too_big.status_code == 413
        auditor = client.post(f"{API}/evidence", headers=tokens.headers("he.shenji"),
                              files={"file": ("a.jpg", JPEG)})
        assert auditor.status_code == 403
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(EVIDENCE)).scalar() == before
            conn.rollback()
