"""Inspection periods (daily / weekly / monthly / quarterly / yearly) in the configured zone.

One inspection task exists per plan per period, so a period needs a stable text key (``2020-W53``)
and exact bounds. Periods are local (DOMAIN.md: Asia/Shanghai by default) while storage is UTC,
so bounds are returned as aware UTC datetimes, half-open ``[start, end)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import InvalidInput
from core.timeparse import check_day

DEFAULT_ZONE = "Asia/Shanghai"


class Cadence(StrEnum):
    """How often an inspection repeats (班组日查、车间周查、厂矿月查、集团公司季查, plus yearly)."""

    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"

    @property
    def label(self) -> str:
        return _CADENCE_LABELS[self]


_CADENCE_LABELS = {
    Cadence.daily: "日",
    Cadence.weekly: "周",
    Cadence.monthly: "月",
    Cadence.quarterly: "季",
    Cadence.yearly: "年",
}

# Seasonal inspections (季节性检查) run at least quarterly (DOMAIN.md): they use calendar quarters.
SEASONAL_CADENCE = Cadence.quarterly

_KEY_FORMS: dict[Cadence, tuple[re.Pattern[str], str]] = {
    Cadence.daily: (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), "2020-10-01"),
    Cadence.weekly: (re.compile(r"^(\d{4})-W(\d{2})$"), "2020-W53"),
    Cadence.monthly: (re.compile(r"^(\d{4})-(\d{2})$"), "2020-10"),
    Cadence.quarterly: (re.compile(r"^(\d{4})-Q([1-4])$"), "2020-Q4"),
    Cadence.yearly: (re.compile(r"^(\d{4})$"), "2020"),
}


def as_cadence(value: Cadence | str) -> Cadence:
    """Accept the enum or its value (CLI and YAML pass strings); unknown values are input errors."""
    try:
        return Cadence(value)
    except ValueError as exc:
        allowed = "、".join(f"{c.value}（{c.label}）" for c in Cadence)
        raise InvalidInput(f"未知的周期「{value}」，可用：{allowed}") from exc


def as_zone(zone: str | tzinfo) -> tzinfo:
    """Resolve a zone name once, with a clear error for a typo in settings."""
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"未知时区「{zone}」，应为 IANA 时区名，如 Asia/Shanghai") from exc


def local_date(moment_utc: datetime, zone: str | tzinfo = DEFAULT_ZONE) -> date:
    """The local calendar date of a stored moment; naive datetimes are UTC (as stored in SQLite)."""
    if not isinstance(moment_utc, datetime):
        raise TypeError(f"需要 datetime，而不是 {type(moment_utc).__name__}")
    if moment_utc.tzinfo is None:
        moment_utc = moment_utc.replace(tzinfo=UTC)
    return moment_utc.astimezone(as_zone(zone)).date()


def local_midnight_utc(day: date, zone: str | tzinfo = DEFAULT_ZONE) -> datetime:
    """Start of a local day as an aware UTC datetime: the unit all period bounds are made of."""
    return datetime.combine(day, time(0), tzinfo=as_zone(zone)).astimezone(UTC)


def _key_for_date(cadence: Cadence, d: date) -> str:
    if cadence is Cadence.daily:
        return d.isoformat()
    if cadence is Cadence.weekly:
        iso = d.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if cadence is Cadence.monthly:
        return f"{d.year:04d}-{d.month:02d}"
    if cadence is Cadence.quarterly:
        return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"
    return f"{d.year:04d}"


def _date_range(cadence: Cadence, key: str) -> tuple[date, date]:
    """Local dates ``[first, end)`` of a period key; rejects keys that name no real period."""
    pattern, example = _KEY_FORMS[cadence]
    match = pattern.match(key.strip()) if isinstance(key, str) else None
    bad = InvalidInput(
        f"{cadence.label}周期键「{key}」不对，应形如 {example}", cadence=cadence.value, key=key
    )
    if match is None:
        raise bad
    parts = [int(p) for p in match.groups()]
    try:
        if cadence is Cadence.daily:
            first = date(*parts)
            return first, first + timedelta(days=1)
        if cadence is Cadence.weekly:
            first = date.fromisocalendar(parts[0], parts[1], 1)
            return first, first + timedelta(days=7)
        if cadence is Cadence.monthly:
            first = date(parts[0], parts[1], 1)
            nxt = date(parts[0] + 1, 1, 1) if parts[1] == 12 else date(parts[0], parts[1] + 1, 1)
            return first, nxt
        if cadence is Cadence.quarterly:
            first = date(parts[0], 3 * parts[1] - 2, 1)
            nxt = date(parts[0] + 1, 1, 1) if parts[1] == 4 else date(parts[0], 3 * parts[1] + 1, 1)
            return first, nxt
        return date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
    except ValueError as exc:  # e.g. 2021-W53 or 2020-13: the shape is right, the period does not exist
        raise bad from exc


def _label(cadence: Cadence, first: date) -> str:
    if cadence is Cadence.daily:
        return f"{first.year}年{first.month}月{first.day}日"
    if cadence is Cadence.weekly:
        iso = first.isocalendar()
        return f"{iso.year}年第{iso.week}周"
    if cadence is Cadence.monthly:
        return f"{first.year}年{first.month}月"
    if cadence is Cadence.quarterly:
        return f"{first.year}年第{(first.month - 1) // 3 + 1}季度"
    return f"{first.year}年"


@dataclass(frozen=True)
class Period:
    """One concrete period: its key, its UTC bounds ``[start, end)`` and its local dates."""

    cadence: Cadence
    key: str
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    label: str

    def contains(self, moment_utc: datetime) -> bool:
        if moment_utc.tzinfo is None:
            moment_utc = moment_utc.replace(tzinfo=UTC)
        return self.start <= moment_utc < self.end


def _period(cadence: Cadence, key: str, zone: str | tzinfo) -> Period:
    first, end = _date_range(cadence, key)
    for day in (first, end - timedelta(days=1)):  # beyond the range, local midnights overflow
        check_day(day, key, f"{cadence.label}周期")
    tz = as_zone(zone)
    return Period(
        cadence=cadence,
        key=_key_for_date(cadence, first),  # normalised (stripped) key
        start=local_midnight_utc(first, tz),
        end=local_midnight_utc(end, tz),
        first_day=first,
        last_day=end - timedelta(days=1),
        label=_label(cadence, first),
    )


def period_key(cadence: Cadence | str, moment_utc: datetime, zone: str | tzinfo = DEFAULT_ZONE) -> str:
    """The key of the period holding ``moment_utc``, judged by the local date in ``zone``."""
    return _key_for_date(as_cadence(cadence), local_date(moment_utc, zone))


def period_bounds(
    cadence: Cadence | str, key: str, zone: str | tzinfo = DEFAULT_ZONE
) -> tuple[datetime, datetime]:
    """``[start, end)`` of a period key as aware UTC datetimes (local midnights converted)."""
    p = _period(as_cadence(cadence), key, zone)
    return p.start, p.end


def period_of(cadence: Cadence | str, moment_utc: datetime, zone: str | tzinfo = DEFAULT_ZONE) -> Period:
    """The full period holding ``moment_utc``: what a sweep needs to create or find a task."""
    c = as_cadence(cadence)
    return _period(c, period_key(c, moment_utc, zone), zone)


def period_by_key(cadence: Cadence | str, key: str, zone: str | tzinfo = DEFAULT_ZONE) -> Period:
    """The period a stored key names (validates the key)."""
    return _period(as_cadence(cadence), key, zone)


def next_period(
    cadence: Cadence | str, key: str, zone: str | tzinfo = DEFAULT_ZONE, steps: int = 1
) -> Period:
    """The period ``steps`` after ``key`` (negative: before), e.g. 2020-W53 → 2021-W01."""
    c = as_cadence(cadence)
    first, end = _date_range(c, key)
    for _ in range(abs(steps)):
        anchor = end if steps > 0 else first - timedelta(days=1)
        first, end = _date_range(c, _key_for_date(c, anchor))
    return _period(c, _key_for_date(c, first), zone)


def seasonal_period(moment_utc: datetime, zone: str | tzinfo = DEFAULT_ZONE) -> Period:
    """The seasonal-inspection period (季节性检查) holding ``moment_utc``: the calendar quarter."""
    return period_of(SEASONAL_CADENCE, moment_utc, zone)
