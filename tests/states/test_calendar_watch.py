"""The calendar's end: coverage status, one alert a day to auditors (and the routing file's alert
channels) 60 days ahead or when a plan was skipped, and an installed official year taking effect."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from core.calendar import CalendarOverrides, WorkCalendar, parse_overrides
from core.calendar.official import check_schedule, combine, replace_years
from core.errors import InvalidInput
from models.tables import AUDIT_ENTRY, OUTBOX
from safeloop import checklists, plans
from states.jobs import calendar_watch
from states.jobs.materialize import materialize

ZONE = "Asia/Shanghai"
SCHEDULE_2027 = """
covered_years: [2027]
holidays:
  - {date: 2027-01-01, name: 元旦}
  - {date: 2027-02-06, until: 2027-02-12, name: 春节}
working_days:
  - {date: 2027-02-13, name: 春节调休上班}
"""


def _at(day: date, hour: int = 1) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _alerts(session: Session) -> list[dict]:
    rows = [dict(r) for r in session.connection().execute(
        select(OUTBOX).where(OUTBOX.c.template == calendar_watch.TEMPLATE)
        .order_by(OUTBOX.c.id)).mappings()]
    session.rollback()
    return rows


def _audit_rows(session: Session) -> int:
    n = session.connection().execute(select(func.count()).select_from(AUDIT_ENTRY)).scalar_one()
    session.rollback()
    return int(n)


@pytest.fixture
def workday_plan(org: Session) -> Session:
    checklists.load_shipped(org)
    plans.add(org, plans.PlanSpec("team-b-workdays", "jinhua-team-b", active_from=date(2026, 1, 1),
                                  calendar_mode="working_days"))
    plans.add(org, plans.PlanSpec("team-a", "jinhua-team-a", active_from=date(2026, 1, 1)))
    return org


def test_status_counts_what_runs_on_working_days(workday_plan: Session) -> None:
    found = calendar_watch.status(workday_plan.connection(), WorkCalendar(), date(2026, 12, 1))
    workday_plan.rollback()
    assert found.first_uncovered == date(2027, 1, 1) and found.days_left == 31 and found.short
    assert found.depends == {"working_day_plans": 1, "pre_holiday_plans": 0, "open_listings": 0}
    far = calendar_watch.status(workday_plan.connection(), WorkCalendar(), date(2026, 6, 1))
    workday_plan.rollback()
    assert far.days_left == 214 and not far.short


def test_no_alert_while_coverage_is_far(workday_plan: Session) -> None:
    before = _audit_rows(workday_plan)
    assert calendar_watch.alert(workday_plan, calendar=WorkCalendar(), zone=ZONE,
                                as_of=_at(date(2026, 10, 1))) is None
    assert _alerts(workday_plan) == [] and _audit_rows(workday_plan) == before


def test_one_alert_a_day_from_sixty_days_ahead(workday_plan: Session) -> None:
    day = date(2026, 11, 2)  # 60 days before 2027-01-01
    seq = calendar_watch.alert(workday_plan, calendar=WorkCalendar(), zone=ZONE, as_of=_at(day))
    assert seq is not None
    for hour in (3, 9, 15):  # the same local day: no second alert
        assert calendar_watch.alert(workday_plan, calendar=WorkCalendar(), zone=ZONE,
                                    as_of=_at(day, hour)) is None
    [row] = _alerts(workday_plan)
    assert row["recipient"] == "role:auditor" and row["audit_seq"] == seq
    payload = json.loads(row["payload"])
    assert payload["days_left"] == 60 and payload["first_uncovered"] == "2027-01-01"
    assert payload["depends"]["working_day_plans"] == 1
    nxt = calendar_watch.alert(workday_plan, calendar=WorkCalendar(), zone=ZONE,
                               as_of=_at(day + timedelta(days=1)))
    assert nxt is not None and len(_alerts(workday_plan)) == 2


def test_skipped_plans_alert_once_not_once_per_item(workday_plan: Session) -> None:
    for n in range(5):  # five working-day plans skipped on one uncovered day
        plans.add(workday_plan, plans.PlanSpec(f"wd-{n}", "jinhua-team-a",
                                               active_from=date(2026, 1, 1),
                                               calendar_mode="working_days"))
    moment = _at(date(2027, 1, 4))  # a Monday no installed schedule covers
    report = materialize(workday_plan, as_of=moment, zone=ZONE, calendar=WorkCalendar())
    assert report.warnings and "2027" in report.warnings[0]
    assert calendar_watch.alert(workday_plan, calendar=WorkCalendar(), zone=ZONE, as_of=moment,
                                skipped=report.warnings) is not None
    assert calendar_watch.alert(workday_plan, calendar=WorkCalendar(), zone=ZONE, as_of=moment,
                                skipped=report.warnings) is None
    [row] = _alerts(workday_plan)
    payload = json.loads(row["payload"])
    assert payload["days_left"] == 0 and payload["skipped_count"] == 1
    assert payload["depends"]["working_day_plans"] == 6


def test_installed_year_makes_the_day_a_working_day(workday_plan: Session) -> None:
    official = parse_overrides(SCHEDULE_2027, "2027.yaml")
    check_schedule(official)
    calendar = WorkCalendar(official)
    assert calendar.first_uncovered_day(date(2026, 12, 1)) == date(2028, 1, 1)
    assert calendar.is_working_day(date(2027, 2, 13)) and not calendar.is_working_day(date(2027, 2, 8))
    report = materialize(workday_plan, as_of=_at(date(2027, 1, 4)), zone=ZONE, calendar=calendar)
    assert report.warnings == [] and report.created["2027-01-04"] == 2
    assert calendar_watch.alert(workday_plan, calendar=calendar, zone=ZONE,
                                as_of=_at(date(2027, 1, 4))) is None


@pytest.mark.parametrize(("text", "named"), [
    ("holidays:\n  - {date: 2027-01-01, name: 元旦}\n", "covered_years"),
    ("covered_years: [2027]\nworking_days:\n  - {date: 2027-02-13, name: 调休}\n",
     "2027 年没有列出任何节假日"),
    ("covered_years: [2028]\nholidays:\n  - {date: 2027-05-01, name: 劳动节}\n", "2027-05-01"),
])
def test_a_half_schedule_is_refused_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_schedule(parse_overrides(text, "x.yaml"))
    assert named in caught.value.message


def test_local_overrides_win_over_the_official_schedule() -> None:
    official = parse_overrides(SCHEDULE_2027, "official")
    local = parse_overrides("working_days:\n  - {date: 2027-02-08, name: 本厂检修上班}\n", "local")
    calendar = WorkCalendar(combine(official, local))
    assert calendar.is_working_day(date(2027, 2, 8))  # local make-up day beats the official holiday
    assert not calendar.is_working_day(date(2027, 2, 9))


def test_reloading_a_year_replaces_it_and_keeps_the_others() -> None:
    y2027 = parse_overrides(SCHEDULE_2027, "a")
    y2028 = parse_overrides("covered_years: [2028]\nholidays:\n  - {date: 2028-01-01, name: 元旦}\n", "b")
    both = replace_years(replace_years(CalendarOverrides(), y2027), y2028)
    fixed = parse_overrides("covered_years: [2027]\nholidays:\n  - {date: 2027-01-01, name: 元旦}\n", "c")
    after = replace_years(both, fixed)
    assert after.covered_years == {2027, 2028}
    assert date(2027, 2, 8) not in after.holidays and date(2028, 1, 1) in after.holidays
    assert after.working_days == {}
