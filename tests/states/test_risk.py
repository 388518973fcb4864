"""The risk-point workflow on both databases: rules and authorization, grade changes in the
audit trail, yearly re-evaluation by the sweep, checklist derivation per tier (from the next
period on), hazards linked to the risk point, and bad input refused with nothing written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import GuardFailed, InvalidInput, NotFound, PermissionDenied, TransitionNotAllowed
from models import AuditEntry, ChecklistItem, Hazard, InspectionPlan, InspectionTask, RiskPoint
from safeloop import checklists, plans, risks
from states import engine
from states.audit import verify
from states.jobs import risk_checklists
from states.jobs.materialize import materialize
from states.jobs.replay import replay
from states.jobs.sweep import sweep
from states.workflows.inspection import INSPECTION
from states.workflows.risk import RISK
from tests.helpers import row_counts

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
REGISTER = Path(__file__).resolve().parents[2] / "safeloop" / "data" / "demo_risks.yaml"
PLAN_UNITS = {"group": "jinhua-group", "plant": "jinhua-plant1", "synth": "jinhua-ws-synth",
              "stor": "jinhua-ws-storage", "ta": "jinhua-team-a", "tb": "jinhua-team-b",
              "tank": "jinhua-team-tank"}


def point(unit: str = "jinhua-team-tank", name: str = "液氨储罐", **extra) -> dict:
    return {"unit": unit, "name": name, "kind": "facility", "hazard_factors": ["液氨泄漏"],
            "accident_types": ["中毒和窒息"],
            "measures": [{"kind": "engineering", "text": "氨气泄漏报警仪完好"},
                         {"kind": "ppe", "text": "佩戴防毒面具"}], **extra}


def identify(session, actor: str = "li.anquan", **kw) -> int:
    return engine.create(session, RISK, actor=actor, data=point(**kw), as_of=NOW).entity_id


def fire(session, rid: int, event: str, actor: str, at: datetime = NOW, **kw):
    return engine.fire(session, RISK, rid, event, actor=actor, as_of=at, **kw)


def lec(l_: float, e: float, c: float) -> dict:
    return {"method": "lec", "factors": {"L": l_, "E": e, "C": c}}


def graded(session, grade_factors: dict, unit: str = "jinhua-team-tank", name: str = "液氨储罐",
           approver: str = "wang.zhuren") -> int:
    rid = identify(session, unit=unit, name=name)
    fire(session, rid, "evaluate", "li.anquan", data=grade_factors)
    fire(session, rid, "approve", approver)
    return rid


def audit_data(session, rid: int, event: str) -> list[dict]:
    rows = session.connection().execute(
        select(AuditEntry.data).where(AuditEntry.entity_type == "risk", AuditEntry.entity_id == rid,
                                      AuditEntry.event == event).order_by(AuditEntry.seq)).scalars()
    found = [json.loads(r) for r in rows]
    session.rollback()
    return found


def risk_row(session, rid: int) -> RiskPoint:
    row = session.exec(select(RiskPoint).where(RiskPoint.id == rid)).scalars().one()
    session.rollback()
    return row


@pytest.fixture
def planned(org):
    checklists.load_shipped(org)
    for key, unit in PLAN_UNITS.items():
        plans.add(org, plans.PlanSpec(f"p-{key}", unit, active_from=date(2026, 1, 1)))
    return org


def task_by_code(session, code: str) -> InspectionTask:
    task = session.exec(select(InspectionTask).where(InspectionTask.code == code)).scalars().one()
    session.rollback()
    return task


def plan_risks(session) -> dict[str, set[str]]:
    """Plan key -> codes of the risk points whose items its current checklist carries."""
    rows = session.connection().execute(
        select(InspectionPlan.key, RiskPoint.code)
        .join(ChecklistItem, ChecklistItem.template_id == InspectionPlan.template_id)
        .join(RiskPoint, RiskPoint.id == ChecklistItem.risk_point_id)).all()
    session.rollback()
    found: dict[str, set[str]] = {k: set() for k in (f"p-{p}" for p in PLAN_UNITS)}
    for key, code in rows:
        found[key].add(code)
    return found


# ---- the machine and who may do what ---------------------------------------------------------


def test_lifecycle_with_grades_in_the_audit_trail(org):
    rid = identify(org)
    first = fire(org, rid, "evaluate", "li.anquan", data=lec(3, 6, 15))  # 270: 较大
    assert first.to_state == "evaluated"
    assert risk_row(org, rid).grade == "significant"
    again = fire(org, rid, "evaluate", "li.anquan", data=lec(3, 6, 40))  # 720: 重大
    data = audit_data(org, rid, "evaluate")
    assert data[0]["grade"] == "significant" and "previous_grade" not in data[0]
    assert data[1] == {"method": "lec", "factors": {"L": 3.0, "E": 6.0, "C": 40.0}, "note": "",
                       "score": 720.0, "grade": "major", "previous_grade": "significant",
                       "bands": {"major": 320.0, "significant": 160.0, "general": 70.0}}
    assert again.to_state == "evaluated"
    fire(org, rid, "approve", "wang.zhuren")
    row = risk_row(org, rid)
    assert (row.state, row.approved_grade, row.checklist_dirty) == ("approved", "major", True)
    assert row.review_due is not None
    assert audit_data(org, rid, "approve") == [{"grade": "major", "control_unit": "jinhua-group"}]
    # after an accident: re-evaluated lower, approved; the approval names old and new grade
    fire(org, rid, "report_change", "li.anquan", data={"trigger": "accident"}, comment="罐区泄漏")
    assert risk_row(org, rid).review_reason == "发生事故或险情"
    fire(org, rid, "evaluate", "li.anquan", data=lec(1, 6, 15))  # 90: 一般
    assert risk_row(org, rid).approved_grade == "major"  # in force until approved
    fire(org, rid, "approve", "wang.zhuren")
    assert audit_data(org, rid, "approve")[-1] == {
        "grade": "general", "previous_grade": "major", "control_unit": "jinhua-ws-storage"}
    fire(org, rid, "retire", "wang.zhuren", comment="储罐拆除")
    assert risk_row(org, rid).state == "retired"
    assert verify(org.connection()).ok
    report = replay(org.connection())
    assert report.ok, report.differences


def test_control_unit_follows_the_grade(org):
    cases = {(3, 6, 40): "jinhua-group", (3, 6, 15): "jinhua-plant1", (1, 6, 15): "jinhua-ws-storage",
             (1, 6, 3): "jinhua-team-tank"}
    for n, (factors, unit) in enumerate(cases.items()):
        rid = graded(org, lec(*factors), name=f"风险点{n}")
        assert audit_data(org, rid, "approve")[0]["control_unit"] == unit
    # a blue risk registered on the plant itself is controlled there, not by a team
    rid = graded(org, lec(1, 6, 3), unit="jinhua-plant1", name="办公楼")
    assert audit_data(org, rid, "approve")[0]["control_unit"] == "jinhua-plant1"


def test_authorization_and_separation_of_duties(org):
    with pytest.raises(PermissionDenied) as denied:
        identify(org, actor="sun.banzhang")  # an inspector does not register risks
    assert "安全管理员" in denied.value.message
    rid = identify(org, unit="jinhua-team-a", name="氨合成塔")
    fire(org, rid, "evaluate", "zhao.chejian", data={"method": "ls", "factors": {"L": 3, "S": 5}})
    with pytest.raises(PermissionDenied):
        fire(org, rid, "approve", "li.anquan")  # a safety officer cannot approve
    with pytest.raises(GuardFailed) as guard:
        fire(org, rid, "approve", "zhao.chejian")  # the evaluator cannot approve their own
    assert "评价人本人" in guard.value.message
    with pytest.raises(PermissionDenied):
        fire(org, rid, "approve", "wu.chuyun")  # other workshop's inspector
    with pytest.raises(PermissionDenied):
        fire(org, rid, "approve", "qian.jianguan")  # a regulator does not approve enterprise risks
    assert fire(org, rid, "approve", "wang.zhuren").to_state == "approved"


def test_not_allowed_names_state_and_allowed_events(org):
    rid = identify(org)
    with pytest.raises(TransitionNotAllowed) as caught:
        fire(org, rid, "approve", "wang.zhuren")
    message = caught.value.message
    assert "已辨识" in message and "identified" in message and "evaluate" in message
    assert "retire" in message


def test_reasons_required_and_invented_grades_refused(org):
    rid = identify(org)
    before = row_counts(org)
    with pytest.raises(InvalidInput):
        fire(org, rid, "retire", "wang.zhuren")
    with pytest.raises(InvalidInput) as forged:  # the grade is the engine's to compute
        fire(org, rid, "evaluate", "li.anquan", data={**lec(1, 6, 15), "grade": "low"})
    assert "grade" in forged.value.message and "计算" in forged.value.message
    with pytest.raises(InvalidInput) as bad:
        fire(org, rid, "evaluate", "li.anquan", data=lec(7, 6, 15))
    assert "10、6、3、1、0.5、0.2、0.1" in bad.value.message
    assert row_counts(org) == before


@pytest.mark.parametrize(("change", "words"), [
    ({"accident_types": ["爆炸"]}, ["GB 6441", "容器爆炸"]),
    ({"measures": []}, ["measures"]),
    ({"measures": [{"kind": "luck", "text": "x"}]}, ["measures.0.kind"]),
    ({"kind": "building"}, ["kind"]),
    ({"hazard_factors": []}, ["hazard_factors"]),
    ({"area": "火星基地"}, ["火星基地", "risk area"]),
    ({"unit": "no-such-unit"}, ["no-such-unit"]),
    ({"responsible": "nobody"}, ["nobody"]),
    ({"colour": "red"}, ["colour"]),
])
def test_bad_identification_refused_with_nothing_written(org, change, words):
    before = row_counts(org)
    with pytest.raises((InvalidInput, GuardFailed, NotFound)) as caught:
        engine.create(org, RISK, actor="li.anquan", data={**point(), **change}, as_of=NOW)
    for word in words:
        assert word in caught.value.message
    assert row_counts(org) == before


def test_sweep_makes_approved_risks_due_for_review_yearly(org):
    rid = graded(org, lec(3, 6, 15))
    assert sweep(org, as_of=NOW + timedelta(days=364)).risk_reviews == 0
    report = sweep(org, as_of=NOW + timedelta(days=366))
    assert report.risk_reviews == 1
    row = risk_row(org, rid)
    assert (row.state, row.review_reason) == ("review_due", "定期复评")
    assert sweep(org, as_of=NOW + timedelta(days=367)).risk_reviews == 0  # once
    fire(org, rid, "evaluate", "li.anquan", at=NOW + timedelta(days=368), data=lec(3, 6, 15))
    assert risk_row(org, rid).state == "evaluated"


# ---- checklists from risk (对表检查) ------------------------------------------------------------


def test_risk_items_reach_its_control_tier_and_below(planned):
    red = graded(planned, lec(3, 6, 40), name="液氨储罐")  # team-tank, red
    blue = graded(planned, lec(1, 6, 3), unit="jinhua-team-a", name="循环水泵")
    yellow = graded(planned, {"method": "ls", "factors": {"L": 2, "S": 4}}, unit="jinhua-plant1",
                    name="高压配电室")
    report = risk_checklists.sync(planned, as_of=NOW)
    assert report.enterprises == 1 and report.plans_changed == 5
    codes = {rid: risk_row(planned, rid).code for rid in (red, blue, yellow)}
    assert plan_risks(planned) == {
        "p-group": {codes[red]}, "p-plant": {codes[red], codes[yellow]}, "p-stor": {codes[red]},
        "p-tank": {codes[red]}, "p-ta": {codes[blue]}, "p-synth": set(), "p-tb": set()}
    assert risk_checklists.sync(planned, as_of=NOW).plans_changed == 0  # nothing dirty now
    # the plan keeps its own items first, then one item per measure of each risk
    plan = planned.exec(select(InspectionPlan).where(InspectionPlan.key == "p-tank")).scalars().one()
    items = planned.exec(select(ChecklistItem).where(ChecklistItem.template_id == plan.template_id)
                         .order_by(ChecklistItem.position)).scalars().all()
    assert items[0].code == "T01" and plan.base_template_id is not None
    assert [(i.code, i.category) for i in items if i.risk_point_id] == [
        (f"{codes[red]}.1", "thing"), (f"{codes[red]}.2", "behaviour")]
    assert "【液氨储罐】" in items[-1].text and "重大风险" in items[-1].basis
    derived = planned.connection().execute(select(AuditEntry.data).where(
        AuditEntry.event == "derive_checklist", AuditEntry.entity_code == "p-plant")).scalars().all()
    assert json.loads(derived[-1])["risks_added"] == sorted([codes[red], codes[yellow]])
    planned.rollback()
    assert verify(planned.connection()).ok


def test_regrading_changes_plans_from_the_next_period(planned):
    rid = graded(planned, lec(3, 6, 40))  # red: on every tier's plan up its line
    risk_checklists.sync(planned, as_of=NOW)
    materialize(planned, as_of=NOW)
    task = task_by_code(planned, "p-stor/2026-W45")
    old_template = task.template_id
    fire(planned, rid, "report_change", "li.anquan", data={"trigger": "change"}, comment="储量减少")
    fire(planned, rid, "evaluate", "li.anquan", data=lec(1, 6, 3))  # blue now
    fire(planned, rid, "approve", "wang.zhuren")
    risk_checklists.sync(planned, as_of=NOW)
    code = risk_row(planned, rid).code
    assert plan_risks(planned)["p-stor"] == set() and plan_risks(planned)["p-tank"] == {code}
    removed = planned.connection().execute(select(AuditEntry.data).where(
        AuditEntry.event == "derive_checklist", AuditEntry.entity_code == "p-stor")).scalars().all()
    assert json.loads(removed[-1])["risks_removed"] == [code]
    planned.rollback()
    # this week's task keeps the checklist it was created with; next week's has the new one
    same = planned.exec(select(InspectionTask).where(InspectionTask.id == task.id)).scalars().one()
    assert same.template_id == old_template
    planned.rollback()
    materialize(planned, as_of=NOW + timedelta(days=7))
    nxt = planned.exec(select(InspectionTask).where(InspectionTask.code == "p-stor/2026-W46")).scalars().one()
    plan = planned.exec(select(InspectionPlan).where(InspectionPlan.key == "p-stor")).scalars().one()
    assert nxt.template_id == plan.template_id != old_template
    assert plan.base_template_id is None  # back on its own template
    planned.rollback()


def test_failed_risk_item_opens_hazard_linked_to_the_risk(planned):
    rid = graded(planned, lec(3, 6, 40))
    risk_checklists.sync(planned, as_of=NOW)
    materialize(planned, as_of=NOW)
    task = task_by_code(planned, "p-tank/2026-11-02")
    codes = list(planned.connection().execute(select(ChecklistItem.code).where(
        ChecklistItem.template_id == task.template_id).order_by(ChecklistItem.position)).scalars())
    planned.rollback()
    risk_code = risk_row(planned, rid).code
    failed = f"{risk_code}.1"
    results = [{"item": c, "outcome": "fail", "note": "报警仪显示故障"} if c == failed
               else {"item": c, "outcome": "pass"} for c in codes]
    engine.fire(planned, INSPECTION, task.id, "submit", actor="wu.chuyun",
                data={"results": results}, as_of=NOW)
    hazard = planned.exec(select(Hazard).where(Hazard.inspection_task_id == task.id)).scalars().one()
    assert (hazard.risk_point_id, hazard.checklist_item, hazard.category) == (rid, failed, "thing")
    hazard_code = hazard.code
    planned.rollback()
    from typer.testing import CliRunner

    from safeloop.cli.main import app

    url = planned.get_bind().url.render_as_string(hide_password=False)
    shown = CliRunner().invoke(app, ["--db", url, "hazard", "show", hazard_code, "--json"])
    assert json.loads(shown.output)["risk_point"] == risk_code
    assert replay(planned.connection()).ok


# ---- the register file and areas ---------------------------------------------------------------


def test_register_file_loads_areas_and_points_idempotently(org):
    first = risks.load_register(org, REGISTER, actor="li.anquan", as_of=NOW)
    assert (first.areas, len(first.created or []), first.evaluated) == (8, 8, 8)
    again = risks.load_register(org, REGISTER, actor="li.anquan", as_of=NOW)
    assert (len(again.created or []), len(again.skipped or [])) == (0, 8)
    drawing = risks.risk_map(org, "jinhua", as_of=date(2026, 11, 2), zone="Asia/Shanghai")
    by_name = {a.name: a for a in drawing.areas}
    assert by_name["液氨储罐区"].points[0][2] == "major" and by_name["成品仓库"].points == []
    name, views = risks.risk_views(org, "jinhua", zone="Asia/Shanghai")
    assert name == "山西晋华化工集团有限公司" and len(views) == 8
    assert views[0].area == "液氨储罐区" and views[0].responsible == "吴储运"


def test_bad_register_names_the_line_and_writes_nothing(org, tmp_path):
    text = REGISTER.read_text(encoding="utf-8").replace("factors: {L: 3, E: 6, C: 40}",
                                                        "factors: {L: 3, E: 6, C: 41}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    before = row_counts(org)
    with pytest.raises(InvalidInput) as caught:
        risks.load_register(org, bad, actor="li.anquan", as_of=NOW)
    assert "bad.yaml 第 " in caught.value.message and "C" in caught.value.message
    bad.write_text(REGISTER.read_text(encoding="utf-8").replace("unit: jinhua-team-a\n",
                                                                "unit: xinfeng-team-weld\n", 1))
    with pytest.raises(InvalidInput) as caught:
        risks.load_register(org, bad, actor="li.anquan", as_of=NOW)
    assert "xinfeng-team-weld" in caught.value.message and "不属于" in caught.value.message
    with pytest.raises(PermissionDenied):
        risks.load_register(org, REGISTER, actor="feng.hanjie", as_of=NOW)
    with pytest.raises(PermissionDenied) as caught:  # the team's unit head, not the plant's
        risks.load_register(org, REGISTER, actor="zhao.chejian", as_of=NOW)
    assert "jinhua-team-tank" in caught.value.message
    assert row_counts(org) == before


@pytest.mark.parametrize("polygon", ["1,1 2,2", "1,1 2,x 3,3", "1 2 3"])
def test_bad_polygons_refused(polygon):
    with pytest.raises(InvalidInput):
        risks.parse_polygon(polygon)


def test_revised_measures_reach_the_checklist(planned):
    rid = graded(planned, lec(1, 6, 3), unit="jinhua-team-a", name="循环水泵")  # blue: team only
    risk_checklists.sync(planned, as_of=NOW)
    fire(planned, rid, "report_change", "li.anquan", data={"trigger": "change"}, comment="更换新泵")
    measures = [{"kind": "engineering", "text": "新泵联轴器防护罩完好"},
                {"kind": "management", "text": "泵房地面积水及时清理"},
                {"kind": "training", "text": "岗位人员熟悉新泵操作规程"}]
    fire(planned, rid, "revise", "li.anquan", data={"measures": measures})
    assert risk_row(planned, rid).checklist_dirty
    assert risk_checklists.sync(planned, as_of=NOW).plans_changed == 1
    plan = planned.exec(select(InspectionPlan).where(InspectionPlan.key == "p-ta")).scalars().one()
    texts = list(planned.connection().execute(select(ChecklistItem.text).where(
        ChecklistItem.template_id == plan.template_id, ChecklistItem.risk_point_id == rid)
        .order_by(ChecklistItem.position)).scalars())
    planned.rollback()
    assert texts == [f"【循环水泵】{m['text']}" for m in measures]
    assert not risk_row(planned, rid).checklist_dirty
    with pytest.raises(TransitionNotAllowed):  # awaiting approval: return it first
        fire(planned, rid, "evaluate", "li.anquan", data=lec(1, 6, 3))
        fire(planned, rid, "revise", "li.anquan", data={"consequences": "轻伤"})


def test_two_syncs_at_once_derive_each_plan_once(planned, db_url):
    """Overlapping materialisation runs both derive: one does the work, the other finds it done."""
    import threading

    from sqlmodel import Session

    from models.db import make_engine

    graded(planned, lec(3, 6, 40))  # red on the tank team: four plans up its line
    planned.rollback()
    start, errors, reports = threading.Barrier(2), [], []

    def run() -> None:
        eng = make_engine(db_url)
        try:
            with Session(eng) as session:
                start.wait()
                reports.append(risk_checklists.sync(session, as_of=NOW).plans_changed)
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(reports) == [0, 4]
    derived = planned.connection().execute(select(AuditEntry.entity_code).where(
        AuditEntry.event == "derive_checklist")).scalars().all()
    planned.rollback()
    assert sorted(derived) == ["p-group", "p-plant", "p-stor", "p-tank"]
