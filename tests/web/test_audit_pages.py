"""The auditors' pages through httpx on a real database: search within the auditor's scope only,
403 for everyone else, cursor paging, an entity's timeline, verification (CSRF-checked) and the
streamed export -- the same rows and verdict as the API's audit endpoints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from safeloop import orgfile
from safeloop.api.routes.audit import verify_with_checkpoints
from safeloop.web.pages import CSRF_REFUSED
from tests.scope_world import org_document
from tests.web.conftest import counts, csrf_of, fire, report, signed_in

SEQ = re.compile(r"#(\d+) <strong>")


def more_org(engine: Engine, tmp_path: Path) -> None:
    """The demo org plus another jurisdiction (东区, its enterprise 东方化工) and a city auditor."""
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(org_document(), allow_unicode=True), encoding="utf-8")
    with Session(engine) as session:
        orgfile.load(session, path)


def test_auditor_sees_only_their_scope_and_others_get_403(client: TestClient, engine: Engine,
                                                          tmp_path: Path) -> None:
    more_org(engine, tmp_path)
    ours = report(engine, title="压力表失效")
    theirs = report(engine, who="dong.df", unit="df-plant", title="东区隐患")
    signed_in(client, engine, "he.shenji")  # auditor of the development zone only
    home = client.get("/")
    assert 'href="/audit"' in home.text and 'href="/hazard/new"' not in home.text
    page = client.get("/audit")
    assert page.status_code == 200 and ours in page.text and theirs not in page.text
    assert f'href="/audit/entity/hazard/{ours}"' in page.text
    assert "孙班长（检查员）" in page.text and "→ 已上报" in page.text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00", page.text)  # local time, offset shown
    assert not SEQ.findall(client.get("/audit", params={"entity": theirs}).text)  # not even by code
    assert client.get(f"/audit/entity/hazard/{theirs}").status_code == 200
    assert not SEQ.findall(client.get(f"/audit/entity/hazard/{theirs}").text)
    client.cookies.clear()
    signed_in(client, engine, "gao.shenji")  # the city's auditor sees both
    both = client.get("/audit").text
    assert ours in both and theirs in both
    client.cookies.clear()
    signed_in(client, engine, "li.anquan")
    refused = client.get("/audit")
    assert refused.status_code == 403 and "仅审计人员" in refused.text and ours not in refused.text
    assert client.get("/audit/export").status_code == 403
    assert client.get(f"/audit/entity/hazard/{ours}").status_code == 403


def test_search_filters_pages_and_entity_timeline(client: TestClient, engine: Engine, app: FastAPI) -> None:
    codes = [report(engine, title=f"隐患{i}") for i in range(3)]
    fire(engine, codes[0], "regrade", "li.anquan", comment="复核后升级", grade="major")
    app.state.settings = app.state.settings.model_copy(update={"api_page_size": 2})
    signed_in(client, engine, "he.shenji")
    first = client.get("/audit")
    seqs = [int(s) for s in SEQ.findall(first.text)]
    assert len(seqs) == 2 and 'id="next-page"' in first.text
    next_url = re.search(r'href="(\?[^"]+)" id="next-page"', first.text).group(1).replace("&amp;", "&")
    second = client.get("/audit" + next_url)
    later = [int(s) for s in SEQ.findall(second.text)]
    assert later and min(later) > max(seqs)
    by_person = client.get("/audit", params={"person": "li.anquan"}).text
    assert "复核后升级" in by_person and codes[1] not in by_person
    by_event = client.get("/audit", params={"event": "regrade"}).text
    assert len(SEQ.findall(by_event)) == 1 and codes[0] in by_event
    future = client.get("/audit", params={"since": "2999-01-01T00:00"}).text
    assert not SEQ.findall(future)
    bad = client.get("/audit", params={"since": "昨天"})
    assert bad.status_code == 422 and "起始时间" in bad.text
    timeline = client.get(f"/audit/entity/hazard/{codes[0]}").text
    assert "审计时间线" in timeline and "上报隐患" in timeline and "复核后升级" in timeline
    assert codes[1] not in timeline


def test_verify_needs_csrf_and_shows_the_chain(client: TestClient, engine: Engine) -> None:
    report(engine)
    signed_in(client, engine, "he.shenji")
    page = client.get("/audit")
    before = counts(engine)
    for data in ({}, {"csrf": "0" * 64}):
        refused = client.post("/audit/verify", data=data)
        assert refused.status_code == 403 and CSRF_REFUSED in refused.text
    assert counts(engine) == before
    with Session(engine) as session:  # the API's verdict for the same chain, computed the same way
        expected, _ = verify_with_checkpoints(session, client.app.state.settings.storage_dir)
    assert expected["ok"]
    done = client.post("/audit/verify", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "校验通过" in done.text
    assert f"{expected['count']} 条" in done.text and expected["head_hash"] in done.text


def test_verify_shows_each_checkpoint(client: TestClient, engine: Engine) -> None:
    from states.jobs import checkpoint

    report(engine)
    with Session(engine) as session:
        taken = checkpoint.take(session)
        session.commit()
    signed_in(client, engine, "he.shenji")
    csrf = csrf_of(client.get("/audit").text)
    shown = client.post("/audit/verify", data={"csrf": csrf}).text
    assert f"第 {taken.seq} 条：一致" in shown and 'id="checkpoints"' in shown


def test_export_streams_the_rows_of_the_scope(client: TestClient, engine: Engine) -> None:
    code = report(engine)
    fire(engine, code, "regrade", "li.anquan", comment="复核", grade="major")
    signed_in(client, engine, "he.shenji")
    page = client.get("/audit", params={"entity": code}).text
    assert f"/audit/export?format=csv&amp;entity={code}" in page
    lines = client.get("/audit/export", params={"entity": code}).text.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["event"] for r in rows] == ["report", "regrade"] and all(r["entity_code"] == code for r in rows)
    assert all(r["hash"] for r in rows)
    csv_answer = client.get("/audit/export", params={"format": "csv", "entity": code})
    assert csv_answer.headers["content-type"].startswith("text/csv")
    csv_lines = csv_answer.text.splitlines()
    assert csv_lines[0].startswith("seq,entity_type") and len(csv_lines) == 3
    assert client.get("/audit/export", params={"format": "xml"}).status_code == 422
