"""A photo posted with a hazard event (提交验收) from the hazard page: the form posts multipart to
/events/photo, the photo is checked as on /hazard/new and goes into the event's evidence; a bad
photo is refused with nothing written."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from models.tables import AUDIT_ENTRY, HAZARD
from tests.web.conftest import VERSION, counts, csrf_of, fire, report, signed_in
from tests.web.test_report_page import EXE, png, stored_files


def assigned(engine: Engine) -> str:
    code = report(engine)
    fire(engine, code, "assign", "li.anquan", owner="zhou.weixiu", acceptor="zhao.chejian",
         deadline=datetime.now(UTC) + timedelta(days=7))
    return code


def post(client: TestClient, page: str, code: str, photo: tuple[str, bytes, str] | None, **extra: str) -> Any:
    found = VERSION.search(page)
    assert found
    data = {"csrf": csrf_of(page), "version": found.group(1), "workflow": "hazard", "code": code,
            "event": "submit", "measures": "已更换压力表", **extra}
    return client.post("/events/photo", data=data, files={"photo": photo} if photo else None)


def test_the_rectifier_submits_with_a_photo(client: TestClient, engine: Engine, app: FastAPI) -> None:
    code = assigned(engine)
    signed_in(client, engine, "zhou.weixiu")
    page = client.get(f"/hazard/{code}").text
    assert 'action="/events/photo"' in page and 'name="photo"' in page and 'capture="environment"' in page
    image = png(4, 4)
    answer = post(client, page, code, ("fixed.png", image, "image/png"))
    assert answer.status_code == 303 and answer.headers["location"] == f"/hazard/{code}"
    digest = hashlib.sha256(image).hexdigest()
    with engine.connect() as conn:
        state = conn.execute(select(HAZARD.c.state).where(HAZARD.c.code == code)).scalar()
        data = conn.execute(select(AUDIT_ENTRY.c.data).where(AUDIT_ENTRY.c.entity_code == code,
                                                             AUDIT_ENTRY.c.event == "submit")).scalar()
    assert state == "pending_acceptance" and digest in data
    assert [p.name for p in stored_files(app)] == [digest]
    assert digest[:12] in client.get(f"/hazard/{code}").text


def test_a_bad_photo_with_an_event_is_refused_and_nothing_written(client: TestClient, engine: Engine,
                                                                  app: FastAPI) -> None:
    code = assigned(engine)
    signed_in(client, engine, "zhou.weixiu")
    page = client.get(f"/hazard/{code}").text
    before = counts(engine)
    answer = post(client, page, code, ("fixed.jpg", EXE, "image/jpeg"))
    assert answer.status_code == 415 and "文件类型不被接受" in answer.text and "JPEG、PNG" in answer.text
    assert counts(engine) == before and stored_files(app) == []
    unknown = post(client, page, code, None, workflow="nothing")
    assert unknown.status_code == 404 and counts(engine) == before
    no_token = client.post("/events/photo", data={"workflow": "hazard", "code": code, "event": "submit"},
                           files={"photo": ("a.png", png(), "image/png")})
    assert no_token.status_code == 403 and counts(engine) == before and stored_files(app) == []


def test_the_hazard_page_shows_its_photos_to_those_who_see_it(client: TestClient, engine: Engine) -> None:
    """The thumbnail is served from the entity's own trail: a hash the trail does not carry, or a
    person of another enterprise, gets 404; the bytes go out as an image with nosniff."""
    code = assigned(engine)
    signed_in(client, engine, "zhou.weixiu")
    image = png(4, 4)
    assert post(client, client.get(f"/hazard/{code}").text, code,
                ("fixed.png", image, "image/png")).status_code == 303
    digest = hashlib.sha256(image).hexdigest()
    page = client.get(f"/hazard/{code}").text
    assert f'<img src="/hazard/{code}/evidence/{digest}"' in page
    shown = client.get(f"/hazard/{code}/evidence/{digest}")
    assert shown.status_code == 200 and shown.content == image
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/hazard/{code}/evidence/{'0' * 64}").status_code == 404
    other = report(engine)  # the photo is not in this hazard's trail
    assert client.get(f"/hazard/{other}/evidence/{digest}").status_code in (403, 404)
    client.cookies.clear()
    signed_in(client, engine, "chen.anyuan")  # another enterprise's safety officer
    assert client.get(f"/hazard/{code}/evidence/{digest}").status_code == 404
