"""The duty rules as a table: every state x event x role through the real engine, against this
file's own oracle (DOMAIN.md "Recurring duties" + issue 15) of where each event goes; refusals
name the state, the roles or the responsible role, in Chinese, and write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import select

from core.duty_rules import parse_pack
from core.errors import GuardFailed, PermissionDenied, TransitionNotAllowed
from core.rules import Rules, set_rules
from models.enums import Role
from models.tables import DUTY as DT
from models.tables import UNIT
from states import engine
from states.jobs.duties import materialize_duties
from states.workflows.duty import DUTY, STATES
from tests.helpers import EVIDENCE, is_zh, row_counts

ROLES = [role.value for role in Role]
# One daily duty per team, the unit head responsible, evidence required, a three-level ladder.
PACK = parse_pack("""\
kinds:
  team_check:
    name: 班组每日安全确认
    applies_to: {scope: unit, tiers: [team]}
    cadence: daily
    role: unit_head
    evidence: [确认记录]
    deadline: {rule: at, time: "08:00"}
    remind_before_hours: 2
    ladder:
      - {after_hours: 0, notify: [unit_head]}
      - {after_hours: 4, notify: [principal]}
      - {after_hours: 24, notify: [regulator]}
""", "test pack")
RULES = Rules(duties=PACK)
FIRST_DAY = datetime(2026, 1, 5, tzinfo=UTC)
INPUT: dict[str, dict[str, Any]] = {
    "complete": {"evidence": EVIDENCE}, "make_up": {"evidence": EVIDENCE}, "remind": {},
    "miss": {}, "escalate": {"level": 1},
}
# Oracle: state -> event -> destination.
ORACLE: dict[str, dict[str, str]] = {
    "due": {"complete": "done", "remind": "due", "miss": "missed"},
    "missed": {"escalate": "missed", "make_up": "made_up"},
    "done": {},
    "made_up": {},
}
WHO: dict[str, set[str]] = {  # event -> roles allowed by the rule
    "complete": {"safety_officer", "unit_head", "principal"},
    "make_up": {"safety_officer", "unit_head", "principal"},
    "remind": {"system"}, "miss": {"system"}, "escalate": {"system"},
}
# The kind names the unit head: another doer role is refused by the guard, naming it.
RESPONSIBLE = {"unit_head", "principal"}
_days = count()


def walk(session, state: str) -> tuple[int, datetime]:
    """A fresh duty of jinhua-team-a (a new day each time) brought to ``state``; its due moment."""
    set_rules(session, RULES)
    day = FIRST_DAY + timedelta(days=next(_days))
    materialize_duties(session, as_of=day, until=day, rules=RULES)
    team = session.connection().execute(select(UNIT.c.id).where(UNIT.c.key == "jinhua-team-a")).scalar_one()
    did, due = session.connection().execute(select(DT.c.id, DT.c.due_at).where(
        DT.c.unit_id == team, DT.c.period_key == day.date().isoformat())).one()
    session.rollback()
    due = due if due.tzinfo else due.replace(tzinfo=UTC)
    if state == "done":
        engine.fire(session, DUTY, did, "complete", actor="solo.head", as_of=due, data=INPUT["complete"])
    if state in ("missed", "made_up"):
        engine.fire(session, DUTY, did, "miss", actor="system", as_of=due + timedelta(minutes=1))
    if state == "made_up":
        engine.fire(session, DUTY, did, "make_up", actor="solo.head", as_of=due + timedelta(hours=1),
                    data=INPUT["make_up"])
    return did, due


def at(event: str, due: datetime) -> datetime:
    """When to fire so that the time guards pass: reminders before the deadline, the rest after."""
    return due - timedelta(hours=1) if event in ("remind", "complete") else due + timedelta(hours=1)


def test_oracle_covers_the_declared_rules():
    assert set(ORACLE) == set(STATES)
    assert set(INPUT) == set(DUTY.events)
    for name, rule in DUTY.events.items():
        assert set(rule.roles) == WHO[name], name
        assert {s for s in STATES if name in ORACLE[s]} == set(rule.sources), name


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("event", list(INPUT))
def test_every_state_event_role(shared, state: str, event: str):
    session, actors = shared
    for role in ROLES:
        did, due = walk(session, state)
        before = row_counts(session)
        try:
            result = engine.fire(session, DUTY, did, event, actor=actors[role], data=INPUT[event],
                                 as_of=at(event, due))
        except TransitionNotAllowed as exc:
            assert event not in ORACLE[state], (state, event, role, exc.message)
            assert f"({state})" in exc.message and is_zh(exc.message)
            assert row_counts(session) == before
            continue
        except PermissionDenied as exc:
            assert event in ORACLE[state] and role not in WHO[event], (state, event, role)
            assert is_zh(exc.message) and row_counts(session) == before
            continue
        except GuardFailed as exc:
            assert event in ("complete", "make_up") and role not in RESPONSIBLE, (state, event, role)
            assert "单位负责人" in exc.message and row_counts(session) == before
            continue
        assert event in ORACLE[state] and role in WHO[event], (state, event, role)
        assert role == "system" or role in RESPONSIBLE, (state, event, role)
        assert result.to_state == ORACLE[state][event], (state, event, role)


@pytest.mark.parametrize(("event", "early"), [("miss", True), ("remind", False), ("escalate", True)])
def test_time_guards_refuse_outside_their_window(shared, event: str, early: bool):
    session, _ = shared
    did, due = walk(session, "missed" if event == "escalate" else "due")
    moment = due - timedelta(hours=1) if early else due + timedelta(hours=1)
    if event == "escalate":
        moment = due - timedelta(minutes=30)  # before the deadline: no level is reached
    before = row_counts(session)
    with pytest.raises(GuardFailed) as info:
        engine.fire(session, DUTY, did, event, actor="system", data=INPUT[event], as_of=moment)
    assert is_zh(info.value.message) and row_counts(session) == before
