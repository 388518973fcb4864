"""The regulators' pages through httpx on a real database: a regulator proposes, lists and (after
the enterprise asked) delists a major hazard through the forms; the duty clocks show the due
dates the engine wrote; another jurisdiction's regulator and enterprise staff see nothing of it
and can write nothing; a form without the CSRF token is refused."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.errors import GuardFailed
from models.db import utcnow
from models.tables import HAZARD, LISTING
from safeloop import orgfile
from safeloop.api.errors import kind_of
from safeloop.web.pages import CSRF_REFUSED
from safeloop.web.regulator import ONLY_REGULATORS
from states import engine as state_engine
from states.registry import WORKFLOWS
from tests.helpers import FULL_PLAN
from tests.web.conftest import VERSION, counts, csrf_of, in_a_week, signed_in

REPORT = [{"sha256": "b" * 64, "name": "评估报告.pdf", "size": 1024}]  # seeded by the org fixture
OTHER = """
jurisdictions:
  - {id: dt, name: 大同市}
departments:
  - {id: dt-yjj, name: 大同市应急管理局, jurisdiction: dt, industries: [化工]}
enterprises:
  - id: datong
    name: 大同化工有限公司
    industry: 化工
    jurisdiction: dt
    units:
      - {id: datong-plant, name: 大同化工厂, tier: plant}
people:
  - id: zhou.datong
    name: 周大同
    roles: [{role: regulator, jurisdiction: dt, department: dt-yjj}]
  - id: song.datong
    name: 宋大同
    roles: [{role: principal, unit: datong-plant}]
"""


def major_hazard(engine: Engine, title: str = "液氨储罐安全阀失效") -> str:
    """A major hazard of jinhua's tank team, assigned and its plan approved (rectifying)."""
    hazard = WORKFLOWS["hazard"]
    with Session(engine, expire_on_commit=False) as session:
        code = state_engine.create(session, hazard, actor="wu.chuyun", data={
            "unit": "jinhua-team-tank", "title": title, "category": "thing", "grade": "major"}).code
        state_engine.fire(session, hazard, code, "assign", actor="li.anquan",
                          data={"owner": "wu.chuyun", "deadline": utcnow() + timedelta(days=60)})
        state_engine.fire(session, hazard, code, "approve_plan", actor="wang.zhuren", data=FULL_PLAN)
    return code


def other_jurisdiction(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(OTHER, encoding="utf-8")
    with Session(engine, expire_on_commit=False) as session:
        orgfile.load(session, path)
        session.commit()


def row_of(engine: Engine, table, code: str) -> dict:  # noqa: ANN001 - a Core table
    with engine.connect() as conn:
        return dict(conn.execute(select(table).where(table.c.code == code)).mappings().one())


def propose(client: TestClient, code: str) -> str:
    """Propose ``code`` from /regulator; the new listing's code."""
    page = client.get("/regulator")
    assert page.status_code == 200 and f'value="{code}"' in page.text
    answer = client.post("/regulator/propose", data={"csrf": csrf_of(page.text), "hazard": code,
                                                     "department": "edz-yjj"})
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/listing/GP-")
    return location.rsplit("/", 1)[1]


def fire_form(client: TestClient, listing: str, event: str, **fields: str) -> object:
    page = client.get(f"/listing/{listing}")
    assert page.status_code == 200 and f'id="form-{event}"' in page.text, page.text[-2000:]
    version = VERSION.search(page.text)
    assert version
    return client.post(f"/listing/{listing}/events/{event}",
                       data={"csrf": csrf_of(page.text), "version": version.group(1), **fields})


def test_a_regulator_lists_and_delists_through_the_pages(client: TestClient, engine: Engine) -> None:
    hazard = major_hazard(engine)
    signed_in(client, engine, "qian.jianguan")
    listing = propose(client, hazard)
    assert row_of(engine, LISTING, listing)["state"] == "proposed"

    listed = fire_form(client, listing, "list", deadline=in_a_week(), comment="限期整改")
    assert listed.status_code == 303, listed.text  # type: ignore[attr-defined]
    row = row_of(engine, LISTING, listing)
    assert row["state"] == "listed" and row_of(engine, HAZARD, hazard)["listing_id"] == row["id"]

    board = client.get("/regulator").text
    block = board[board.index(f'id="listing-{listing}"'):]
    block = block[:block.index("</li>")]
    for label in ("报备", "公示", "进展"):
        assert f"<th scope=\"row\">{label}</th>" in block
    assert "个工作日" in block and f'<li class="item" id="listing-{listing}">' in board  # nothing late
    assert f'value="{hazard}"' not in board  # listed: no longer a candidate
    due_local = row["file_due"]
    assert due_local is not None

    escalate_link = f'href="/listing/{listing}#form-escalate"'
    assert escalate_link in board
    # the enterprise rectifies and asks for delisting (its own events, through the engine)
    with Session(engine, expire_on_commit=False) as session:
        haz = WORKFLOWS["hazard"]
        state_engine.fire(session, haz, hazard, "submit", actor="wu.chuyun")
        state_engine.fire(session, haz, hazard, "accept", actor="wang.zhuren")
        state_engine.fire(session, WORKFLOWS["listing"], listing, "request_delisting",
                          actor="wang.zhuren", data={"evaluation": REPORT})
    board = client.get("/regulator").text
    assert "<th scope=\"row\">核查</th>" in board and f'href="/listing/{listing}#form-delist"' in board

    delisted = fire_form(client, listing, "delist", comment="现场核查合格")
    assert delisted.status_code == 303, delisted.text  # type: ignore[attr-defined]
    assert row_of(engine, LISTING, listing)["state"] == "delisted"
    assert row_of(engine, HAZARD, hazard)["state"] == "closed"  # the listing's cascade
    done = client.get(f"/listing/{listing}").text
    assert "已摘牌销号" in done and "核查通过摘牌销号" in done


def test_missed_duties_are_highlighted(client: TestClient, engine: Engine) -> None:
    hazard = major_hazard(engine)
    past = utcnow() - timedelta(days=40)  # the simulation switch lets the engine act in the past
    with Session(engine, expire_on_commit=False) as session:
        listing = state_engine.create(session, WORKFLOWS["listing"], actor="qian.jianguan", as_of=past,
                                      data={"unit": "jinhua-team-tank", "hazard": hazard}).code
        state_engine.fire(session, WORKFLOWS["listing"], listing, "list", actor="qian.jianguan",
                          as_of=past, data={"deadline": utcnow() + timedelta(days=60)})
    signed_in(client, engine, "qian.jianguan")
    board = client.get("/regulator").text
    block = board[board.index(f'id="listing-{listing}"'):]
    block = block[:block.index("</table>")]
    assert f'<li class="item late" id="listing-{listing}">' in board
    assert re.search(r'<tr class="late"><th scope="row">报备</th>', block)
    assert "已逾期" in block and '<span class="badge late">逾期</span>' in block


def test_enterprise_staff_get_403_and_write_nothing(client: TestClient, engine: Engine) -> None:
    hazard = major_hazard(engine)
    signed_in(client, engine, "wang.zhuren")
    for path in ("/regulator", "/regulator/suspensions", "/regulator/plans"):
        answer = client.get(path)
        assert answer.status_code == 403 and ONLY_REGULATORS in answer.text
    csrf = csrf_of(client.get("/").text)
    before = counts(engine)
    answer = client.post("/regulator/propose", data={"csrf": csrf, "hazard": hazard})
    assert answer.status_code == 403 and counts(engine) == before


def test_another_jurisdiction_sees_nothing_and_writes_nothing(client: TestClient, engine: Engine,
                                                              tmp_path: Path) -> None:
    other_jurisdiction(engine, tmp_path)
    hazard = major_hazard(engine)
    with Session(engine, expire_on_commit=False) as session:
        listing = state_engine.create(session, WORKFLOWS["listing"], actor="qian.jianguan",
                                      data={"unit": "jinhua-team-tank", "hazard": hazard}).code
        state_engine.create(session, WORKFLOWS["suspension"], actor="qian.jianguan",
                            data={"unit": "jinhua-group", "reason": "重大隐患未按期整改"})
    signed_in(client, engine, "zhou.datong")
    board = client.get("/regulator")
    assert board.status_code == 200 and listing not in board.text and hazard not in board.text
    assert "重大隐患未按期整改" not in client.get("/regulator/suspensions").text
    assert client.get(f"/listing/{listing}").status_code == 404  # a copied address
    before = counts(engine)
    csrf = csrf_of(board.text)
    answer = client.post("/regulator/propose", data={"csrf": csrf, "hazard": hazard})
    assert answer.status_code == 404 and f"「{hazard}」不存在" in answer.text
    answer = client.post(f"/listing/{listing}/events/list",
                         data={"csrf": csrf, "version": "1", "deadline": in_a_week()})
    assert answer.status_code == 404
    assert counts(engine) == before and row_of(engine, LISTING, listing)["state"] == "proposed"
    client.cookies.clear()
    signed_in(client, engine, "song.datong")  # staff of the other jurisdiction's enterprise
    assert client.get(f"/listing/{listing}").status_code == 404
    assert client.get(f"/hazard/{hazard}").status_code == 404


def test_propose_without_csrf_or_with_a_general_hazard_is_refused(client: TestClient,
                                                                   engine: Engine) -> None:
    hazard = major_hazard(engine)
    with Session(engine, expire_on_commit=False) as session:
        general = state_engine.create(session, WORKFLOWS["hazard"], actor="wu.chuyun", data={
            "unit": "jinhua-team-tank", "title": "标识缺失", "category": "thing",
            "grade": "general"}).code
    signed_in(client, engine, "qian.jianguan")
    before = counts(engine)
    answer = client.post("/regulator/propose", data={"hazard": hazard})
    assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    answer = client.post("/regulator/propose", data={"csrf": "0" * 64, "hazard": hazard})
    assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    csrf = csrf_of(client.get("/regulator").text)
    refused = client.post("/regulator/propose", data={"csrf": csrf, "hazard": general})
    assert refused.status_code == kind_of(GuardFailed("x"))[1]  # as the API answers a guard
    assert "只有重大隐患可以挂牌督办" in refused.text
    assert 'role="alert"' in refused.text and f'value="{general}"' in refused.text
    empty = client.post("/regulator/propose", data={"csrf": csrf, "hazard": " "})
    assert empty.status_code == 422 and "请填写" in empty.text
    assert counts(engine) == before


def test_suspension_orders_and_annual_plans(client: TestClient, engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        order = state_engine.create(session, WORKFLOWS["suspension"], actor="qian.jianguan",
                                    data={"unit": "jinhua-group", "reason": "重大隐患<script>逾期</script>",
                                          "scope": "partial"}).code
        plan = state_engine.create(session, WORKFLOWS["annual_plan"], actor="qian.jianguan", data={
            "jurisdiction": "xz-edz", "year": 2027, "department": "edz-yjj",
            "entries": [{"enterprise": "jinhua", "frequency": 4}]}).code
    signed_in(client, engine, "qian.jianguan")
    orders = client.get("/regulator/suspensions")
    assert orders.status_code == 200 and f'href="/suspension/{order}"' in orders.text
    assert "部分停产停业" in orders.text and "山西晋华化工集团有限公司" in orders.text
    assert "<script>逾期" not in orders.text and "&lt;script&gt;逾期" in orders.text
    plans = client.get("/regulator/plans")
    assert f'href="/annual_plan/{plan}"' in plans.text and "2027 年 忻州经济开发区" in plans.text
    wrong = client.get("/regulator/plans?state=nope")
    assert wrong.status_code == 422 and "没有状态「nope」" in wrong.text
    assert plan not in client.get("/regulator/plans?state=closed").text
