"""Inspection tasks: materialisation per period, the task machine, failed items → hazards,
and the deadline sweep's reminders, escalation ladder and missed tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.calendar import WorkCalendar
from core.errors import GuardFailed, InvalidInput
from models import AuditEntry, Hazard, InspectionTask
from safeloop import checklists, orgfile, plans
from states import engine
from states.audit import verify
from states.jobs.materialize import materialize
from states.jobs.replay import replay
from states.jobs.sweep import sweep, target_level
from states.workflows.hazard import HAZARD
from states.workflows.inspection import INSPECTION, checklist
from tests.helpers import assign, report

MON = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


@pytest.fixture
def planned(org):
    """The demo org with shipped checklists and one plan per tier."""
    checklists.load_shipped(org)
    start = date(2026, 1, 1)
    for key, unit, extra in (
        ("team-a", "jinhua-team-a", {"assignee": "sun.banzhang"}),
        ("synth", "jinhua-ws-synth", {}),
        ("plant1", "jinhua-plant1", {}),
        ("group", "jinhua-group", {}),
        ("team-b-workdays", "jinhua-team-b", {"calendar_mode": "working_days"}),
    ):
        plans.add(org, plans.PlanSpec(key, unit, active_from=start, **extra))
    return org


def _task(session, code: str) -> InspectionTask:
    return session.exec(select(InspectionTask).where(InspectionTask.code == code)).scalars().one()


def _results(session, task: InspectionTask, failures: dict[str, str]) -> list[dict]:
    items = checklist_codes(session, task.template_id)
    return [{"item": c, "outcome": "fail", "note": failures[c]} if c in failures
            else {"item": c, "outcome": "pass"} for c in items]


def checklist_codes(session, template_id: int) -> list[str]:
    from models import ChecklistItem

    codes = list(session.connection().execute(
        select(ChecklistItem.code).where(ChecklistItem.template_id == template_id)
        .order_by(ChecklistItem.position)).scalars())
    session.rollback()
    return codes


def test_materialize_one_task_per_plan_and_period(planned):
    report1 = materialize(planned, as_of=MON)
    assert report1.created == {"2026-11-02": 2, "2026-W45": 1, "2026-11": 1, "2026-Q4": 1}
    assert materialize(planned, as_of=MON + timedelta(hours=5)).total == 0
    tuesday = materialize(planned, as_of=MON + timedelta(days=1))
    assert tuesday.created == {"2026-11-03": 2}
    codes = set(planned.exec(select(InspectionTask.code)).scalars())
    assert {"team-a/2026-11-02", "synth/2026-W45", "plant1/2026-11", "group/2026-Q4"} <= codes
    batches = planned.connection().execute(
        select(func.count()).where(AuditEntry.entity_type == "inspection_batch")).scalar_one()
    assert batches == 5
    assert verify(planned.connection()).ok and replay(planned.connection()).ok


def test_working_days_plan_skips_holidays_and_weekends(planned):
    materialize(planned, as_of=datetime(2026, 11, 7, 1, tzinfo=UTC))  # a Saturday
    codes = set(planned.exec(select(InspectionTask.code)).scalars())
    assert "team-a/2026-11-07" in codes and "team-b-workdays/2026-11-07" not in codes
    materialize(planned, as_of=datetime(2026, 10, 2, 1, tzinfo=UTC))  # National Day holiday
    codes = set(planned.exec(select(InspectionTask.code)).scalars())
    assert "team-b-workdays/2026-10-02" not in codes


def test_uncovered_year_warns_and_still_materialises_other_plans(planned):
    result = materialize(planned, as_of=datetime(2031, 3, 3, 1, tzinfo=UTC),
                         calendar=WorkCalendar())
    assert any("2031" in w for w in result.warnings)
    assert "2031-03-03" in result.created and result.created["2031-03-03"] == 1


def test_submit_with_failures_opens_linked_hazards_in_same_transaction(planned):
    materialize(planned, as_of=MON)
    task = _task(planned, "team-a/2026-11-02")
    engine.fire(planned, INSPECTION, task.id, "start", actor="sun.banzhang", as_of=MON)
    results = _results(planned, task, {"T02": "两名操作工未戴防护眼镜", "T05": "3 号泵密封渗漏"})
    result = engine.fire(planned, INSPECTION, task.id, "submit", actor="sun.banzhang",
                         data={"results": results}, as_of=MON)
    assert result.to_state == "submitted"
    hazards = planned.exec(select(Hazard).where(Hazard.inspection_task_id == task.id)).scalars().all()
    assert sorted(h.checklist_item for h in hazards) == ["T02", "T05"]
    assert all(h.source == "inspection" and h.state == "reported" for h in hazards)
    seqs = planned.connection().execute(
        select(AuditEntry.event).where(AuditEntry.seq > result.audit_seq - 1)
        .order_by(AuditEntry.seq)).scalars().all()
    assert seqs == ["submit", "report", "report"]
    assert verify(planned.connection()).ok and replay(planned.connection()).ok


def test_incomplete_or_unexplained_results_refused_and_nothing_written(planned):
    materialize(planned, as_of=MON)
    task = _task(planned, "team-a/2026-11-02")
    results = _results(planned, task, {})
    with pytest.raises(GuardFailed, match="未填写"):
        engine.fire(planned, INSPECTION, task.id, "submit", actor="sun.banzhang",
                    data={"results": results[:-1]}, as_of=MON)
    results[0] = {"item": results[0]["item"], "outcome": "fail"}
    with pytest.raises(GuardFailed, match="须说明问题"):
        engine.fire(planned, INSPECTION, task.id, "submit", actor="sun.banzhang",
                    data={"results": results}, as_of=MON)
    with pytest.raises(InvalidInput):
        engine.fire(planned, INSPECTION, task.id, "submit", actor="sun.banzhang",
                    data={"results": [{"item": "T01", "outcome": "maybe"}]}, as_of=MON)
    assert planned.exec(select(func.count()).select_from(Hazard)).scalars().one() == 0
    assert _task(planned, "team-a/2026-11-02").version == 1


def test_reviewer_must_not_be_inspector(planned):
    materialize(planned, as_of=MON)
    task = _task(planned, "synth/2026-W45")
    engine.fire(planned, INSPECTION, task.id, "start", actor="zhao.chejian", as_of=MON)
    engine.fire(planned, INSPECTION, task.id, "submit", actor="zhao.chejian", as_of=MON,
                data={"results": _results(planned, task, {})})
    with pytest.raises(GuardFailed, match="职责分离"):
        engine.fire(planned, INSPECTION, task.id, "review", actor="zhao.chejian", as_of=MON)
    assert engine.fire(planned, INSPECTION, task.id, "review", actor="li.anquan",
                       as_of=MON).to_state == "reviewed"


def test_assigned_task_only_for_its_inspector(planned, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "jurisdictions:\n  - {id: xz, name: 忻州市}\n"
        "people:\n  - id: ma.xunjian\n    name: 马巡检\n"
        "    roles: [{role: inspector, unit: jinhua-ws-synth}]\n", encoding="utf-8")
    orgfile.load(planned, extra)
    materialize(planned, as_of=MON)
    task = _task(planned, "team-a/2026-11-02")
    with pytest.raises(GuardFailed, match="指定检查人"):
        engine.fire(planned, INSPECTION, task.id, "start", actor="ma.xunjian", as_of=MON)
    other = _task(planned, "team-b-workdays/2026-11-02")  # no assignee: any inspector of it
    assert engine.fire(planned, INSPECTION, other.id, "start", actor="ma.xunjian",
                       as_of=MON).to_state == "in_progress"


def test_sweep_marks_missed_only_after_period_end(planned):
    materialize(planned, as_of=MON)
    assert sweep(planned, as_of=MON + timedelta(hours=10)).missed == 0
    nextday = sweep(planned, as_of=MON + timedelta(days=1))
    assert nextday.missed == 2  # both daily tasks of Monday
    assert sweep(planned, as_of=MON + timedelta(days=1, hours=1)).missed == 0
    task = _task(planned, "team-a/2026-11-02")
    with pytest.raises(GuardFailed, match="尚未结束"):
        engine.fire(planned, INSPECTION, _task(planned, "synth/2026-W45").id, "miss",
                    actor="system", as_of=MON)
    assert task.state == "missed"


def test_escalation_ladder_each_level_once(org):
    hid = report(org).entity_id
    assign(org, hid)  # deadline NOW + 7 days (2026-11-09 02:00 UTC)
    deadline = datetime(2026, 11, 9, 2, 0, tzinfo=UTC)
    levels = []
    for days in (-0.5, 0, 1, 3, 3, 5, 7, 8, 30):
        result = sweep(org, as_of=deadline + timedelta(days=days))
        levels.append(dict(result.escalations))
    assert levels == [{}, {1: 1}, {}, {2: 1}, {}, {}, {3: 1}, {}, {}]
    events = org.connection().execute(
        select(AuditEntry.data).where(AuditEntry.event == "escalate")).scalars().all()
    assert [e for e in events] == ['{"level":1}', '{"level":2}', '{"level":3}']


def test_major_hazard_escalates_straight_to_regulator(org):
    hid = report(org, "major").entity_id
    assign(org, hid)
    result = sweep(org, as_of=datetime(2026, 11, 10, tzinfo=UTC))
    assert result.escalations == {3: 1}
    assert org.get(Hazard, hid).escalation_level == 3
    assert target_level("major", datetime(2026, 1, 1, tzinfo=UTC),
                        datetime(2026, 1, 1, tzinfo=UTC), (0, 3, 7)) == 3


def test_due_soon_reminder_once_per_deadline(org):
    hid = report(org).entity_id
    assign(org, hid)
    deadline = datetime(2026, 11, 9, 2, 0, tzinfo=UTC)
    assert sweep(org, as_of=deadline - timedelta(hours=30)).reminders == 0
    assert sweep(org, as_of=deadline - timedelta(hours=20)).reminders == 1
    assert sweep(org, as_of=deadline - timedelta(hours=10)).reminders == 0
    engine.fire(org, HAZARD, hid, "extend_deadline", actor="zhao.chejian", comment="备件未到",
                data={"deadline": deadline + timedelta(days=5)},
                as_of=deadline - timedelta(hours=9))
    assert sweep(org, as_of=deadline + timedelta(days=4, hours=6)).reminders == 1
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_checklist_lookup_is_cached_per_batch(planned):
    materialize(planned, as_of=MON)
    task = _task(planned, "team-a/2026-11-02")
    from states.workflow import Context

    ctx = Context("x", None, "system", MON, lambda k: 0, planned.connection(), {})
    first = checklist(ctx, task.template_id)
    assert checklist(ctx, task.template_id) is first and "T01" in first


def test_task_assigned_to_a_role_is_inspected_by_that_role(planned, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "jurisdictions:\n  - {id: xz, name: 忻州市}\n"
        "people:\n  - id: ma.xunjian\n    name: 马巡检\n"
        "    roles: [{role: inspector, unit: jinhua-ws-storage}]\n", encoding="utf-8")
    orgfile.load(planned, extra)
    plans.add(planned, plans.PlanSpec("tank-by-head", "jinhua-team-tank", assignee_role="unit_head",
                                      active_from=date(2026, 1, 1)))
    materialize(planned, as_of=MON)
    task = _task(planned, "tank-by-head/2026-11-02")
    with pytest.raises(GuardFailed, match="单位负责人"):
        engine.fire(planned, INSPECTION, task.id, "start", actor="ma.xunjian", as_of=MON)
