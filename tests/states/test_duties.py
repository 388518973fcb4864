"""Recurring duties (履职任务, issue 15): the rule pack, cadences across period ends and holidays,
set-wise materialisation (once per kind, subject and period; idempotent), the sweep's duty part
(missed once, each ladder level once), and done on time vs made up late."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from core.calendar import WorkCalendar
from core.duty_rules import DutyCadence, due_at, duty_period, load_pack, parse_pack
from core.errors import GuardFailed, InvalidInput, PermissionDenied
from core.rules import Rules, set_rules
from models.tables import AUDIT_ENTRY, DUTY, OUTBOX
from states import engine
from states.audit import verify
from states.jobs.duties import materialize_duties
from states.jobs.duty_sweep import sweep_duties
from states.jobs.replay import replay
from states.workflows.duty import DUTY as WORKFLOW
from tests.helpers import EVIDENCE, is_zh, table_counts

ZONE = "Asia/Shanghai"
CAL = WorkCalendar()
PACK = load_pack()


def utc(*args: int) -> datetime:
    """A local (Asia/Shanghai) moment as aware UTC."""
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


def _count(session: Session, **where: object) -> int:
    stmt = select(func.count()).select_from(DUTY).where(
        *(DUTY.c[k] == v for k, v in where.items()))
    value = session.connection().execute(stmt).scalar_one()
    session.rollback()
    return int(value)


# ---- the rule pack -------------------------------------------------------------------------------


def test_shipped_pack_names_every_kind_in_chinese():
    expected = {"committee_meeting", "dept_meeting", "regulator_duty",
                "duty_day", "leader_shift", "risk_commitment", "drill_plan",
                "drill_onsite", "drill_high_risk", "mhs_tech_check",
                "mhs_op_check", "plan_evaluation"}
    assert set(PACK.kinds) == expected
    for kind in PACK.kinds.values():
        assert is_zh(kind.name) and kind.ladder, kind.key
    assert PACK.kinds["risk_commitment"].deadline.time == "08:00"
    assert PACK.kinds["drill_high_risk"].report_to_regulator
    assert "化工" in PACK.industries(PACK.kinds["risk_commitment"])


BAD_PACKS = {
    "unknown key": ("kinds:\n  a:\n    name: 甲\n    applies_to: {scope: enterprise}\n"
                    "    cadence: daily\n    role: principal\n    colour: red\n", 7, "colour"),
    "bad cadence": ("kinds:\n  a:\n    name: 甲\n    applies_to: {scope: enterprise}\n"
                    "    cadence: fortnightly\n    role: principal\n", 5, "cadence"),
    "undefined flag": ("kinds:\n  a:\n    name: 甲\n    applies_to: {scope: enterprise, flag: nope}\n"
                       "    cadence: daily\n    role: principal\n", 4, "flag"),
    "at without time": ("kinds:\n  a:\n    name: 甲\n    applies_to: {scope: enterprise}\n"
                        "    cadence: daily\n    role: principal\n    deadline: {rule: at}\n", 7,
                        "deadline"),
}


@pytest.mark.parametrize("case", sorted(BAD_PACKS))
def test_a_bad_pack_names_its_line_in_chinese(case: str):
    text, line, key = BAD_PACKS[case]
    with pytest.raises(InvalidInput) as info:
        parse_pack(text, "duties.yaml")
    message = info.value.message
    assert f"duties.yaml 第 {line} 行" in message and key in message and is_zh(message), message


def test_the_pack_file_setting_replaces_the_shipped_one(tmp_path: Path, monkeypatch):
    from core.settings import get_settings

    path = tmp_path / "duties.yaml"
    path.write_text("kinds:\n  weekly_talk:\n    name: 每周安全讲评\n    applies_to: {scope: enterprise}\n"
                    "    cadence: weekly\n    role: principal\n", encoding="utf-8")
    monkeypatch.setenv("SAFELOOP_DUTY_RULES", str(path))
    get_settings.cache_clear()
    try:
        assert list(Rules.from_settings(get_settings()).duties.kinds) == ["weekly_talk"]
    finally:
        get_settings.cache_clear()


# ---- cadences across period ends and holidays ---------------------------------------------------


@pytest.mark.parametrize(("cadence", "moment", "key", "next_key"), [
    (DutyCadence.quarterly, utc(2020, 3, 31, 23, 59), "2020-Q1", "2020-Q2"),
    (DutyCadence.half_yearly, utc(2020, 6, 30, 23, 59), "2020-H1", "2020-H2"),
    (DutyCadence.half_yearly, utc(2020, 12, 31, 23, 59), "2020-H2", "2021-H1"),
    (DutyCadence.yearly, utc(2020, 12, 31, 23, 59), "2020", "2021"),
    (DutyCadence.weekly, utc(2021, 1, 3, 23, 59), "2020-W53", "2021-W01"),
    (DutyCadence.triennial, utc(2022, 12, 31, 23, 59), "2020-2022", "2023-2025"),
    (DutyCadence.daily, utc(2020, 12, 31, 23, 59), "2020-12-31", "2021-01-01"),
])
def test_periods_turn_over_at_local_midnight(cadence, moment, key, next_key):
    period = duty_period(cadence, moment, ZONE)
    assert period.key == key
    assert duty_period(cadence, period.end, ZONE).key == next_key
    assert duty_period(cadence, moment + timedelta(minutes=1), ZONE).key == next_key


def test_working_day_deadlines_skip_national_day_2020_and_spring_festival_2021():
    meeting = PACK.kinds["dept_meeting"]  # 5 working days after the period
    q3 = duty_period(DutyCadence.monthly, utc(2020, 9, 15), ZONE)
    # 10-01..10-08 off; 10-09 (Fri) and 10-10 (Sat, 调休) work: 9, 10, 12, 13, 14
    assert due_at(meeting, q3, CAL, ZONE) == utc(2020, 10, 15)
    january = duty_period(DutyCadence.monthly, utc(2021, 1, 15), ZONE)
    assert due_at(meeting, january, CAL, ZONE) == utc(2021, 2, 6)  # 2..5 Feb + 1 Feb
    february = duty_period(DutyCadence.monthly, utc(2021, 2, 15), ZONE)
    assert due_at(meeting, february, CAL, ZONE) == utc(2021, 3, 6)
    commitment = PACK.kinds["risk_commitment"]
    day = duty_period(DutyCadence.daily, utc(2020, 10, 1, 12), ZONE)
    assert due_at(commitment, day, CAL, ZONE) == utc(2020, 10, 1, 8)  # every day, 08:00 local


def test_working_day_kinds_skip_days_off_and_keep_make_up_working_days(org: Session):
    rules = Rules(duties=PACK, calendar=CAL)
    report = materialize_duties(org, as_of=utc(2020, 9, 26, 1), until=utc(2020, 10, 11, 1),
                                rules=rules, kinds=["leader_shift"])
    keys = sorted(org.connection().execute(select(DUTY.c.period_key)).scalars())
    org.rollback()
    # 9-26 Sat off, 9-27 Sun 调休 work, 9-28..30 work, 10-01..08 National Day, 10-09 Fri, 10-10 Sat 调休
    assert keys == ["2020-09-27", "2020-09-28", "2020-09-29", "2020-09-30", "2020-10-09",
                    "2020-10-10"]
    assert report.created == 6 and report.batches == 1  # jinhua (化工) only; one batch
    spring = materialize_duties(org, as_of=utc(2021, 2, 6, 1), until=utc(2021, 2, 21, 1),
                                rules=rules, kinds=["leader_shift"])
    days = sorted(org.connection().execute(select(DUTY.c.period_key).where(
        DUTY.c.period_key >= "2021-02-06")).scalars())
    org.rollback()
    assert days == ["2021-02-07", "2021-02-08", "2021-02-09", "2021-02-10", "2021-02-18",
                    "2021-02-19", "2021-02-20"] and spring.created == 7


# ---- materialisation ----------------------------------------------------------------------------


def test_each_kind_is_materialised_once_per_period_and_idempotent(org: Session):
    moment = utc(2020, 12, 31, 6)
    rules = Rules(duties=PACK, calendar=CAL)
    first = materialize_duties(org, as_of=moment, rules=rules)
    # jinhua (化工: every enterprise kind) and xinfeng (工贸: the all-industry ones); drill_onsite
    # per workshop (jinhua 2, xinfeng 1); daily kinds today and tomorrow, the working-day one
    # not on New Year's Day
    assert first.by_kind == {
        "duty_day": 2, "leader_shift": 1, "risk_commitment": 2,
        "drill_plan": 2, "drill_onsite": 3, "drill_high_risk": 1,
        "mhs_tech_check": 1, "mhs_op_check": 1,
        "plan_evaluation": 2}
    batches = org.connection().execute(select(func.count()).select_from(AUDIT_ENTRY).where(
        AUDIT_ENTRY.c.entity_type == "duty_batch")).scalar_one()
    org.rollback()
    assert batches == first.batches == 9  # one audit row per kind (its periods in its data)
    again = materialize_duties(org, as_of=moment + timedelta(hours=3), rules=rules)
    assert again.created == 0 and again.batches == 0
    assert _count(org) == first.created
    codes = set(org.connection().execute(select(DUTY.c.code)).scalars())
    org.rollback()
    assert "jinhua-group/risk_commitment@2021-01-01" in codes
    assert "jinhua-ws-synth/drill_onsite@2020-H2" in codes
    assert verify(org.connection()).ok and replay(org.connection()).ok


# ---- the workflow and the sweep -----------------------------------------------------------------


def _commitment(org: Session, day: tuple[int, int, int] = (2020, 10, 1)) -> tuple[int, Rules]:
    rules = Rules(duties=PACK, calendar=CAL)
    set_rules(org, rules)
    materialize_duties(org, as_of=utc(*day, 0, 30), until=utc(*day, 0, 30), rules=rules,
                       kinds=["risk_commitment"])  # that day only
    did = org.connection().execute(select(DUTY.c.id).where(
        DUTY.c.period_key == "{:04d}-{:02d}-{:02d}".format(*day))).scalar_one()
    org.rollback()
    return did, rules


def _row(org: Session, did: int) -> dict:
    row = dict(org.connection().execute(select(DUTY).where(DUTY.c.id == did)).mappings().one())
    org.rollback()
    return row


def test_done_on_time_needs_evidence_and_the_responsible_role(org: Session):
    did, _ = _commitment(org)
    before = table_counts(org)
    with pytest.raises(GuardFailed) as info:
        engine.fire(org, WORKFLOW, did, "complete", actor="wang.zhuren", as_of=utc(2020, 10, 1, 7))
    assert "研判记录、承诺公告" in info.value.message
    with pytest.raises(PermissionDenied):  # a rectifier may not record duties
        engine.fire(org, WORKFLOW, did, "complete", actor="sun.banzhang", as_of=utc(2020, 10, 1, 7),
                    data={"evidence": EVIDENCE})
    assert table_counts(org) == before
    done = engine.fire(org, WORKFLOW, did, "complete", actor="wang.zhuren",
                       as_of=utc(2020, 10, 1, 7, 30), data={"evidence": EVIDENCE, "summary": "已公告"})
    assert done.to_state == "done"
    row = _row(org, did)
    assert row["late"] is False and row["done_by_id"] is not None
    # the sweep leaves a done duty alone
    assert sweep_duties(org, as_of=utc(2020, 10, 1, 9)).duties_missed == 0


def test_missed_once_ladder_once_per_level_and_made_up_late(org: Session):
    did, rules = _commitment(org)
    # reminder inside the two hours before 08:00, once
    assert sweep_duties(org, as_of=utc(2020, 10, 1, 6, 30), rules=rules).duty_reminders == 1
    assert sweep_duties(org, as_of=utc(2020, 10, 1, 7), rules=rules).duty_reminders == 0
    late = sweep_duties(org, as_of=utc(2020, 10, 1, 8, 1), rules=rules)
    assert late.duties_missed == 1 and late.duty_escalations == {1: 1}
    again = sweep_duties(org, as_of=utc(2020, 10, 1, 9), rules=rules)
    assert again.duties_missed == 0 and again.duty_escalations == {}
    # 4 h after the deadline level 2; a sweep that slept past 24 h fires level 3 once
    assert sweep_duties(org, as_of=utc(2020, 10, 1, 12), rules=rules).duty_escalations == {2: 1}
    assert sweep_duties(org, as_of=utc(2020, 10, 3), rules=rules).duty_escalations == {3: 1}
    assert sweep_duties(org, as_of=utc(2020, 10, 9), rules=rules).duty_escalations == {}
    with pytest.raises(GuardFailed):  # the ladder has three levels
        engine.fire(org, WORKFLOW, did, "escalate", actor="system", as_of=utc(2020, 10, 9),
                    data={"level": 3})
    made = engine.fire(org, WORKFLOW, did, "make_up", actor="wang.zhuren", as_of=utc(2020, 10, 1, 10),
                       data={"evidence": EVIDENCE})
    assert made.to_state == "made_up"
    row = _row(org, did)
    assert row["late"] is True and row["missed_at"] is not None and row["escalation_level"] == 3
    events = [e for (e,) in org.connection().execute(
        select(AUDIT_ENTRY.c.event).where(AUDIT_ENTRY.c.entity_type == "duty",
                                          AUDIT_ENTRY.c.entity_id == did)
        .order_by(AUDIT_ENTRY.c.seq))]
    org.rollback()
    assert events == ["remind", "miss", "escalate", "escalate", "escalate", "make_up"]
    outbox = org.connection().execute(select(OUTBOX.c.template, OUTBOX.c.recipient).where(
        OUTBOX.c.entity_type == "duty")).all()
    org.rollback()
    templates = {t for t, _ in outbox}
    assert templates == {"duty.remind", "duty.miss", "duty.escalate", "duty.make_up"}
    assert any(r.startswith("role:regulator@") for t, r in outbox if t == "duty.escalate")
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_a_missed_duty_is_not_recorded_before_its_deadline(org: Session):
    did, _ = _commitment(org)
    with pytest.raises(GuardFailed) as info:
        engine.fire(org, WORKFLOW, did, "miss", actor="system", as_of=utc(2020, 10, 1, 7))
    assert is_zh(info.value.message)
    assert json.dumps(_row(org, did)["state"]) == '"due"'


def test_a_direct_edit_of_a_materialised_due_moment_is_named_by_replay(org: Session):
    from sqlalchemy import update

    rules = Rules(duties=PACK, calendar=CAL)
    materialize_duties(org, as_of=utc(2020, 12, 31, 6), rules=rules, kinds=["risk_commitment"])
    assert replay(org.connection()).ok
    code = "jinhua-group/risk_commitment@2021-01-01"
    org.connection().execute(update(DUTY).where(DUTY.c.code == code).values(
        due_at=utc(2021, 1, 1, 23)))
    org.commit()
    assert [(d.code, d.field) for d in replay(org.connection()).differences] == [(code, "due_at")]
