"""Complete replay (issue 10): replay compares every column an effect writes, and a direct edit
of any of them is found and named.

``test_every_effect_column_is_replayed`` fires every rule that has an effect, in every workflow,
through the engine, replays the trail and checks each column an effect wrote is one replay
compares (or is listed, with its reason, in ``NOT_REPLAYED``). A new rule without a step in the
tour, or a new column replay skips, fails it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.errors import InvalidInput
from models import AuditEntry, Hazard, InspectionTask, StatReport
from safeloop import checklists, plans
from states import engine
from states.audit import verify
from states.jobs.materialize import materialize
from states.jobs.replay import NOT_REPLAYED, compared_columns, replay
from states.jobs.stat_reports import materialize_reports
from states.registry import WORKFLOWS
from states.workflows.annual_plan import ANNUAL_PLAN
from states.workflows.hazard import HAZARD
from states.workflows.inspection import INSPECTION
from states.workflows.listing import LISTING
from states.workflows.risk import RISK
from states.workflows.stat_report import STAT_REPORT
from states.workflows.suspension import SUSPENSION
from tests.helpers import EVIDENCE, FULL_PLAN, NOW, fire, report, walk_to
from tests.states.test_inspection import _results, _task
from tests.states.test_listing import REPORT, T0, _listed, _major_rectifying
from tests.states.test_risk import identify, lec


def _hazards(s: Session) -> None:
    walk_to(s, "closed")
    walk_to(s, "cancelled")
    spot = report(s).entity_id
    fire(s, spot, "fix_on_spot", "sun.banzhang", data={"measures": "已更换", "evidence": EVIDENCE})
    fire(s, spot, "reinspect", "li.anquan", data={"findings": "复查合格"})
    major = report(s, "major").entity_id
    fire(s, major, "assign", "li.anquan", data={
        "owner": "sun.banzhang", "deadline": NOW + timedelta(days=30), "acceptor": "wang.zhuren",
        "measures": "更换安全阀", "funds": "12000.50"})
    fire(s, major, "draft_plan", "li.anquan", data={"objectives": "消除泄漏风险"})
    fire(s, major, "approve_plan", "wang.zhuren", data=FULL_PLAN)
    fire(s, major, "regrade", "li.anquan", data={"grade": "general"}, comment="复核为一般隐患")
    fire(s, major, "extend_deadline", "wang.zhuren", comment="备件未到",
         data={"deadline": NOW + timedelta(days=60)})
    fire(s, major, "remind_due", "system")
    fire(s, major, "escalate", "system", data={"level": 1})


def _listing(s: Session) -> None:
    hid, lid = _listed(s)  # propose, list (+ link_listing on the hazard)

    def act(event: str, actor: str, at: datetime = T0, **kw: Any) -> None:
        engine.fire(s, LISTING, lid, event, actor=actor, as_of=at, **kw)

    act("file", "qian.jianguan")
    act("publish", "qian.jianguan")
    act("report_progress", "wang.zhuren", data={"progress": "已完成倒罐"})
    act("request_extension", "wang.zhuren", comment="设备到货延迟",
        data={"deadline": T0 + timedelta(days=150)})
    act("decide_extension", "qian.jianguan", data={"approve": True})
    act("escalate", "qian.jianguan", data={"level": 1})
    act("duty_overdue", "system", T0 + timedelta(days=60), data={"duty": "progress"})
    later = T0 + timedelta(days=61)
    engine.fire(s, HAZARD, hid, "submit", actor="wu.chuyun", as_of=later)
    engine.fire(s, HAZARD, hid, "accept", actor="wang.zhuren", as_of=later)
    act("request_delisting", "wang.zhuren", later, data={"evaluation": REPORT})
    act("reject", "qian.jianguan", later, comment="评估报告缺少检测数据")
    act("request_delisting", "wang.zhuren", later, data={"evaluation": REPORT})
    act("delist", "qian.jianguan", later)  # closes the hazard (close)


def _regulator(s: Session) -> None:
    hazard = s.get(Hazard, _major_rectifying(s)).code  # type: ignore[union-attr]
    order = engine.create(s, SUSPENSION, actor="qian.jianguan", as_of=T0, data={
        "unit": "jinhua-group", "reason": "重大隐患未整改", "hazard": hazard}).entity_id
    for event, actor, data in (("start_rectification", "wang.zhuren", {}),
                               ("request_resumption", "wang.zhuren", {"report": EVIDENCE}),
                               ("approve_resumption", "qian.jianguan", {})):
        engine.fire(s, SUSPENSION, order, event, actor=actor, as_of=T0, data=data)
    plan = engine.create(s, ANNUAL_PLAN, actor="qian.jianguan", as_of=T0, data={
        "jurisdiction": "xz-edz", "year": 2020, "department": "edz-yjj",
        "entries": [{"enterprise": "jinhua", "frequency": 4}]}).entity_id
    for event, actor, data in (
            ("update_entries", "qian.jianguan", {"entries": [
                {"enterprise": "jinhua", "frequency": 4}, {"enterprise": "xinfeng", "frequency": 2}]}),
            ("file", "qian.jianguan", {}), ("activate", "qian.jianguan", {}),
            ("refresh", "system", {}), ("close", "qian.jianguan", {})):
        engine.fire(s, ANNUAL_PLAN, plan, event, actor=actor, as_of=T0, data=data)
    materialize_reports(s, as_of=datetime(2020, 10, 1, 2, tzinfo=UTC))
    due = s.exec(select(StatReport).where(StatReport.code == "jinhua/2020-Q3")).one()
    engine.fire(s, STAT_REPORT, due.id, "submit", actor="wang.zhuren", as_of=T0)


def _inspection(s: Session) -> None:
    checklists.load_shipped(s)
    plans.add(s, plans.PlanSpec("synth", "jinhua-ws-synth", active_from=date(2026, 1, 1)))
    materialize(s, as_of=NOW)
    task = _task(s, "synth/2026-W45")
    engine.fire(s, INSPECTION, task.id, "start", actor="zhao.chejian", as_of=NOW)
    engine.fire(s, INSPECTION, task.id, "submit", actor="zhao.chejian", as_of=NOW,
                data={"results": _results(s, task, {})})
    engine.fire(s, INSPECTION, task.id, "review", actor="li.anquan", as_of=NOW)


def _risk(s: Session) -> None:
    rid = identify(s)

    def act(event: str, actor: str, at: datetime = NOW, **kw: Any) -> None:
        engine.fire(s, RISK, rid, event, actor=actor, as_of=at, **kw)

    act("revise", "li.anquan", data={"consequences": "中毒", "responsible": "wu.chuyun"})
    act("evaluate", "li.anquan", data=lec(3, 6, 15))
    act("approve", "wang.zhuren")
    act("report_change", "li.anquan", data={"trigger": "accident"}, comment="泄漏")
    act("evaluate", "li.anquan", data=lec(3, 6, 15))
    act("approve", "wang.zhuren")
    act("due_review", "system", NOW + timedelta(days=400))
    act("retire", "wang.zhuren", NOW + timedelta(days=401), comment="拆除")


def _duties(s: Session) -> None:
    from models.tables import DUTY as DT
    from states.jobs.duties import materialize_duties
    from states.workflows.duty import DUTY

    day = datetime(2020, 9, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 October, local
    materialize_duties(s, as_of=day, until=day, kinds=["risk_commitment"])
    materialize_duties(s, as_of=day + timedelta(days=1), until=day + timedelta(days=1),
                       kinds=["risk_commitment"])
    first, second = s.connection().execute(select(DT.c.id).order_by(DT.c.id)).scalars().all()
    s.rollback()

    def act(duty: int, event: str, actor: str, hours: float, **kw: Any) -> None:
        engine.fire(s, DUTY, duty, event, actor=actor, as_of=day + timedelta(hours=hours), **kw)

    act(first, "remind", "system", 6)
    act(first, "complete", "wang.zhuren", 7, data={"evidence": EVIDENCE, "summary": "已公告"})
    act(second, "miss", "system", 32)
    act(second, "escalate", "system", 32, data={"level": 1})
    act(second, "make_up", "wang.zhuren", 33, data={"evidence": EVIDENCE})


@pytest.fixture
def toured(org: Session) -> Session:
    for step in (_hazards, _listing, _regulator, _inspection, _risk, _duties):
        step(org)
    return org


def test_every_effect_column_is_replayed(toured: Session) -> None:
    result = replay(toured.connection())
    assert result.ok, [d.message for d in result.differences[:5]]
    with_effect = {(w.name, r.name) for w in WORKFLOWS.values()
                   for r in (w.create_event, *w.events.values()) if r.effect is not None}
    assert with_effect - set(result.written) == set(), "rules the tour does not fire"
    skipped = {(name, column) for (name, _event), columns in result.written.items()
               for column in columns if column not in compared_columns(WORKFLOWS[name])}
    assert skipped == set(NOT_REPLAYED), "effect columns replay does not compare"


TAMPER = [  # (column, SQL value): each a fact an event decided, edited behind the engine's back
    ("accepted_by_id", "(SELECT id FROM person WHERE key = 'li.anquan')"),
    ("deadline", "'2030-01-01 00:00:00'"),
    ("funds", "1"),
    ("measures", "'未整改'"),
    ("acceptor_id", "NULL"),
    ("title", "'改过的标题'"),
    ("unit_id", "(SELECT id FROM unit WHERE key = 'jinhua-team-b')"),
]


@pytest.mark.parametrize(("column", "value"), TAMPER, ids=[t[0] for t in TAMPER])
def test_direct_edit_of_a_hazard_is_named_by_replay(org: Session, column: str, value: str) -> None:
    hid = report(org, "major").entity_id
    fire(org, hid, "assign", "li.anquan", data={
        "owner": "sun.banzhang", "deadline": NOW + timedelta(days=30), "acceptor": "wang.zhuren",
        "measures": "更换安全阀", "funds": "12000.50"})
    fire(org, hid, "approve_plan", "wang.zhuren", data=FULL_PLAN)
    fire(org, hid, "submit", "sun.banzhang")
    fire(org, hid, "accept", "wang.zhuren")
    assert replay(org.connection()).ok
    code = org.get(Hazard, hid).code  # type: ignore[union-attr]
    org.rollback()
    org.connection().execute(text(f"UPDATE hazard SET {column} = {value} WHERE id = {hid}"))
    org.commit()
    assert verify(org.connection()).ok  # the chain itself is intact: only replay can tell
    result = replay(org.connection())
    assert [(d.code, d.field) for d in result.differences] == [(code, column)]
    message = result.differences[0].message
    assert f"隐患「{code}」" in message and f"「{column}」" in message and "与审计日志不符" in message


@pytest.mark.parametrize("column", ["deadline", "file_due", "hazard_id", "department_id"])
def test_direct_edit_of_a_listing_is_named_by_replay(org: Session, column: str) -> None:
    _, lid = _listed(org)
    other = _major_rectifying(org)
    org.rollback()
    value = {"deadline": "'2030-01-01 00:00:00'", "file_due": "'2030-01-01 00:00:00'",
             "hazard_id": str(other), "department_id": "NULL"}[column]
    org.connection().execute(text(f"UPDATE listing SET {column} = {value} WHERE id = {lid}"))
    org.commit()
    assert [d.field for d in replay(org.connection()).differences] == [column]


def _activated(org: Session) -> int:
    _major_rectifying(org)  # jinhua has an open major hazard: its frequency doubles
    pid = engine.create(org, ANNUAL_PLAN, actor="qian.jianguan", as_of=T0, data={
        "jurisdiction": "xz-edz", "year": 2020, "department": "edz-yjj",
        "entries": [{"enterprise": "jinhua", "frequency": 4},
                    {"enterprise": "xinfeng", "frequency": 4}]}).entity_id
    engine.fire(org, ANNUAL_PLAN, pid, "file", actor="qian.jianguan", as_of=T0)
    engine.fire(org, ANNUAL_PLAN, pid, "activate", actor="qian.jianguan", as_of=T0)
    return pid


def _audit_data(org: Session, entity_type: str, event: str) -> list[dict[str, Any]]:
    rows = org.exec(select(AuditEntry.data).where(
        AuditEntry.entity_type == entity_type, AuditEntry.event == event)
        .order_by(AuditEntry.seq)).all()
    return [json.loads(r) for r in rows]


def test_annual_plan_doubling_and_its_reason_are_in_the_audit_row(org: Session) -> None:
    pid = _activated(org)
    [data] = _audit_data(org, "annual_plan", "activate")
    assert data["doubled"] == ["jinhua"]
    by_key = {e["enterprise"]: e for e in data["entries"]}
    assert (by_key["jinhua"]["base_frequency"], by_key["jinhua"]["frequency"]) == (4, 8)
    assert "重大隐患 1 项" in by_key["jinhua"]["reason"]
    assert by_key["xinfeng"]["frequency"] == 4 and by_key["xinfeng"]["reason"] == "按基准频次"
    # the trail, not today's hazards, decides the replayed frequency: closing the hazard later
    # changes nothing on replay, while an edited frequency is found
    org.connection().execute(text("UPDATE hazard SET state = 'closed'"))
    org.commit()
    org.connection().execute(text(
        "UPDATE annual_plan SET entries = '[]' WHERE id = :id"), {"id": pid})
    org.commit()
    differences = replay(org.connection()).differences
    assert {(d.entity_type, d.field) for d in differences} >= {("annual_plan", "entries")}
    assert all(d.entity_type != "annual_plan" or d.field == "entries" for d in differences)


def test_engine_computed_facts_are_not_taken_from_input(org: Session) -> None:
    pid = _activated(org)
    with pytest.raises(InvalidInput, match="由系统计算"):
        engine.fire(org, ANNUAL_PLAN, pid, "refresh", actor="qian.jianguan", as_of=T0,
                    data={"entries": [], "doubled": []})
    hid = _major_rectifying(org)
    lid = engine.create(org, LISTING, actor="qian.jianguan", as_of=T0, data={
        "unit": "jinhua-team-tank", "hazard": org.get(Hazard, hid).code}).entity_id  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="file_due"):
        engine.fire(org, LISTING, lid, "list", actor="qian.jianguan", as_of=T0, data={
            "deadline": T0 + timedelta(days=90), "file_due": T0 + timedelta(days=300)})


def test_derived_due_dates_are_in_the_audit_row(org: Session) -> None:
    _, lid = _listed(org)
    [data] = _audit_data(org, "listing", "list")
    assert data["file_due"].startswith("2020-10-09") and data["publish_due"].startswith("2020-10-12")
    assert set(data) >= {"deadline", "progress_due"}
    materialize_reports(org, as_of=datetime(2020, 10, 1, 2, tzinfo=UTC))
    batches = _audit_data(org, "stat_report_batch", "materialize")
    assert {b["period_key"]: b["due_at"][:10] for b in batches} == {"2020-Q3": "2020-10-15"}


def test_direct_edit_of_a_batch_created_due_date_is_named(org: Session) -> None:
    materialize_reports(org, as_of=datetime(2020, 10, 1, 2, tzinfo=UTC))
    assert replay(org.connection()).ok
    org.connection().execute(text(
        "UPDATE stat_report SET due_at = '2021-06-30 00:00:00' WHERE code = 'jinhua/2020-Q3'"))
    org.commit()
    assert [(d.code, d.field) for d in replay(org.connection()).differences] == [
        ("jinhua/2020-Q3", "due_at")]


def test_inspection_results_edit_is_named(org: Session) -> None:
    _inspection(org)
    task = org.exec(select(InspectionTask).where(InspectionTask.code == "synth/2026-W45")).one()
    org.rollback()
    org.connection().execute(text("UPDATE inspection_task SET results = '[]' WHERE id = :id"),
                             {"id": task.id})
    org.commit()
    assert [d.field for d in replay(org.connection()).differences] == ["results"]
