"""The risk-point rules as a table: every state x event x role through the real engine, against
this file's own oracle of where each event goes; refusals name the state or the roles, in
Chinese, and write nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.errors import PermissionDenied, TransitionNotAllowed
from models.enums import Role
from states import engine
from states.workflows.risk import RISK, STATES
from tests.helpers import NOW, is_zh, row_counts

LATER = NOW + timedelta(days=400)  # past the yearly review date, so due_review's guard passes
ROLES = [role.value for role in Role]
LEC = {"method": "lec", "factors": {"L": 3, "E": 6, "C": 15}}
INPUT: dict[str, tuple[dict[str, Any], str | None]] = {
    "revise": ({"consequences": "泄漏中毒"}, None),
    "evaluate": (LEC, None),
    "return_evaluation": ({}, "评价依据不足"),
    "approve": ({}, None),
    "due_review": ({}, None),
    "report_change": ({"trigger": "change"}, "工艺变更"),
    "retire": ({}, "设备拆除"),
}
# Oracle (DOMAIN.md "Risk grading" + the issue): state -> event -> destination.
ORACLE: dict[str, dict[str, str]] = {
    "identified": {"revise": "identified", "evaluate": "evaluated", "retire": "retired"},
    "evaluated": {"evaluate": "evaluated", "return_evaluation": "identified", "approve": "approved",
                  "retire": "retired"},
    "approved": {"due_review": "review_due", "report_change": "review_due", "retire": "retired"},
    "review_due": {"revise": "review_due", "evaluate": "evaluated", "retire": "retired"},
    "retired": {},
}
WHO: dict[str, set[str]] = {  # event -> roles allowed
    "revise": {"safety_officer", "unit_head", "principal"},
    "evaluate": {"safety_officer", "unit_head", "principal"},
    "report_change": {"safety_officer", "unit_head", "principal"},
    "return_evaluation": {"unit_head", "principal"},
    "approve": {"unit_head", "principal"},
    "retire": {"unit_head", "principal"},
    "due_review": {"system"},
}


def walk(session, state: str) -> int:
    """A risk point in jinhua-team-a brought to ``state`` by the demo org's people."""
    data = {"unit": "jinhua-team-a", "name": "循环水泵", "kind": "facility",
            "hazard_factors": ["转动部件"], "accident_types": ["机械伤害"],
            "measures": [{"kind": "engineering", "text": "防护罩完好"}]}
    rid = engine.create(session, RISK, actor="li.anquan", data=data, as_of=NOW).entity_id

    def go(event: str, actor: str, **kw: Any) -> None:
        engine.fire(session, RISK, rid, event, actor=actor, as_of=NOW, **kw)

    if state == "identified":
        return rid
    if state == "retired":
        go("retire", "wang.zhuren", comment="拆除")
        return rid
    go("evaluate", "li.anquan", data=LEC)
    if state == "evaluated":
        return rid
    go("approve", "wang.zhuren")
    if state == "review_due":
        go("report_change", "li.anquan", data={"trigger": "change"}, comment="变更")
    return rid


def test_oracle_covers_the_declared_rules():
    assert set(ORACLE) == set(STATES)
    for name, rule in RISK.events.items():
        assert set(rule.roles) == WHO[name], name
        assert {s for s in STATES if name in ORACLE[s]} == set(rule.sources), name


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("event", list(INPUT))
def test_every_state_event_role(shared, state: str, event: str):
    session, actors = shared
    for role in ROLES:
        rid = walk(session, state)
        data, reason = INPUT[event]
        before = row_counts(session)
        try:
            result = engine.fire(session, RISK, rid, event, actor=actors[role], data=data,
                                 comment=reason, as_of=LATER)
        except TransitionNotAllowed as exc:
            assert event not in ORACLE[state], (state, event, role, exc.message)
            assert f"({state})" in exc.message and is_zh(exc.message)
            assert row_counts(session) == before
            continue
        except PermissionDenied as exc:
            assert event in ORACLE[state] and role not in WHO[event], (state, event, role)
            assert is_zh(exc.message) and row_counts(session) == before
            continue
        assert event in ORACLE[state] and role in WHO[event], (state, event, role)
        assert result.to_state == ORACLE[state][event], (state, event, role)
