"""Random event sequences by random people on a few hazards (hypothesis stateful testing).

Whatever is thrown at the engine, these must hold after every step: each hazard sits in a state
the declared rules can reach and moved only along declared edges; the audit chain verifies and
replays to the tables; a refused event changes no row; segregation of duties holds for closed
hazards. Each example gets a fresh database so examples cannot leak into each other.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlmodel import Session

from core.errors import SafeloopError, TransitionNotAllowed
from models import Hazard
from models.db import make_engine
from states import engine
from states.audit import verify
from states.jobs.replay import replay
from states.workflow import ANY_OTHER
from states.workflows.hazard import HAZARD, PLAN_PARTS
from tests.conftest import BACKENDS
from tests.helpers import EVIDENCE, NOW, TemplateDatabases, is_zh, row_counts

SETTINGS = settings(max_examples=15, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PEOPLE = ["wang.zhuren", "li.anquan", "zhao.chejian", "sun.banzhang", "zhou.weixiu", "wu.chuyun",
          "zheng.changzhang", "feng.hanjie", "chen.anyuan", "qian.jianguan", "he.shenji",
          "solo.inspector", "solo.rectifier", "solo.safety", "solo.head", "solo.principal",
          "solo.regulator"]
ACTORS = [*PEOPLE, engine.SYSTEM_ACTOR, "nobody"]
HOLDERS = {  # who holds each role over jinhua-team-a (solo people hold nothing else)
    "inspector": ["solo.inspector", "sun.banzhang"],
    "rectifier": ["solo.rectifier", "sun.banzhang", "zhou.weixiu"],
    "safety_officer": ["solo.safety", "li.anquan"],
    "unit_head": ["solo.head", "zhao.chejian"],
    "principal": ["solo.principal", "wang.zhuren"],
    "regulator": ["solo.regulator", "qian.jianguan"],
    "system": [engine.SYSTEM_ACTOR],
}
UNITS = ["jinhua-team-a", "jinhua-team-a", "jinhua-ws-storage", "jinhua-plant1", "xinfeng-team-weld"]
EVENTS = list(HAZARD.events)  # lifecycle order: the "simplest" choice moves a hazard on


def declared_edges() -> set[tuple[str, str, str]]:
    """(from, event, to) for every source and branch of every declared rule."""
    return {
        (src, rule.name, src if branch.dest == ANY_OTHER else branch.dest)
        for rule in HAZARD.events.values() for src in rule.sources for branch in rule.branches
    }


EDGES = declared_edges()


def reachable() -> set[str]:
    seen = {b.dest for b in HAZARD.create_event.branches}
    frontier = list(seen)
    while frontier:
        here = frontier.pop()
        for src, _, dest in EDGES:
            if src == here and dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    return seen


REACHABLE = reachable()


def event_data(event: str, now: datetime, junk: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly valid input for ``event``, with deadlines around ``now``; sometimes one junk key."""
    days = st.one_of(st.integers(1, 60), st.integers(1, 60), st.integers(-2, 0))
    when = days.map(lambda d: now + timedelta(days=d))
    plan = st.sets(st.sampled_from(sorted(PLAN_PARTS))).map(lambda ks: {k: "已落实" for k in ks})
    valid: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "assign": st.fixed_dictionaries(
            {"owner": st.sampled_from(["solo.rectifier", "sun.banzhang", *PEOPLE]),
             "deadline": when},
            optional={"acceptor": st.sampled_from(PEOPLE)}),
        "draft_plan": plan,
        "approve_plan": st.one_of(plan, st.just({k: "已落实" for k in PLAN_PARTS})),
        "submit": st.fixed_dictionaries({}, optional={"measures": st.just("已更换")}),
        "fix_on_spot": st.fixed_dictionaries({"evidence": st.sampled_from([EVIDENCE, []])}),
        "reinspect": st.fixed_dictionaries({"findings": st.sampled_from(["合格", ""])}),
        "regrade": st.fixed_dictionaries({"grade": st.sampled_from(["general", "major"])}),
        "extend_deadline": st.fixed_dictionaries({"deadline": when}),
        "link_listing": st.fixed_dictionaries({"listing_id": st.integers(1, 3)}),
        "escalate": st.fixed_dictionaries(
            {"level": st.one_of(st.integers(1, 3), st.integers(1, 3), st.sampled_from([0, 4]))}),
    }
    base = valid.get(event, st.just({}))
    if not junk:
        return base
    return st.one_of(base, base, base, base.map(lambda d: {**d, "bogus": 1}))


class HazardMachine(RuleBasedStateMachine):
    """The engine against a model of (state, version) per hazard and the audit row count."""

    databases: ClassVar[TemplateDatabases]
    hazards = Bundle("hazards")

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        url = self.stack.enter_context(self.databases.new())
        self.db = make_engine(url)
        self.stack.callback(self.db.dispose)
        self.session = self.stack.enter_context(Session(self.db, expire_on_commit=False))
        self.now = NOW
        self.model: dict[int, tuple[str, int]] = {}
        self.audit_rows = verify(self.session.connection()).count
        self.session.rollback()
        self.counts = row_counts(self.session)  # as of the last success: refusals change nothing
        self.steps = 0

    def teardown(self) -> None:
        try:
            self._check_replay()
        finally:
            self.stack.close()

    # ---- rules --------------------------------------------------------------------------

    @initialize(target=hazards)
    def a_few_hazards(self) -> Any:
        made = [self._report("general", "jinhua-team-a", "sun.banzhang"),
                self._report("major", "jinhua-team-a", "sun.banzhang"),
                self._report("general", "jinhua-ws-storage", "wu.chuyun")]
        assert all(h is not None for h in made)
        return multiple(*made)

    @rule(target=hazards, grade=st.sampled_from(["general", "major"]), unit=st.sampled_from(UNITS),
          actor=st.sampled_from(ACTORS))
    def report(self, grade: str, unit: str, actor: str) -> Any:
        hid = self._report(grade, unit, actor)
        return multiple() if hid is None else hid

    @rule(hazard=hazards, event=st.sampled_from([*EVENTS, "teleport"]),
          actor=st.sampled_from(ACTORS),
          comment=st.sampled_from([None, "现场复核", "  "]), hours=st.sampled_from([0, 1, 240]),
          data=st.data())
    def fire(self, hazard: int, event: str, actor: str, comment: str | None, hours: int,
             data: st.DataObject) -> None:
        """Fire any event, even an unknown one; time may pass first so deadlines fall behind."""
        self.now += timedelta(hours=hours)
        self._fire(hazard, event, actor, comment, data.draw(event_data(event, self.now)))

    @rule(hazard=hazards, data=st.data())
    def fire_allowed(self, hazard: int, data: st.DataObject) -> None:
        """Fire an event the state allows, by someone holding a role for it (in jinhua-team-a's
        scope), so that hazards do travel the whole loop."""
        self._fire_allowed(hazard, data)

    @rule(hazard=hazards, data=st.data())
    def fire_allowed_again(self, hazard: int, data: st.DataObject) -> None:
        """The same rule twice: most steps should move hazards rather than be refused."""
        self._fire_allowed(hazard, data)

    def _fire_allowed(self, hazard: int, data: st.DataObject) -> None:
        state = self.model[hazard][0]
        events = [n for n in EVENTS if state in HAZARD.events[n].sources]
        if not events:
            return
        event = data.draw(st.sampled_from(events))
        role = data.draw(st.sampled_from(HAZARD.events[event].roles))
        actor = data.draw(st.sampled_from(HOLDERS[role]))
        comment = "现场复核" if HAZARD.events[event].requires_reason else None
        self._fire(hazard, event, actor, comment, data.draw(event_data(event, self.now, False)))

    def _fire(self, hazard: int, event: str, actor: str, comment: str | None,
              payload: dict[str, Any]) -> None:
        state, version = self.model[hazard]
        try:
            result = engine.fire(self.session, HAZARD, hazard, event, actor=actor, data=payload,
                                 comment=comment, as_of=self.now)
        except SafeloopError as exc:
            assert is_zh(exc.message), exc.message
            assert row_counts(self.session) == self.counts, f"refused {event} wrote rows"
            rule_ = HAZARD.events.get(event)
            if rule_ is not None and actor != "nobody" and state not in rule_.sources:
                assert isinstance(exc, TransitionNotAllowed), exc
            return
        assert (state, event, result.to_state) in EDGES, (state, event, result.to_state)
        assert result.from_state == state and result.version == version + 1
        self.model[hazard] = (result.to_state, result.version)
        self.audit_rows += 1
        self.counts = row_counts(self.session)

    # ---- invariants ---------------------------------------------------------------------

    @invariant()
    def tables_match_model(self) -> None:
        rows = self.session.connection().execute(
            select(Hazard.id, Hazard.state, Hazard.version, Hazard.grade,  # type: ignore[call-overload]
                   Hazard.rectifier_id, Hazard.accepted_by_id)).all()
        self.session.rollback()
        assert {r[0]: (r[1], r[2]) for r in rows} == self.model
        for _, state, _, grade, rectifier, acceptor in rows:
            assert state in REACHABLE
            if state == "closed":
                assert acceptor is not None and acceptor != rectifier, "self-acceptance"
            if state == "planning":
                assert grade == "major", "only major hazards need a plan"

    @invariant()
    def trail_verifies(self) -> None:
        result = verify(self.session.connection())
        self.session.rollback()
        assert result.ok and result.count == self.audit_rows, result

    @invariant()
    def trail_replays(self) -> None:
        """Replaying is the costly check (about 60 ms a time on PostgreSQL): every 5th step and
        at the end of each example, which still pins a divergence to a few steps."""
        self.steps += 1
        if self.steps % 5 == 0:
            self._check_replay()

    # ---- helpers ------------------------------------------------------------------------

    def _check_replay(self) -> None:
        report = replay(self.session.connection())
        self.session.rollback()
        assert report.ok, report.differences[:5]

    def _report(self, grade: str, unit: str, actor: str) -> int | None:
        data = {"unit": unit, "title": "随机隐患", "category": "thing", "grade": grade}
        try:
            result = engine.create(self.session, HAZARD, actor=actor, data=data, as_of=self.now)
        except SafeloopError as exc:
            assert is_zh(exc.message)
            assert row_counts(self.session) == self.counts, "refused report wrote rows"
            return None
        assert result.to_state in REACHABLE and result.version == 1
        self.model[result.entity_id] = (result.to_state, 1)
        self.audit_rows += 1
        self.counts = row_counts(self.session)
        return result.entity_id


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_event_sequences(backend: str, tmp_path: Path) -> None:
    with TemplateDatabases(backend, tmp_path) as databases:
        machine = type(f"HazardMachine_{backend}", (HazardMachine,), {"databases": databases})
        run_state_machine_as_test(machine, settings=SETTINGS)
