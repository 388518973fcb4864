"""Working-day clocks for duties with statutory deadlines (filing, publication, verification...).

A duty due "within N working days" of a moment is due at the end of the N-th working day after
that moment's local date, in the rules' zone, using the rules' holiday calendar (调休 included).
The rules come from the caller (``ctx.rules`` in guards and effects, a job's ``rules``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.calendar import local_date, local_midnight_utc
from core.rules import Rules


def due_after_working_days(rules: Rules, moment: datetime, days: int) -> datetime:
    """End (exclusive: next local midnight, as UTC) of the N-th working day after ``moment``."""
    day = rules.calendar.add_working_days(local_date(moment, rules.zone), days)
    return local_midnight_utc(day + timedelta(days=1), rules.zone)


def working_days_until(rules: Rules, moment: datetime, deadline: datetime) -> int:
    """Working days from ``moment``'s local date up to and including ``deadline``'s."""
    return rules.calendar.working_days_between(local_date(moment, rules.zone),
                                               local_date(deadline, rules.zone))
