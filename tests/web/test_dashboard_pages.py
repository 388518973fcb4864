"""The dashboards through httpx on a real database: every figure equals the count computed here
independently (plain Python over all rows, the definitions written out again), every figure's
link leads to a list of exactly that many rows, the inspection completion per tier and window
matches the tasks, and the focus (an enterprise, a jurisdiction) never widens what a person sees:
another enterprise or jurisdiction is 404."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import utcnow
from models.tables import ENTERPRISE, HAZARD, INSPECTION_PLAN, INSPECTION_TASK, LISTING
from safeloop import checklists, plans
from states import engine as state_engine
from states.jobs.materialize import materialize
from states.registry import WORKFLOWS
from tests.helpers import FULL_PLAN
from tests.web.conftest import signed_in
from tests.web.test_regulator_pages import other_jurisdiction

ZONE = ZoneInfo("Asia/Shanghai")
OPEN = {"reported", "planning", "rectifying", "pending_acceptance"}
ENDED = {"closed", "cancelled"}
FIGURE = re.compile(r'<a href="([^"]+)"(?: class="late")? id="figure-\d+">'
                    r'<strong>(\d+)</strong><span>([^<]+)</span>')
TOTAL = re.compile(r'id="total">(\d+)<')


def world(engine: Engine) -> None:
    """Hazards in both demo enterprises in every kind of situation, a listing, and inspection
    tasks of every tier for this week so far, some done, one cancelled."""
    hz, ls = WORKFLOWS["hazard"], WORKFLOWS["listing"]
    now = utcnow()
    past = now - timedelta(days=20)
    with Session(engine, expire_on_commit=False) as s:
        def report(unit: str, who: str, grade: str = "general", at: datetime = now) -> str:
            return state_engine.create(s, hz, actor=who, as_of=at, data={
                "unit": unit, "title": "压力表失效", "category": "thing", "grade": grade}).code

        for _ in range(3):
            report("jinhua-team-a", "sun.banzhang")
        late = [report("jinhua-team-a", "sun.banzhang", at=past) for _ in range(3)]
        for code in late:  # deadline passed: overdue
            state_engine.fire(s, hz, code, "assign", actor="li.anquan", as_of=past,
                              data={"owner": "sun.banzhang", "deadline": past + timedelta(days=5)})
        state_engine.fire(s, hz, late[0], "escalate", actor="wang.zhuren", data={"level": 2})
        on_time = report("jinhua-team-b", "li.anquan")
        state_engine.fire(s, hz, on_time, "assign", actor="li.anquan",
                          data={"owner": "zhou.weixiu", "deadline": now + timedelta(days=9)})
        state_engine.fire(s, hz, report("jinhua-team-a", "sun.banzhang"), "cancel", actor="li.anquan",
                          comment="误报")
        for _ in range(2):
            report("xinfeng-team-weld", "feng.hanjie")
        xf_late = report("xinfeng-team-weld", "feng.hanjie", at=past)
        state_engine.fire(s, hz, xf_late, "assign", actor="chen.anyuan", as_of=past,
                          data={"owner": "feng.hanjie", "deadline": past + timedelta(days=3)})
        major = report("jinhua-team-tank", "wu.chuyun", "major")
        state_engine.fire(s, hz, major, "assign", actor="li.anquan",
                          data={"owner": "wu.chuyun", "deadline": now + timedelta(days=60)})
        state_engine.fire(s, hz, major, "approve_plan", actor="wang.zhuren", data=FULL_PLAN)
        listing = state_engine.create(s, ls, actor="qian.jianguan",
                                      data={"unit": "jinhua-team-tank", "hazard": major}).code
        state_engine.fire(s, ls, listing, "list", actor="qian.jianguan",
                          data={"deadline": now + timedelta(days=90)})

        checklists.load_shipped(s)
        for key, unit in (("team-a", "jinhua-team-a"), ("synth", "jinhua-ws-synth"),
                          ("plant1", "jinhua-plant1"), ("group", "jinhua-group"),
                          ("weld", "xinfeng-team-weld")):
            plans.add(s, plans.PlanSpec(key, unit, active_from=date(2026, 1, 1)))
        today = now.astimezone(ZONE).date()
        for back in range(today.weekday() + 1):  # every day of this week so far
            materialize(s, as_of=now - timedelta(days=back))
        tasks = s.connection().execute(select(INSPECTION_TASK.c.code, INSPECTION_TASK.c.template_id)
                                       .where(INSPECTION_TASK.c.code.like("team-a/%"))
                                       .order_by(INSPECTION_TASK.c.id)).all()
        s.rollback()
        from models.tables import CHECKLIST_ITEM
        for code, template in tasks[:2]:
            items = s.connection().execute(select(CHECKLIST_ITEM.c.code).where(
                CHECKLIST_ITEM.c.template_id == template)).scalars().all()
            s.rollback()
            state_engine.fire(s, WORKFLOWS["inspection"], code, "submit", actor="sun.banzhang",
                              data={"results": [{"item": i, "outcome": "pass"} for i in items]})
        synth = s.connection().execute(select(INSPECTION_TASK.c.code).where(
            INSPECTION_TASK.c.code.like("synth/%"))).scalar_one()
        s.rollback()
        state_engine.fire(s, WORKFLOWS["inspection"], synth, "cancel", actor="li.anquan", comment="停产检修")


def expected(engine: Engine, enterprises: set[str]) -> dict[str, int]:
    """The dashboard's figures for these enterprises, counted in Python over every row."""
    now = datetime.now(UTC)
    with engine.connect() as conn:
        ids = set(conn.execute(select(ENTERPRISE.c.id).where(ENTERPRISE.c.key.in_(enterprises))).scalars())
        hazards = [h for h in conn.execute(select(HAZARD)).mappings() if h["enterprise_id"] in ids]
        listings = [row for row in conn.execute(select(LISTING)).mappings() if row["enterprise_id"] in ids]

    def late(row: Any) -> bool:
        due = row["deadline"]
        return due is not None and aware(due) < now and row["state"] not in ENDED | {"delisted"}

    return {
        "在办隐患": sum(h["state"] in OPEN for h in hazards),
        "逾期隐患": sum(late(h) for h in hazards),
        "升级督办隐患": sum(h["state"] in OPEN and h["escalation_level"] > 0 for h in hazards),
        "挂牌督办（未摘牌）": sum(row["state"] != "delisted" for row in listings),
        "挂牌逾期": sum(late(row) for row in listings),
    }


def aware(moment: datetime) -> datetime:
    """SQLite gives naive UTC, PostgreSQL aware times."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def windows() -> dict[str, tuple[datetime, datetime]]:
    """This week (Monday), month and quarter in Shanghai as UTC bounds, worked out here."""
    today = datetime.now(ZONE).date()
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)

    def after(first: date, months: int) -> date:
        m = first.month - 1 + months
        return date(first.year + m // 12, m % 12 + 1, 1)

    def utc(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=ZONE).astimezone(UTC)

    return {"week": (utc(week), utc(week + timedelta(days=7))), "month": (utc(month), utc(after(month, 1))),
            "quarter": (utc(quarter), utc(after(quarter, 3)))}


def expected_rates(engine: Engine, enterprises: set[str]) -> dict[tuple[str, str], tuple[int, int]]:
    with engine.connect() as conn:
        ids = set(conn.execute(select(ENTERPRISE.c.id).where(ENTERPRISE.c.key.in_(enterprises))).scalars())
        tiers = dict(conn.execute(select(INSPECTION_PLAN.c.id, INSPECTION_PLAN.c.tier)).all())
        tasks = [t for t in conn.execute(select(INSPECTION_TASK)).mappings() if t["enterprise_id"] in ids]
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for name, (start, end) in windows().items():
        for tier in ("group", "plant", "workshop", "team"):
            mine = [t for t in tasks if tiers[t["plan_id"]] == tier and t["state"] != "cancelled"
                    and aware(t["period_start"]) < end and aware(t["period_end"]) > start]
            out[(tier, name)] = (sum(t["state"] in ("submitted", "reviewed") for t in mine), len(mine))
    return out


def figures(html: str) -> dict[str, tuple[int, str]]:
    return {label: (int(value), href.replace("&amp;", "&")) for href, value, label in FIGURE.findall(html)}


def rates(html: str) -> dict[tuple[str, str], tuple[int, int]]:
    out = {}
    for tier, row in re.findall(r'<tr id="tier-(\w+)">(.*?)</tr>', html, re.S):
        for window, done, total in re.findall(
                r'data-window="(\w+)"><a href="[^"]*">[^<]*</a><br><a class="hint" href="[^"]*">(\d+)</a>/'
                r'<a class="hint" href="[^"]*">(\d+)</a>', row):
            out[(tier, window)] = (int(done), int(total))
    return out


def check(client: TestClient, engine: Engine, path: str,
          enterprises: set[str]) -> dict[str, tuple[int, str]]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    shown = figures(page.text)
    want = expected(engine, enterprises)
    assert {k: v for k, (v, _href) in shown.items()} == want
    for label, (value, href) in shown.items():  # each figure's list holds exactly that many rows
        listed = client.get(href)
        assert listed.status_code == 200, (label, href)
        total = TOTAL.search(listed.text)
        assert total and int(total.group(1)) == value, (label, href)
        assert listed.text.count('<li class="item') == min(value, 50)
    assert rates(page.text) == expected_rates(engine, enterprises)
    assert "<svg" in page.text and "<script" not in page.text.split("</head>")[1]
    return shown


@pytest.fixture
def seeded(engine: Engine, org: Session) -> Engine:
    world(engine)
    return engine


def test_regulator_dashboard_figures_equal_independent_counts(client: TestClient, seeded: Engine) -> None:
    signed_in(client, seeded, "qian.jianguan")
    shown = check(client, seeded, "/dashboard", {"jinhua", "xinfeng"})
    assert shown["逾期隐患"][0] == 4 and shown["升级督办隐患"][0] == 1  # the world as built
    assert shown["挂牌督办（未摘牌）"][0] == 1
    check(client, seeded, "/dashboard?enterprise=jinhua", {"jinhua"})
    check(client, seeded, "/dashboard?enterprise=xinfeng", {"xinfeng"})
    check(client, seeded, "/dashboard?jurisdiction=xz-edz", {"jinhua", "xinfeng"})
    rated = rates(client.get("/dashboard?enterprise=jinhua").text)
    assert rated[("team", "week")][0] == 2 and rated[("workshop", "week")][1] == 0  # 2 done; cancelled out
    tasks = client.get("/dashboard/inspections?enterprise=jinhua&tier=team&window=week&done=1")
    assert tasks.status_code == 200 and TOTAL.search(tasks.text).group(1) == "2"  # type: ignore[union-attr]
    with Session(seeded, expire_on_commit=False) as session:  # a change shows at once
        code = session.connection().execute(select(HAZARD.c.code).where(
            HAZARD.c.state == "reported").order_by(HAZARD.c.id)).scalars().first()
        session.rollback()
        state_engine.fire(session, WORKFLOWS["hazard"], code, "cancel", actor="li.anquan", comment="重复上报")
    after = check(client, seeded, "/dashboard", {"jinhua", "xinfeng"})
    assert after["在办隐患"][0] == shown["在办隐患"][0] - 1


def test_enterprise_dashboard_and_its_bounds(client: TestClient, seeded: Engine) -> None:
    signed_in(client, seeded, "wang.zhuren")  # principal of the jinhua group
    check(client, seeded, "/dashboard", {"jinhua"})
    check(client, seeded, "/dashboard?enterprise=jinhua", {"jinhua"})
    for path in ("/dashboard?enterprise=xinfeng", "/dashboard?jurisdiction=xz-edz",
                 "/hazard?enterprise=xinfeng",
                 "/dashboard/inspections?enterprise=xinfeng&tier=team&window=week"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "山西晋华" not in answer.text and "忻丰" not in answer.text


def test_another_jurisdiction_sees_zero_and_gets_404(client: TestClient, seeded: Engine,
                                                     tmp_path: Path) -> None:
    other_jurisdiction(seeded, tmp_path)
    signed_in(client, seeded, "zhou.datong")
    shown = figures(client.get("/dashboard").text)
    assert shown and all(value == 0 for value, _ in shown.values())
    assert client.get("/dashboard?enterprise=jinhua").status_code == 404
    assert client.get("/dashboard?jurisdiction=xz-edz").status_code == 404
    assert TOTAL.search(client.get("/hazard?state=open").text).group(1) == "0"  # type: ignore[union-attr]


def test_bad_filters_are_named(client: TestClient, seeded: Engine) -> None:
    signed_in(client, seeded, "qian.jianguan")
    answer = client.get("/hazard?state=nope")
    assert answer.status_code == 422 and "没有状态「nope」" in answer.text
    answer = client.get("/dashboard?enterprise=jinhua&jurisdiction=xz-edz")
    assert answer.status_code == 422 and "只选择企业或辖区之一" in answer.text
    answer = client.get("/dashboard/inspections?tier=moon&window=week")
    assert answer.status_code == 422 and "层级「moon」无效" in answer.text
    answer = client.get("/hazard?after=garbage")
    assert answer.status_code == 422
