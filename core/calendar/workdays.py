"""Working days: statutory holidays and swapped working weekends (调休) plus local overrides.

Deadlines in listed supervision are counted in working days (DOMAIN.md), so a wrong calendar means
a wrong legal deadline. Hence: a year that neither chinesecalendar nor the override file covers is
an error, never "Monday to Friday"; and every override carries a name people can check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path

import chinese_calendar as cc

from core.calendar.overrides import CalendarOverrides, load_overrides
from core.calendar.periods import DEFAULT_ZONE, local_date, local_midnight_utc
from core.errors import InvalidInput

CC_VERSION: str = cc.__version__
CC_YEARS: frozenset[int] = frozenset(
    range(min(cc.holidays).year, max(cc.holidays).year + 1)
)  # the same range chinesecalendar itself accepts
_ZH_NAMES: dict[str, str] = {h.value: h.chinese for h in cc.Holiday}
EXAMPLE_FILE = "safeloop/data/calendar_overrides.example.yaml"
DEFAULT_PRE_HOLIDAY_DAYS = 5
_ONE = timedelta(days=1)


class DayKind(StrEnum):
    """What a day is, so the UI can say why a deadline moved."""

    workday = "workday"
    rest_day = "rest_day"
    holiday = "holiday"
    adjusted_workday = "adjusted_workday"

    @property
    def label(self) -> str:
        return _DAY_KIND_LABELS[self]


_DAY_KIND_LABELS = {
    DayKind.workday: "工作日",
    DayKind.rest_day: "休息日",
    DayKind.holiday: "节假日",
    DayKind.adjusted_workday: "调休上班日",
}


@dataclass(frozen=True)
class DayInfo:
    """One day's status; ``name`` is the holiday (or the holiday a swapped working day belongs to)."""

    day: date
    kind: DayKind
    name: str | None = None
    overridden: bool = False

    @property
    def working(self) -> bool:
        return self.kind in (DayKind.workday, DayKind.adjusted_workday)


@dataclass(frozen=True)
class HolidaySpan:
    """A run of consecutive days off containing at least one named holiday (weekends included)."""

    first: date
    last: date
    name: str

    @property
    def key(self) -> str:
        return self.first.isoformat()

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class PreHolidayWindow:
    """The pre-holiday inspection period (节前检查): the N working days right before a holiday.

    ``start``/``end`` are aware UTC, half-open; ``end`` is the holiday's first local midnight.
    """

    holiday: HolidaySpan
    days: tuple[date, ...]
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        return f"{self.holiday.key}-pre"

    @property
    def label(self) -> str:
        return f"{self.holiday.name.removesuffix('节')}节前（{self.days[0]} 至 {self.days[-1]}）"

    def contains(self, moment_utc: datetime) -> bool:
        return self.start <= moment_utc < self.end


def _check_day(d: object) -> date:
    """Refuse datetimes: a UTC moment must first become a local date (see ``local_date``)."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"需要 datetime.date（本地日期），而不是 {type(d).__name__}")
    return d


class WorkCalendar:
    """chinesecalendar's national schedule with a local override file on top."""

    def __init__(self, overrides: CalendarOverrides | None = None) -> None:
        self.overrides = overrides or CalendarOverrides()
        self.covered_years: frozenset[int] = CC_YEARS | self.overrides.covered_years

    @classmethod
    def from_file(cls, path: str | Path | None) -> WorkCalendar:
        """Build from an override file path; ``None`` means the national schedule only."""
        return cls(load_overrides(path) if path is not None else None)

    # ---- coverage ------------------------------------------------------------------------------

    def covers(self, year: int) -> bool:
        return year in self.covered_years

    def first_uncovered_day(self, today: date) -> date:
        """The first local day from ``today`` on that no schedule covers (1 January of a year)."""
        year = _check_day(today).year
        while self.covers(year):
            year += 1
        return today if year == today.year else date(year, 1, 1)

    def require_year(self, year: int) -> None:
        """Raise the uncovered-year error, with the fix spelled out."""
        if self.covers(year):
            return
        extra = ""
        if self.overrides.covered_years:
            declared = "、".join(str(y) for y in sorted(self.overrides.covered_years))
            extra = f"；覆盖文件 {self.overrides.source or ''} 另声明了 {declared} 年"
        raise InvalidInput(
            f"工作日历未覆盖 {year} 年：chinesecalendar {CC_VERSION} 只含 {min(CC_YEARS)}–{max(CC_YEARS)} "
            f"年的法定节假日与调休安排{extra}。请升级 chinesecalendar，或在日历覆盖文件中加入 "
            f"covered_years: [{year}]，并在 holidays / working_days 中列出 {year} 年的节假日与调休上班日"
            f"（示例见 {EXAMPLE_FILE}）。",
            year=year,
        )

    # ---- single days ---------------------------------------------------------------------------

    def day(self, d: date) -> DayInfo:
        """Status of one local date; the override file wins over chinesecalendar."""
        d = _check_day(d)
        self.require_year(d.year)
        if d in self.overrides.working_days:
            return DayInfo(d, DayKind.adjusted_workday, self.overrides.working_days[d], overridden=True)
        if d in self.overrides.holidays:
            return DayInfo(d, DayKind.holiday, self.overrides.holidays[d], overridden=True)
        if d.year in CC_YEARS:
            resting, english = cc.get_holiday_detail(d)
            name = _ZH_NAMES.get(english, english) if english else None
            if resting:
                return DayInfo(d, DayKind.holiday if name else DayKind.rest_day, name)
            return DayInfo(d, DayKind.adjusted_workday if name else DayKind.workday, name)
        return DayInfo(d, DayKind.rest_day if d.weekday() >= 5 else DayKind.workday)

    def is_working_day(self, d: date) -> bool:
        return self.day(d).working

    def is_holiday(self, d: date) -> bool:
        """A day off of any kind (weekend or holiday), as chinesecalendar defines it."""
        return not self.day(d).working

    def holiday_name(self, d: date) -> str | None:
        """zh-CN name of a named holiday (statutory or local); ``None`` for ordinary days and weekends."""
        info = self.day(d)
        return info.name if info.kind is DayKind.holiday else None

    # ---- arithmetic ----------------------------------------------------------------------------

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (``d`` itself not counted); n < 0 counts backwards.

        n = 0 rolls a day off forward to the next working day and leaves a working day as it is.
        Example: 2020-09-30 + 1 = 2020-10-09 (National Day in between).
        """
        d = _check_day(d)
        if n == 0:
            return self.next_working_day(d, inclusive=True)
        step = _ONE if n > 0 else -_ONE
        left = abs(n)
        while left:
            d += step
            if self.is_working_day(d):
                left -= 1
        return d

    def next_working_day(self, d: date, *, inclusive: bool = False) -> date:
        """The first working day after ``d`` (or ``d`` itself when ``inclusive`` and it is one)."""
        d = _check_day(d)
        if inclusive and self.is_working_day(d):
            return d
        return self.add_working_days(d, 1)

    def previous_working_day(self, d: date, *, inclusive: bool = False) -> date:
        d = _check_day(d)
        if inclusive and self.is_working_day(d):
            return d
        return self.add_working_days(d, -1)

    def working_days_between(self, a: date, b: date) -> int:
        """Working-day steps from ``a`` to ``b``: working days in ``(a, b]``, or minus those in ``[b, a)``.

        Counting ``b`` and not ``a`` mirrors ``add_working_days``, so for n != 0:
        ``working_days_between(a, add_working_days(a, n)) == n``.
        """
        a, b = _check_day(a), _check_day(b)
        if b < a:
            return -sum(1 for d in _days(b, a - _ONE) if self.is_working_day(d))
        return sum(1 for d in _days(a + _ONE, b) if self.is_working_day(d))

    # ---- holidays and pre-holiday periods ------------------------------------------------------

    def holiday_span(self, d: date) -> HolidaySpan | None:
        """The whole break ``d`` falls in, if it holds a named holiday; ``None`` otherwise."""
        if self.day(d).working:
            return None
        first = last = d
        while self.covers((first - _ONE).year) and not self.is_working_day(first - _ONE):
            first -= _ONE
        while self.covers((last + _ONE).year) and not self.is_working_day(last + _ONE):
            last += _ONE
        names: list[str] = []
        for day in _days(first, last):
            name = self.holiday_name(day)
            if name and name not in names:
                names.append(name)
        return HolidaySpan(first, last, "、".join(names)) if names else None

    def holidays_in(self, year: int) -> list[HolidaySpan]:
        """Holiday breaks that begin in ``year`` (a New Year break may begin on 31 December)."""
        self.require_year(year)
        spans: list[HolidaySpan] = []
        d, end = date(year, 1, 1), date(year, 12, 31)
        while d <= end:
            span = self.holiday_span(d)
            if span is None:
                d += _ONE
                continue
            if span.first.year == year:
                spans.append(span)
            d = span.last + _ONE
        return spans

    def pre_holiday_window(
        self,
        holiday: HolidaySpan | str,
        working_days: int = DEFAULT_PRE_HOLIDAY_DAYS,
        zone: str | tzinfo = DEFAULT_ZONE,
    ) -> PreHolidayWindow:
        """The ``working_days`` working days before the break starts; accepts a span or its key."""
        if working_days < 1:
            raise InvalidInput(f"节前检查天数须至少为 1 个工作日，而不是 {working_days}")
        span = self._span_by_key(holiday) if isinstance(holiday, str) else holiday
        days: list[date] = []
        d = span.first
        while len(days) < working_days:
            d = self.previous_working_day(d)
            days.append(d)
        days.reverse()
        return PreHolidayWindow(
            holiday=span,
            days=tuple(days),
            start=local_midnight_utc(days[0], zone),
            end=local_midnight_utc(span.first, zone),
        )

    def pre_holiday_windows_at(
        self,
        moment_utc: datetime,
        working_days: int = DEFAULT_PRE_HOLIDAY_DAYS,
        zone: str | tzinfo = DEFAULT_ZONE,
    ) -> list[PreHolidayWindow]:
        """Pre-holiday windows open at ``moment_utc`` (two can overlap when holidays are close)."""
        if working_days < 1:
            raise InvalidInput(f"节前检查天数须至少为 1 个工作日，而不是 {working_days}")
        today = local_date(moment_utc, zone)
        found: list[PreHolidayWindow] = []
        seen: set[date] = set()
        d, counted = today, 0
        while counted < working_days:  # a break after N more working days has its window later
            d += _ONE
            if self.is_working_day(d):
                counted += 1
                continue
            span = self.holiday_span(d)
            if span is not None and span.first > today and span.first not in seen:
                seen.add(span.first)
                found.append(self.pre_holiday_window(span, working_days, zone))
        return found

    def _span_by_key(self, key: str) -> HolidaySpan:
        text = key.removesuffix("-pre")
        try:
            first = date.fromisoformat(text)
        except ValueError as exc:
            raise InvalidInput(f"节假日键「{key}」不对，应形如 2020-10-01（假期第一天）") from exc
        span = self.holiday_span(first)
        if span is None or span.first != first:
            raise InvalidInput(f"{first} 不是一个节假日的第一天", key=key)
        return span


def _days(first: date, last: date) -> Iterator[date]:
    d = first
    while d <= last:
        yield d
        d += _ONE
