"""Working-day calendar and inspection periods (DOMAIN.md "Working days", "Inspections").

``workdays``  — WorkCalendar: chinesecalendar + a local override file; working-day arithmetic,
                holiday breaks and pre-holiday inspection windows.
``periods``   — Cadence and period keys/bounds (2020-10-01, 2020-W53, 2020-10, 2020-Q4, 2020)
                computed in the configured zone, returned as aware UTC ``[start, end)``.
``overrides`` — the override YAML (extra holidays, extra working days, extra covered years).
"""

from core.calendar.overrides import CalendarOverrides, load_overrides, parse_overrides
from core.calendar.periods import (
    DEFAULT_ZONE,
    SEASONAL_CADENCE,
    Cadence,
    Period,
    as_cadence,
    local_date,
    local_midnight_utc,
    next_period,
    period_bounds,
    period_by_key,
    period_key,
    period_of,
    seasonal_period,
)
from core.calendar.workdays import (
    CC_YEARS,
    DEFAULT_PRE_HOLIDAY_DAYS,
    DayInfo,
    DayKind,
    HolidaySpan,
    PreHolidayWindow,
    WorkCalendar,
)

__all__ = [
    "CC_YEARS",
    "DEFAULT_PRE_HOLIDAY_DAYS",
    "DEFAULT_ZONE",
    "SEASONAL_CADENCE",
    "CalendarOverrides",
    "Cadence",
    "DayInfo",
    "DayKind",
    "HolidaySpan",
    "Period",
    "PreHolidayWindow",
    "WorkCalendar",
    "as_cadence",
    "load_overrides",
    "local_date",
    "local_midnight_utc",
    "next_period",
    "parse_overrides",
    "period_bounds",
    "period_by_key",
    "period_key",
    "period_of",
    "seasonal_period",
]
