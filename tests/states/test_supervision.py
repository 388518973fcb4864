"""Suspension orders, annual supervision plans (frequency doubling, regulator inspections) and
the deadline sweep's side of listed supervision (missed duties, 督办函 → 约谈 → 移送处罚)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.errors import GuardFailed, InvalidInput, PermissionDenied
from models import AnnualPlan, Hazard, InspectionPlan, InspectionTask, Listing, SuspensionOrder
from safeloop import checklists
from states import engine
from states.audit import verify
from states.jobs import regulator_plans
from states.jobs.materialize import materialize
from states.jobs.replay import replay
from states.jobs.sweep import sweep
from states.workflows.annual_plan import ANNUAL_PLAN, cadence_for
from states.workflows.inspection import INSPECTION
from states.workflows.listing import LISTING
from states.workflows.suspension import SUSPENSION
from tests.states.test_listing import T0, _listed, _major_rectifying

EVIDENCE = [{"sha256": "c" * 64, "name": "整改报告.pdf", "size": 2048}]


def test_suspension_order_lifecycle_and_authorization(org):
    data = {"unit": "jinhua-group", "reason": "液氨罐区重大隐患未整改，存在重大危险"}
    with pytest.raises(PermissionDenied):
        engine.create(org, SUSPENSION, actor="wang.zhuren", as_of=T0, data=data)
    order = engine.create(org, SUSPENSION, actor="qian.jianguan", as_of=T0, data=data)
    fire = lambda event, actor, **kw: engine.fire(  # noqa: E731
        org, SUSPENSION, order.entity_id, event, actor=actor, as_of=T0, **kw)
    fire("start_rectification", "wang.zhuren")
    with pytest.raises(InvalidInput):
        fire("request_resumption", "wang.zhuren", data={})
    fire("request_resumption", "wang.zhuren", data={"report": EVIDENCE})
    with pytest.raises(PermissionDenied):
        fire("approve_resumption", "wang.zhuren")
    assert fire("reject_resumption", "qian.jianguan", comment="安全阀未更换").to_state == "rectifying"
    fire("request_resumption", "wang.zhuren", data={"report": EVIDENCE})
    assert fire("approve_resumption", "qian.jianguan").to_state == "resumed"
    org.expire_all()
    assert org.get(SuspensionOrder, order.entity_id).resumed_at is not None
    assert verify(org.connection()).ok and replay(org.connection()).ok


def _annual(org, base: int = 4) -> int:
    result = engine.create(org, ANNUAL_PLAN, actor="qian.jianguan", as_of=T0, data={
        "jurisdiction": "xz-edz", "year": 2020, "department": "edz-yjj",
        "entries": [{"enterprise": "jinhua", "frequency": base},
                    {"enterprise": "xinfeng", "frequency": base}]})
    return result.entity_id


def test_annual_plan_doubles_frequency_where_major_hazard_open(org):
    _major_rectifying(org)  # jinhua has an open major hazard
    pid = _annual(org)
    with pytest.raises(PermissionDenied):
        engine.fire(org, ANNUAL_PLAN, pid, "file", actor="wang.zhuren", as_of=T0)
    engine.fire(org, ANNUAL_PLAN, pid, "file", actor="qian.jianguan", as_of=T0)
    engine.fire(org, ANNUAL_PLAN, pid, "activate", actor="qian.jianguan", as_of=T0)
    org.expire_all()
    entries = {e["enterprise"]: e for e in org.get(AnnualPlan, pid).entries}
    assert entries["jinhua"]["frequency"] == 8 and "重大隐患" in entries["jinhua"]["reason"]
    assert entries["xinfeng"]["frequency"] == 4 and entries["xinfeng"]["reason"] == "按基准频次"
    assert cadence_for(8) == "monthly" and cadence_for(4) == "quarterly" and cadence_for(1) == "yearly"


def test_annual_plan_rejects_enterprise_outside_jurisdiction(org):
    with pytest.raises(GuardFailed, match="不在本辖区"):
        engine.create(org, ANNUAL_PLAN, actor="qian.jianguan", as_of=T0, data={
            "jurisdiction": "xz-edz", "year": 2020,
            "entries": [{"enterprise": "nowhere", "frequency": 2}]})


def test_active_plan_makes_regulator_tasks_whose_findings_are_regulator_hazards(org):
    checklists.load_shipped(org)
    _major_rectifying(org)
    pid = _annual(org)
    engine.fire(org, ANNUAL_PLAN, pid, "file", actor="qian.jianguan", as_of=T0)
    engine.fire(org, ANNUAL_PLAN, pid, "activate", actor="qian.jianguan", as_of=T0)
    assert regulator_plans.sync(org, as_of=T0) == 2
    assert regulator_plans.sync(org, as_of=T0) == 0  # idempotent
    from models import AuditEntry

    [synced] = org.exec(select(AuditEntry.data).where(
        AuditEntry.event == "sync_regulator_plans")).all()
    cadences = {c["enterprise"]: (c["frequency"], c["cadence"])
                for c in json.loads(synced)["changed"]}
    assert cadences == {"jinhua": (8, "monthly"), "xinfeng": (4, "quarterly")}
    plans = {p.key: p for p in org.exec(select(InspectionPlan)).all()}
    assert {p.source for p in plans.values()} == {"regulator"}
    assert {p.cadence for p in plans.values()} == {"monthly", "quarterly"}
    materialize(org, as_of=T0)
    task = org.exec(select(InspectionTask).where(InspectionTask.code.like("JH-%jinhua/2020-09"))).one()
    from tests.states.test_inspection import checklist_codes

    codes = checklist_codes(org, task.template_id)
    results = [{"item": c, "outcome": "pass"} for c in codes]
    results[0] = {"item": codes[0], "outcome": "fail", "note": "主要负责人未经考核"}
    engine.fire(org, INSPECTION, task.id, "submit", actor="qian.jianguan", as_of=T0,
                data={"results": results})
    found = org.exec(select(Hazard).where(Hazard.inspection_task_id == task.id)).one()
    assert found.source == "regulator" and found.grade == "major"
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_sweep_records_missed_duties_and_escalates_listing_by_working_days(org):
    _, lid = _listed(org)  # deadline T0 + 120 days
    engine.fire(org, LISTING, lid, "file", actor="qian.jianguan", as_of=T0)
    first = sweep(org, as_of=datetime(2020, 10, 13, 2, tzinfo=UTC))
    assert first.duties_overdue == 1  # publication was due 10-12 and not done; filing was
    again = sweep(org, as_of=datetime(2020, 10, 14, 2, tzinfo=UTC))
    assert again.duties_overdue == 0
    deadline = T0 + timedelta(days=120)
    levels = [sweep(org, as_of=deadline + timedelta(days=d)).listing_escalations
              for d in (1, 2, 15, 40, 41)]  # 春节 2021 falls in between
    assert levels == [{1: 1}, {}, {2: 1}, {3: 1}, {}]
    org.expire_all()
    assert org.get(Listing, lid).escalation_level == 3
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_statistics_reports_are_due_duties(org):
    from models import StatReport
    from states.jobs.stat_reports import materialize_reports
    from states.workflows.stat_report import STAT_REPORT

    assert materialize_reports(org, as_of=datetime(2020, 1, 2, 2, tzinfo=UTC)) == 4  # Q4+2019
    day = datetime(2020, 10, 1, 2, tzinfo=UTC)
    assert materialize_reports(org, as_of=day) == 2  # 2020-Q3; 2019 is already there
    assert materialize_reports(org, as_of=day + timedelta(days=3)) == 0
    rows = {r.code: r for r in org.exec(select(StatReport)).all()}
    q3 = rows["jinhua/2020-Q3"]
    assert q3.due_at.date().isoformat() == "2020-10-15"  # end of 10-15 local = 10-15 16:00Z
    assert rows["jinhua/2019"].due_at.date().isoformat() == "2020-01-31"
    late = sweep(org, as_of=datetime(2020, 10, 16, 2, tzinfo=UTC))
    assert late.reports_overdue == 6  # 2019-Q4, 2019 and 2020-Q3, for both enterprises
    with pytest.raises(PermissionDenied):
        engine.fire(org, STAT_REPORT, q3.id, "submit", actor="li.anquan", as_of=T0)
    done = engine.fire(org, STAT_REPORT, q3.id, "submit", actor="wang.zhuren",
                       as_of=datetime(2020, 10, 17, 2, tzinfo=UTC), data={"summary": "已签字"})
    assert done.to_state == "submitted"
    assert verify(org.connection()).ok and replay(org.connection()).ok


@pytest.mark.parametrize("case", ["no hazard", "unknown unit", "deadline past", "bad level",
                                  "unknown duty", "order no reason", "plan bad year",
                                  "plan unknown department"])
def test_bad_input_on_the_regulator_side_changes_nothing(org, case):
    from core.errors import NotFound, SafeloopError
    from tests.helpers import table_counts

    _, lid = _listed(org)
    before = table_counts(org)
    attempts = {
        "no hazard": lambda: engine.create(org, LISTING, actor="qian.jianguan", as_of=T0,
                                           data={"unit": "jinhua-team-tank", "hazard": "YH-9"}),
        "unknown unit": lambda: engine.create(org, SUSPENSION, actor="qian.jianguan", as_of=T0,
                                              data={"unit": "nowhere", "reason": "x"}),
        "deadline past": lambda: engine.fire(org, LISTING, lid, "request_extension",
                                             actor="wang.zhuren", as_of=T0, comment="x",
                                             data={"deadline": T0 - timedelta(days=1)}),
        "bad level": lambda: engine.fire(org, LISTING, lid, "escalate", actor="qian.jianguan",
                                         as_of=T0, data={"level": 4}),
        "unknown duty": lambda: engine.fire(org, LISTING, lid, "duty_overdue", actor="system",
                                            as_of=T0, data={"duty": "dance"}),
        "order no reason": lambda: engine.create(org, SUSPENSION, actor="qian.jianguan",
                                                 as_of=T0, data={"unit": "xinfeng-plant"}),
        "plan bad year": lambda: engine.create(org, ANNUAL_PLAN, actor="qian.jianguan",
                                               as_of=T0, data={"jurisdiction": "xz-edz",
                                                               "year": 1900, "entries": []}),
        "plan unknown department": lambda: engine.create(
            org, ANNUAL_PLAN, actor="qian.jianguan", as_of=T0, data={
                "jurisdiction": "xz-edz", "year": 2020, "department": "nope",
                "entries": [{"enterprise": "jinhua", "frequency": 1}]}),
    }
    with pytest.raises(SafeloopError) as info:
        attempts[case]()
    assert isinstance(info.value, (InvalidInput, NotFound, GuardFailed))
    assert info.value.message  # a zh-CN message
    assert table_counts(org) == before
