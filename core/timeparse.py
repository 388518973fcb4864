"""Parse the times people type (local dates and times in the configured zone) into UTC.

Every time accepted lies between ``EARLIEST`` and ``LATEST`` (1970-01-01 .. 2100-12-31): outside
that range a date is a typo, and near ``datetime``'s own limits the arithmetic of deadlines and
periods would overflow mid-flow instead of being refused up front.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from core.errors import InvalidInput

EARLIEST = date(1970, 1, 1)
LATEST = date(2100, 12, 31)
RANGE_TEXT = f"{EARLIEST.isoformat()} 至 {LATEST.isoformat()}"


def parse_local(value: str, zone: str, *, end_of_day: bool = False, what: str = "时间") -> datetime:
    """``2026-12-01`` (the day's end when ``end_of_day``), ``2026-12-01 18:00`` or ISO with offset."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"{what}「{value}」格式不对，应为 YYYY-MM-DD、YYYY-MM-DD HH:MM 或带时区的 ISO 8601"
        ) from exc
    check_day(parsed.date(), value, what)
    if len(text) == 10 and end_of_day:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(UTC)


def parse_day(value: str, what: str = "日期") -> date:
    """A calendar date ``YYYY-MM-DD`` in the supported range."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{what}「{value}」应为 YYYY-MM-DD") from exc
    return check_day(day, value, what)


def check_day(day: date, shown: object, what: str) -> date:
    """``day`` if it is in the supported range, else refused naming the value and the range."""
    if not EARLIEST <= day <= LATEST:
        raise InvalidInput(f"{what}「{shown}」超出支持的范围（{RANGE_TEXT}）")
    return day


def check_moment(moment: datetime, what: str = "时间") -> datetime:
    """A datetime (any zone) whose date is in the supported range."""
    check_day(moment.date(), moment.isoformat(), what)
    return moment


def to_local(value: datetime | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)
