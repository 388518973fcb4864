"""Working-day clocks for duties with statutory deadlines (filing, publication, verification...).

A duty due "within N working days" of a moment is due at the end of the N-th working day after
that moment's local date, in the configured zone, using the holiday calendar (调休 included).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from core.calendar import WorkCalendar, local_date, local_midnight_utc
from core.settings import get_settings


@cache
def calendar() -> WorkCalendar:
    return WorkCalendar.from_file(get_settings().calendar_overrides)


def zone() -> str:
    return get_settings().timezone


def due_after_working_days(moment: datetime, days: int) -> datetime:
    """End (exclusive: next local midnight, as UTC) of the N-th working day after ``moment``."""
    day = calendar().add_working_days(local_date(moment, zone()), days)
    return local_midnight_utc(day + timedelta(days=1), zone())


def working_days_until(moment: datetime, deadline: datetime) -> int:
    """Working days from ``moment``'s local date up to and including ``deadline``'s."""
    return calendar().working_days_between(local_date(moment, zone()), local_date(deadline, zone()))
