"""Working-day calendar and period arithmetic against the real chinesecalendar data (no mocks)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.calendar import (
    Cadence,
    DayKind,
    WorkCalendar,
    load_overrides,
    next_period,
    parse_overrides,
    period_bounds,
    period_key,
    period_of,
    seasonal_period,
)
from core.errors import InvalidInput

EXAMPLE = Path(__file__).resolve().parents[2] / "safeloop" / "data" / "calendar_overrides.example.yaml"
CAL = WorkCalendar()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


# ---- periods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "key"),
    [
        (utc(2020, 12, 31, 4), "2020-W53"),
        (utc(2021, 1, 3, 4), "2020-W53"),  # Sunday noon in Shanghai
        (utc(2021, 1, 3, 15, 59, 59), "2020-W53"),
        (utc(2021, 1, 3, 16, 30), "2021-W01"),  # already Monday 2021-01-04 in Shanghai
        (utc(2019, 12, 30, 4), "2020-W01"),
        (utc(2019, 12, 29, 16), "2020-W01"),  # Monday 00:00 local
        (utc(2019, 12, 29, 15, 59), "2019-W52"),
    ],
)
def test_iso_week_keys_across_year_ends(moment: datetime, key: str) -> None:
    assert period_key(Cadence.weekly, moment) == key


def test_week_53_bounds_and_neighbours() -> None:
    assert period_bounds("weekly", "2020-W53") == (utc(2020, 12, 27, 16), utc(2021, 1, 3, 16))
    assert next_period("weekly", "2020-W53").key == "2021-W01"
    assert next_period("weekly", "2020-W01", steps=-1).key == "2019-W52"
    assert next_period("weekly", "2020-W52", steps=2).key == "2021-W01"
    with pytest.raises(InvalidInput, match="2021-W53"):
        period_bounds("weekly", "2021-W53")  # 2021 has 52 ISO weeks


def test_local_midnight_not_utc_midnight() -> None:
    moment = utc(2020, 9, 30, 16, 30)  # 2020-10-01 00:30 in Shanghai
    assert period_key("daily", moment) == "2020-10-01"
    assert period_key("monthly", moment) == "2020-10"
    assert period_key("quarterly", moment) == "2020-Q4"
    assert period_key("yearly", moment) == "2020"
    assert period_key("weekly", moment) == "2020-W40"
    assert period_key("daily", moment, "UTC") == "2020-09-30"
    assert period_key("quarterly", moment, "UTC") == "2020-Q3"
    naive = datetime(2020, 9, 30, 16, 30)  # naive = UTC, as SQLite returns it
    assert period_key("daily", naive) == "2020-10-01"


@pytest.mark.parametrize(
    ("moment", "keys"),
    [
        (utc(2020, 12, 31, 15, 59, 59), ("2020-12-31", "2020-12", "2020-Q4", "2020")),
        (utc(2020, 12, 31, 16), ("2021-01-01", "2021-01", "2021-Q1", "2021")),
        (utc(2020, 3, 31, 15, 59), ("2020-03-31", "2020-03", "2020-Q1", "2020")),
        (utc(2020, 3, 31, 16), ("2020-04-01", "2020-04", "2020-Q2", "2020")),
    ],
)
def test_month_quarter_year_ends(moment: datetime, keys: tuple[str, str, str, str]) -> None:
    got = tuple(period_key(c, moment) for c in ("daily", "monthly", "quarterly", "yearly"))
    assert got == keys


def test_bounds_are_utc_half_open() -> None:
    assert period_bounds("daily", "2020-10-01") == (utc(2020, 9, 30, 16), utc(2020, 10, 1, 16))
    assert period_bounds("monthly", "2020-02") == (utc(2020, 1, 31, 16), utc(2020, 2, 29, 16))
    assert period_bounds("monthly", "2020-12") == (utc(2020, 11, 30, 16), utc(2020, 12, 31, 16))
    assert period_bounds("quarterly", "2020-Q4") == (utc(2020, 9, 30, 16), utc(2020, 12, 31, 16))
    assert period_bounds("yearly", "2020") == (utc(2019, 12, 31, 16), utc(2020, 12, 31, 16))
    assert period_bounds("monthly", "2020-10", "UTC") == (utc(2020, 10, 1), utc(2020, 11, 1))
    start, end = period_bounds("quarterly", "2020-Q4")
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert next_period("quarterly", "2020-Q4").key == "2021-Q1"
    assert next_period("monthly", "2021-01", steps=-1).key == "2020-12"
    assert next_period("yearly", "2020").start == end


def test_period_of_and_labels() -> None:
    p = period_of(Cadence.quarterly, utc(2020, 9, 30, 16, 30))
    assert (p.key, p.first_day, p.last_day, p.label) == ("2020-Q4", d("2020-10-01"), d("2020-12-31"),
                                                         "2020年第4季度")
    assert p.contains(utc(2020, 9, 30, 16)) and not p.contains(utc(2020, 12, 31, 16))
    assert period_of("weekly", utc(2021, 1, 1)).label == "2020年第53周"
    assert seasonal_period(utc(2020, 9, 30, 16, 30)).key == "2020-Q4"
    assert [c.label for c in Cadence] == ["日", "周", "月", "季", "年"]


@pytest.mark.parametrize(
    ("cadence", "key"),
    [("monthly", "2020-13"), ("quarterly", "2020-Q5"), ("weekly", "2020W53"), ("daily", "2020-02-30"),
     ("yearly", "20")],
)
def test_bad_period_keys(cadence: str, key: str) -> None:
    with pytest.raises(InvalidInput, match="周期键"):
        period_bounds(cadence, key)


def test_bad_cadence_and_zone() -> None:
    with pytest.raises(InvalidInput, match="未知的周期「hourly」"):
        period_key("hourly", utc(2020, 1, 1))
    with pytest.raises(InvalidInput, match="未知时区"):
        period_key("daily", utc(2020, 1, 1), "Asia/Nowhere")


@given(
    moment=st.datetimes(
        min_value=datetime(2015, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    cadence=st.sampled_from(list(Cadence)),
)
def test_period_contains_its_moment_and_tiles(moment: datetime, cadence: Cadence) -> None:
    p = period_of(cadence, moment)
    assert p.contains(moment)
    assert period_bounds(cadence, p.key) == (p.start, p.end)
    nxt = next_period(cadence, p.key)
    assert nxt.start == p.end and next_period(cadence, nxt.key, steps=-1) == p


# ---- working days: 2020 National Day -----------------------------------------------------------


def test_national_day_2020() -> None:
    for day in range(1, 9):
        assert CAL.is_holiday(date(2020, 10, day))
        assert CAL.holiday_name(date(2020, 10, day)) == "国庆节"
    assert CAL.is_working_day(d("2020-09-27"))  # Sunday 调休
    assert CAL.is_working_day(d("2020-10-10"))  # Saturday 调休
    assert CAL.day(d("2020-10-10")).kind is DayKind.adjusted_workday
    assert CAL.day(d("2020-10-10")).name == "国庆节"
    assert CAL.is_holiday(d("2020-09-26")) and CAL.holiday_name(d("2020-09-26")) is None
    assert CAL.day(d("2020-09-26")).kind is DayKind.rest_day


def test_add_working_days_across_national_day() -> None:
    assert CAL.add_working_days(d("2020-09-30"), 1) == d("2020-10-09")
    assert CAL.add_working_days(d("2020-10-09"), 1) == d("2020-10-10")
    assert CAL.add_working_days(d("2020-09-30"), 3) == d("2020-10-12")
    assert CAL.add_working_days(d("2020-10-10"), -1) == d("2020-10-09")
    assert CAL.add_working_days(d("2020-10-09"), -1) == d("2020-09-30")
    assert CAL.add_working_days(d("2020-09-26"), 1) == d("2020-09-27")
    assert CAL.add_working_days(d("2020-10-03"), 1) == d("2020-10-09")  # from a day off
    assert CAL.add_working_days(d("2020-10-03"), 0) == d("2020-10-09")  # 0 rolls forward
    assert CAL.add_working_days(d("2020-09-30"), 0) == d("2020-09-30")
    assert CAL.next_working_day(d("2020-09-30")) == d("2020-10-09")
    assert CAL.next_working_day(d("2020-10-09"), inclusive=True) == d("2020-10-09")
    assert CAL.previous_working_day(d("2020-10-09")) == d("2020-09-30")


def test_working_days_between() -> None:
    assert CAL.working_days_between(d("2020-09-30"), d("2020-10-09")) == 1
    assert CAL.working_days_between(d("2020-09-30"), d("2020-10-10")) == 2
    assert CAL.working_days_between(d("2020-10-10"), d("2020-09-30")) == -2
    assert CAL.working_days_between(d("2020-10-03"), d("2020-09-30")) == -1  # from a day off, backwards
    assert CAL.working_days_between(d("2020-10-05"), d("2020-10-05")) == 0
    assert CAL.working_days_between(d("2020-09-25"), d("2020-10-01")) == 4  # 27, 28, 29, 30


@given(
    start=st.dates(min_value=date(2019, 6, 1), max_value=date(2021, 6, 30)),
    n=st.integers(min_value=-40, max_value=40),
)
def test_add_and_between_agree(start: date, n: int) -> None:
    end = CAL.add_working_days(start, n)
    assert CAL.is_working_day(end)
    if n != 0 or CAL.is_working_day(start):
        assert CAL.working_days_between(start, end) == n
    else:
        assert end == CAL.next_working_day(start)


# ---- working days: 2020 Spring Festival --------------------------------------------------------


def test_spring_festival_2020_with_extension() -> None:
    # 2020-01-24..30 as announced, extended to 02-02 (国办发明电〔2020〕1号); chinesecalendar has both
    for day in (d("2020-01-24") + timedelta(days=i) for i in range(10)):
        assert CAL.holiday_name(day) == "春节", day
    assert CAL.is_working_day(d("2020-01-19"))  # Sunday 调休
    assert CAL.is_working_day(d("2020-02-03"))
    assert CAL.add_working_days(d("2020-01-23"), 1) == d("2020-02-03")
    assert CAL.add_working_days(d("2020-01-18"), 1) == d("2020-01-19")
    span = CAL.holiday_span(d("2020-01-28"))
    assert span is not None
    assert (span.first, span.last, span.name) == (d("2020-01-24"), d("2020-02-02"), "春节")


def test_pre_holiday_windows() -> None:
    spans = CAL.holidays_in(2020)
    assert [s.name for s in spans] == ["元旦", "春节", "清明", "劳动节", "端午", "国庆节"]
    spring = spans[1]
    win = CAL.pre_holiday_window(spring, working_days=5)
    assert win.days == (d("2020-01-19"), d("2020-01-20"), d("2020-01-21"), d("2020-01-22"), d("2020-01-23"))
    assert (win.start, win.end) == (utc(2020, 1, 18, 16), utc(2020, 1, 23, 16))
    assert win.key == "2020-01-24-pre" and win.label == "春节前（2020-01-19 至 2020-01-23）"
    national = CAL.pre_holiday_window("2020-10-01-pre", working_days=5)
    assert national.days == (d("2020-09-25"), d("2020-09-27"), d("2020-09-28"), d("2020-09-29"),
                             d("2020-09-30"))
    assert CAL.pre_holiday_windows_at(utc(2020, 9, 26, 4), 5) == [national]  # a Saturday inside it
    assert CAL.pre_holiday_windows_at(utc(2020, 9, 24, 4), 5) == []
    assert CAL.pre_holiday_windows_at(utc(2020, 9, 24, 16), 5) == [national]  # 09-25 00:00 local
    assert CAL.pre_holiday_windows_at(utc(2020, 9, 30, 16, 30), 5) == []  # the holiday has begun
    # a New Year break that starts on 31 December belongs to the year it starts in
    assert CAL.holidays_in(2022)[-1].first == d("2022-12-31")
    with pytest.raises(InvalidInput, match="不是一个节假日的第一天"):
        CAL.pre_holiday_window("2020-10-02")
    with pytest.raises(InvalidInput, match="至少为 1"):
        CAL.pre_holiday_window(spring, working_days=0)


# ---- coverage ----------------------------------------------------------------------------------


def test_uncovered_year_is_an_error_not_weekdays() -> None:
    with pytest.raises(InvalidInput) as err:
        CAL.is_working_day(d("2030-03-04"))
    assert "2030" in err.value.message and "covered_years" in err.value.message
    assert err.value.details["year"] == 2030
    with pytest.raises(InvalidInput, match="2003"):
        CAL.is_holiday(d("2003-05-01"))
    with pytest.raises(InvalidInput, match="2027"):
        CAL.add_working_days(d("2026-12-31"), 1)  # walking into an unknown year
    with pytest.raises(InvalidInput, match="2027"):
        CAL.holidays_in(2027)


def test_datetime_is_refused_as_a_day() -> None:
    with pytest.raises(TypeError):
        CAL.is_working_day(utc(2020, 10, 1))  # a UTC moment is not a local day


# ---- overrides ---------------------------------------------------------------------------------


def test_overrides_add_local_holiday_and_working_day() -> None:
    cal = WorkCalendar(parse_overrides(
        "holidays:\n"
        "  - {date: 2020-10-12, name: 园区停电检修}\n"
        "working_days:\n"
        "  - {date: 2020-10-11, name: 补班}\n"
        "  - {date: 2020-10-08, name: 本地提前复工}\n"
    ))
    assert cal.holiday_name(d("2020-10-12")) == "园区停电检修"
    assert cal.day(d("2020-10-11")) .overridden and cal.is_working_day(d("2020-10-11"))
    assert cal.add_working_days(d("2020-09-30"), 1) == d("2020-10-08")
    assert cal.add_working_days(d("2020-10-10"), 1) == d("2020-10-11")
    assert cal.add_working_days(d("2020-10-11"), 1) == d("2020-10-13")
    assert CAL.is_working_day(d("2020-10-12"))  # the national calendar is untouched


def test_overrides_declare_a_year() -> None:
    cal = WorkCalendar(parse_overrides(
        "covered_years: [2030]\n"
        "holidays:\n"
        "  - {date: 2030-01-01, name: 元旦}\n"
        "  - {date: 2030-02-02, until: 2030-02-08, name: 春节}\n"
        "working_days:\n"
        "  - {date: 2030-02-10, name: 春节调休上班}\n"
    ))
    assert cal.holiday_name(d("2030-01-01")) == "元旦"
    assert cal.is_holiday(d("2030-01-05"))  # Saturday
    assert cal.is_working_day(d("2030-01-07"))
    assert cal.add_working_days(d("2030-02-01"), 1) == d("2030-02-10")
    assert [s.name for s in cal.holidays_in(2030)] == ["元旦", "春节"]
    with pytest.raises(InvalidInput, match="另声明了 2030 年"):
        cal.is_working_day(d("2031-01-02"))


def test_example_file_is_valid() -> None:
    cal = WorkCalendar.from_file(EXAMPLE)
    assert cal.is_holiday(d("2026-07-15")) and cal.is_working_day(d("2026-07-18"))
    assert cal.holiday_name(d("2026-08-04")) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("holidays: [\n  {date: 2020-10-12", "第 2 行 不是合法的 YAML"),
        ("- 2020-10-12\n", "顶层必须是映射"),
        ("holiday:\n  - {date: 2020-10-12, name: x}\n", "第 1 行 holiday：不认识的键"),
        ("holidays:\n  - {date: 2020-10-12, nmae: x}\n", "第 2 行 holidays.0.nmae：不认识的键"),
        ("holidays:\n  - date: 2020-10-12\n", "第 2 行 holidays.0.name：缺少必填项"),
        ("holidays:\n  - {date: 2020-10-12, name: ''}\n", "第 2 行 holidays.0.name：不能为空"),
        ("holidays:\n  - {date: 2020-02-30, name: x}\n", "第 2 行 holidays.0.date：日期「2020-02-30」不存在"),
        ("working_days:\n  - name: x\n    date: 2020-10-12 08:00\n", "第 3 行 working_days.0.date：应为日期"),
        ("holidays:\n  - {date: 20201012, name: x}\n", "第 2 行 holidays.0.date：应为日期"),
        ("covered_years: [twenty]\n", "第 1 行 covered_years.0：应为整数年份"),
        ("covered_years: [1800]\n", "年份超出范围"),
        ("holidays:\n  - {date: 2020-10-12, until: 2020-10-10, name: x}\n",
         "第 2 行 holidays.0.until：结束日期 2020-10-10 早于开始日期 2020-10-12"),
        ("holidays:\n  - {date: 2020-10-12, name: a}\nworking_days:\n  - {date: 2020-10-12, name: b}\n",
         "第 4 行 working_days.0：日期 2020-10-12 已在第 2 行（holidays.0）出现过"),
    ],
)
def test_malformed_override_files(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_overrides(text, source="cal.yaml")
    assert expected in err.value.message, err.value.message
    assert err.value.message.startswith("cal.yaml")


def test_override_file_io(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="找不到日历覆盖文件"):
        load_overrides(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("holidays:\n  - {date: 2020-10-12}\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=f"{bad} 第 2 行 holidays.0.name"):
        WorkCalendar.from_file(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert WorkCalendar.from_file(empty).covered_years == WorkCalendar().covered_years
