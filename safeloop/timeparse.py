"""Parse the times people type (local dates and times in the configured zone) into UTC."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from states.errors import InvalidInput


def parse_local(value: str, zone: str, *, end_of_day: bool = False, what: str = "时间") -> datetime:
    """``2026-12-01`` (the day's end when ``end_of_day``), ``2026-12-01 18:00`` or ISO with offset."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"{what}「{value}」格式不对，应为 YYYY-MM-DD、YYYY-MM-DD HH:MM 或带时区的 ISO 8601"
        ) from exc
    if len(text) == 10 and end_of_day:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(UTC)


def to_local(value: datetime | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)
