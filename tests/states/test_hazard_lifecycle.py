"""The hazard closed loop end to end through the engine, on every configured database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.errors import GuardFailed, InvalidInput, PermissionDenied, TransitionNotAllowed
from models import Hazard, OutboxMessage
from states.audit import verify
from tests.helpers import EVIDENCE, FULL_PLAN, NOW, assign, fire, report, walk_to


def test_general_hazard_closes_after_acceptance(org):
    hid = walk_to(org, "closed")
    hazard = org.get(Hazard, hid)
    assert hazard.state == "closed" and hazard.version == 4
    assert hazard.accepted_by_id is not None and hazard.closed_at is not None
    assert verify(org.connection()).ok


def test_major_hazard_needs_complete_six_part_plan(org):
    hid = report(org, "major").entity_id
    assert assign(org, hid).to_state == "planning"
    partial = {k: v for k, v in FULL_PLAN.items() if k != "safety_and_contingency"}
    with pytest.raises(GuardFailed, match="安全措施和应急预案"):
        fire(org, hid, "approve_plan", "wang.zhuren", data=partial)
    fire(org, hid, "draft_plan", "li.anquan", data=partial)
    result = fire(org, hid, "approve_plan", "wang.zhuren",
                  data={"safety_and_contingency": "停车检修，配备应急预案"})
    assert result.to_state == "rectifying"
    assert set(org.get(Hazard, hid).plan) == set(FULL_PLAN)


def test_acceptor_cannot_be_rectifier(org):
    hid = walk_to(org, "rectifying")
    fire(org, hid, "submit", "li.anquan")  # the safety officer rectified it himself
    with pytest.raises(GuardFailed, match="职责分离"):
        fire(org, hid, "accept", "li.anquan")
    assert fire(org, hid, "accept", "zhao.chejian").to_state == "closed"


def test_reject_loop_requires_reason(org):
    hid = walk_to(org, "pending_acceptance")
    with pytest.raises(InvalidInput, match="原因"):
        fire(org, hid, "reject", "li.anquan")
    assert fire(org, hid, "reject", "li.anquan", comment="未更换密封件").to_state == "rectifying"
    assert fire(org, hid, "submit", "sun.banzhang").to_state == "pending_acceptance"


def test_fix_on_spot_needs_evidence_and_general_grade(org):
    hid = report(org).entity_id
    with pytest.raises(InvalidInput, match="evidence"):
        fire(org, hid, "fix_on_spot", "sun.banzhang", data={})
    assert fire(org, hid, "fix_on_spot", "sun.banzhang",
                data={"evidence": EVIDENCE}).to_state == "pending_acceptance"
    major = report(org, "major").entity_id
    with pytest.raises(GuardFailed, match="重大隐患"):
        fire(org, major, "fix_on_spot", "sun.banzhang", data={"evidence": EVIDENCE})


def test_refusal_names_state_and_allowed_events(org):
    hid = walk_to(org, "closed")
    with pytest.raises(TransitionNotAllowed) as info:
        fire(org, hid, "submit", "sun.banzhang")
    assert "已销号" in info.value.message and info.value.details["allowed"] == []
    open_one = walk_to(org, "rectifying")
    with pytest.raises(TransitionNotAllowed) as info:
        fire(org, open_one, "accept", "li.anquan")
    assert "整改中" in info.value.message
    assert "escalate" in info.value.details["allowed"]


def test_roles_cover_subtree_only(org):
    other = report(org, unit="xinfeng-team-weld", actor="feng.hanjie").entity_id
    with pytest.raises(PermissionDenied):
        assign(org, other)  # li.anquan is safety officer of another enterprise's plant
    assert fire(org, other, "assign", "chen.anyuan",
                data={"owner": "feng.hanjie", "deadline": NOW + timedelta(days=2)}).version == 2


def test_regrade_to_major_returns_to_planning(org):
    hid = walk_to(org, "rectifying")
    result = fire(org, hid, "regrade", "li.anquan", data={"grade": "major"}, comment="需停产整改")
    assert result.to_state == "planning"
    assert org.get(Hazard, hid).grade == "major"


def test_outbox_rows_written_with_transition(org):
    hid = report(org).entity_id
    assign(org, hid)
    rows = org.exec(select(OutboxMessage).where(OutboxMessage.entity_id == hid)).all()
    assert {r.event for r in rows} == {"report", "assign"}
    assert any(r.recipient.startswith("person:") for r in rows if r.event == "assign")
