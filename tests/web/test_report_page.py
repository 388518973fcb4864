"""上报隐患 through the phone form (multipart, httpx) on a real database: a real PNG is sniffed,
stored by its hash and attached to the new hazard; a unit outside the person's units, a renamed
.exe and an oversized title are refused with zh-CN messages, and nothing is written."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from models.tables import AUDIT_ENTRY, HAZARD
from safeloop.web.pages import CSRF_REFUSED
from tests.web.conftest import counts, csrf_of, signed_in


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG (signature, IHDR, one IDAT of grey pixels, IEND) with correct CRCs."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels))
            + chunk(b"IEND", b""))


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200  # a Windows executable


def fields(csrf: str, **over: str) -> dict[str, str]:
    return {"csrf": csrf, "unit": "jinhua-team-a", "title": "消防通道堵塞", "category": "thing",
            "grade": "general", "description": "二号门外堆放纸箱", "location": "合成车间东侧", **over}


def stored_files(app: FastAPI) -> list[Path]:
    root = app.state.settings.storage_dir / "evidence"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def post(client: TestClient, data: dict[str, str], photo: tuple[str, bytes, str] | None) -> Any:
    return client.post("/hazard/new", data=data, files={"photo": photo} if photo else None)


def test_report_with_a_photo_creates_the_hazard_with_evidence(client: TestClient, engine: Engine,
                                                              app: FastAPI) -> None:
    signed_in(client, engine, "sun.banzhang")
    home = client.get("/")
    assert 'href="/hazard/new"' in home.text
    form = client.get("/hazard/new")
    assert form.status_code == 200 and 'capture="environment"' in form.text
    assert 'accept="image/*"' in form.text
    assert 'value="jinhua-team-a"' in form.text and "jinhua-team-b" not in form.text  # his team only
    image = png()
    answer = post(client, fields(csrf_of(form.text)), ("IMG_0001.png", image, "image/png"))
    assert answer.status_code == 303, answer.text
    code = answer.headers["location"].rsplit("/", 1)[1]
    assert answer.headers["location"] == f"/hazard/{code}"
    with engine.connect() as conn:
        hazard = conn.execute(select(HAZARD).where(HAZARD.c.code == code)).mappings().one()
        entry = conn.execute(select(AUDIT_ENTRY.c.data, AUDIT_ENTRY.c.channel).where(
            AUDIT_ENTRY.c.entity_code == code)).one()
    assert hazard["title"] == "消防通道堵塞" and hazard["state"] == "reported"
    digest = hashlib.sha256(image).hexdigest()
    assert digest in entry.data and entry.channel == "web"
    assert [p.name for p in stored_files(app)] == [digest]
    assert stored_files(app)[0].read_bytes() == image
    page = client.get(f"/hazard/{code}").text
    assert "IMG_0001.png" in page and digest[:12] in page


def test_a_unit_outside_the_persons_units_is_refused(client: TestClient, engine: Engine,
                                                     app: FastAPI) -> None:
    signed_in(client, engine, "sun.banzhang")
    csrf = csrf_of(client.get("/hazard/new").text)
    before = counts(engine)
    for unit in ("xinfeng-team-weld", "jinhua-team-b", "no-such-unit"):
        answer = post(client, fields(csrf, unit=unit), ("a.png", png(), "image/png"))
        assert answer.status_code == 403 and "不能在单位" in answer.text and 'role="alert"' in answer.text
    assert counts(engine) == before and stored_files(app) == []


def test_a_renamed_exe_is_refused_and_nothing_written(client: TestClient, engine: Engine,
                                                      app: FastAPI) -> None:
    signed_in(client, engine, "sun.banzhang")
    csrf = csrf_of(client.get("/hazard/new").text)
    before = counts(engine)
    answer = post(client, fields(csrf), ("photo.jpg", EXE, "image/jpeg"))
    assert answer.status_code == 415 and "文件类型不被接受" in answer.text and "JPEG、PNG" in answer.text
    pdf = post(client, fields(csrf), ("scan.png", b"%PDF-1.4\n" + b"0" * 100, "image/png"))
    assert pdf.status_code == 415  # the API takes a PDF as evidence; a photo field does not
    assert counts(engine) == before and stored_files(app) == []
    assert 'value="消防通道堵塞"' in answer.text  # what was typed is kept


def test_an_oversized_title_is_refused_naming_the_field(client: TestClient, engine: Engine,
                                                        app: FastAPI) -> None:
    signed_in(client, engine, "sun.banzhang")
    csrf = csrf_of(client.get("/hazard/new").text)
    before = counts(engine)
    answer = post(client, fields(csrf, title="隐" * 100_000), ("a.png", png(), "image/png"))
    assert answer.status_code == 422 and "隐患名称" in answer.text and "title" in answer.text
    assert counts(engine) == before and stored_files(app) == []


def test_report_needs_csrf_and_a_reporting_role(client: TestClient, engine: Engine, app: FastAPI) -> None:
    signed_in(client, engine, "sun.banzhang")
    before = counts(engine)
    answer = post(client, fields("0" * 64), ("a.png", png(), "image/png"))
    assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    assert counts(engine) == before and stored_files(app) == []
    client.cookies.clear()
    signed_in(client, engine, "he.shenji")  # an auditor only looks
    assert 'href="/hazard/new"' not in client.get("/").text
    assert client.get("/hazard/new").status_code == 403


def test_report_without_a_photo(client: TestClient, engine: Engine, app: FastAPI) -> None:
    signed_in(client, engine, "li.anquan")  # safety officer of the plant: any of its units
    form = client.get("/hazard/new").text
    assert 'value="jinhua-team-b"' in form and 'value="xinfeng-plant"' not in form
    answer = post(client, fields(csrf_of(form), unit="jinhua-team-b"), None)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/hazard/YH-")
    assert stored_files(app) == []
