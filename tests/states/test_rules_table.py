"""The hazard rules as a table: every state x event x role, fired through the real engine.

The declared rules (``HAZARD.events``: sources and roles) decide *whether* an event may be fired;
this file's own oracle (from DOMAIN.md) decides *where* it goes and which guard refuses it, so a
wrong rule, a wrong branch or a guard firing where it should not all show up as a table cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from core.errors import GuardFailed, PermissionDenied, SafeloopError, TransitionNotAllowed
from models.enums import Role
from states import engine
from states.workflows.hazard import HAZARD, STATES
from tests.helpers import (
    EVIDENCE,
    FULL_PLAN,
    NOW,
    fire,
    is_zh,
    report,
    row_counts,
)

ROLES = [role.value for role in Role]
GRADES_IN = {  # which grades can stand in each state (planning exists only for major hazards)
    "reported": ("general", "major"),
    "planning": ("major",),
    "rectifying": ("general", "major"),
    "pending_acceptance": ("general", "major"),
    "accepted": ("general", "major"),  # accepted while listed (挂牌督办): awaits delisting
    "closed": ("general", "major"),
    "cancelled": ("general", "major"),
}
OTHER_GRADE = {"general": "major", "major": "general"}


def grades_for(state: str) -> tuple[str, ...]:
    if state not in GRADES_IN:
        pytest.fail(f"state {state!r} was added to HAZARD: teach GRADES_IN and walk() to reach it")
    return GRADES_IN[state]
REASON = "现场复核后确认"


def event_input(event: str, grade: str) -> tuple[dict[str, Any], str | None]:
    """Valid data (and a reason where one is required) so that guards pass where they can."""
    table: dict[str, dict[str, Any]] = {
        "assign": {"owner": "solo.rectifier", "deadline": NOW + timedelta(days=7)},
        "draft_plan": {"objectives": "消除泄漏点"},
        "approve_plan": FULL_PLAN,
        "submit": {"measures": "更换压力表"},
        "fix_on_spot": {"evidence": EVIDENCE},
        "reinspect": {"findings": "复查合格"},
        "accept": {},
        "reject": {},
        "cancel": {},
        "regrade": {"grade": OTHER_GRADE[grade]},
        "extend_deadline": {"deadline": NOW + timedelta(days=30)},
        "remind_due": {},
        "link_listing": {"listing_id": 1},
        "close": {},
        "escalate": {"level": 1},
    }
    if event not in table:
        pytest.fail(f"event {event!r} was added to HAZARD: give it input and an oracle here")
    rule = HAZARD.events[event]
    return table[event], (REASON if rule.requires_reason else None)


@dataclass(frozen=True)
class Expect:
    outcome: type[SafeloopError] | None  # None: success
    to_state: str | None = None
    guard_text: str | None = None  # a fragment of the guard's refusal


def oracle(state: str, grade: str, event: str, role: str) -> Expect:
    """What the rules say should happen, for this file's walk (owner = the solo rectifier)."""
    rule = HAZARD.events[event]
    if state not in rule.sources:
        return Expect(TransitionNotAllowed)
    if role not in rule.roles:
        return Expect(PermissionDenied)
    if event == "fix_on_spot" and grade == "major":
        return Expect(GuardFailed, guard_text="重大隐患不能现场整改")
    if event == "accept" and grade == "major" and role not in ("principal", "regulator"):
        return Expect(GuardFailed, guard_text="重大隐患须由主要负责人或监管人员验收")
    to_state = {
        "assign": "planning" if grade == "major" else "rectifying",
        "approve_plan": "rectifying",
        "submit": "pending_acceptance",
        "fix_on_spot": "pending_acceptance",
        "accept": "closed",
        "reject": "rectifying",
        "cancel": "cancelled",
        "close": "closed",
    }.get(event, state)
    if event == "regrade":
        if state == "planning":  # major -> general: no plan needed any more
            to_state = "rectifying"
        elif state == "rectifying" and grade == "general":  # -> major without a plan
            to_state = "planning"
    return Expect(None, to_state)


def allowed_for(state: str, role: str) -> list[str]:
    """The events the declared rules let this role fire from this state."""
    return sorted(n for n, r in HAZARD.events.items() if state in r.sources and role in r.roles)


def walk(session: Session, state: str, grade: str) -> int:
    """Drive a fresh hazard to ``state``; the solo rectifier owns and rectifies it."""
    hid = report(session, grade).entity_id
    if state == "reported":
        return hid
    if state == "cancelled":
        fire(session, hid, "cancel", "li.anquan", comment="误报")
        return hid
    fire(session, hid, "assign", "li.anquan",
         data={"owner": "solo.rectifier", "deadline": NOW + timedelta(days=7)})
    if state == "planning":
        return hid
    if grade == "major":
        fire(session, hid, "approve_plan", "wang.zhuren", data=FULL_PLAN)
    if state == "rectifying":
        return hid
    fire(session, hid, "submit", "solo.rectifier")
    if state == "pending_acceptance":
        return hid
    if state == "accepted":
        fire(session, hid, "link_listing", "system", data={"listing_id": 1})
    fire(session, hid, "accept", "wang.zhuren")
    return hid


CASES = [(state, event) for state in STATES for event in HAZARD.events]


def test_table_covers_every_state_and_event() -> None:
    """A new state or event must be reachable here and get an input (guards against drift)."""
    assert set(STATES) <= set(GRADES_IN)
    for event in HAZARD.events:
        event_input(event, "general")


def snapshot(session: Session, hid: int) -> tuple[str, int, dict[str, int]]:
    """The hazard's state and version and every table's row count."""
    row = engine.row_of(session, HAZARD, hid)
    return row["state"], row["version"], row_counts(session)


@pytest.mark.parametrize(("state", "event"), CASES, ids=[f"{s}-{e}" for s, e in CASES])
def test_cell(shared: tuple[Session, dict[str, str]], state: str, event: str) -> None:
    """One (state, event): every role's outcome matches the declared rules and the oracle."""
    org, solo = shared
    problems: list[str] = []
    for grade in grades_for(state):
        data, comment = event_input(event, grade)
        hid: int | None = None
        for role in ROLES:
            if hid is None:
                hid = walk(org, state, grade)
                before = snapshot(org, hid)
                assert before[0] == state
            actor = solo[role]
            expect = oracle(state, grade, event, role)
            where = f"{grade} {state} --{event}--> by {role} ({actor})"
            try:
                result = fire(org, hid, event, actor, data=data, comment=comment)
            except SafeloopError as exc:
                problems += _check_refusal(exc, expect, state, role, where)
                if snapshot(org, hid) != before:
                    problems.append(f"{where}: refused but the hazard or a row count changed")
                continue
            stored = engine.row_of(org, HAZARD, hid)
            hid = None  # the hazard moved on; walk a fresh one for the next role
            if (stored["state"], stored["version"]) != (result.to_state, result.version):
                problems.append(f"{where}: row does not show the result {result}")
            if expect.outcome is not None:
                problems.append(f"{where}: succeeded, expected {expect.outcome.__name__}")
            elif (result.to_state, result.role, result.version) != (expect.to_state, role,
                                                                     before[1] + 1):
                problems.append(f"{where}: got {result.to_state}/{result.role}/v{result.version},"
                                f" expected {expect.to_state}/{role}/v{before[1] + 1}")
    assert not problems, "\n".join(problems)


def _check_refusal(exc: SafeloopError, expect: Expect, state: str, role: str, where: str,
                   ) -> list[str]:
    if expect.outcome is None:
        return [f"{where}: refused with {type(exc).__name__}: {exc.message}"]
    if type(exc) is not expect.outcome:
        return [f"{where}: {type(exc).__name__} ({exc.message}), expected "
                f"{expect.outcome.__name__}"]
    problems = [] if is_zh(exc.message) else [f"{where}: message not zh-CN: {exc.message}"]
    if isinstance(exc, TransitionNotAllowed):
        if f"「{STATES[state]}」" not in exc.message:
            problems.append(f"{where}: message lacks state label {STATES[state]}: {exc.message}")
        if sorted(exc.details.get("allowed", ())) != allowed_for(state, role):
            problems.append(f"{where}: allowed={exc.details.get('allowed')}, "
                            f"expected {allowed_for(state, role)}")
    if expect.guard_text and expect.guard_text not in exc.message:
        problems.append(f"{where}: guard refusal {exc.message!r} lacks {expect.guard_text!r}")
    return problems


def test_allowed_events_matches_table(shared: tuple[Session, dict[str, str]]) -> None:
    """``engine.allowed_events`` (what the UI offers) agrees with the declared rules."""
    org, solo = shared
    for state in STATES:
        hid = walk(org, state, grades_for(state)[-1])
        for role, actor in solo.items():
            offered = sorted(r.name for r in engine.allowed_events(org, HAZARD, hid, actor))
            assert offered == allowed_for(state, role), (state, role)
