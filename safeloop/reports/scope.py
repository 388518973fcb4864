"""What a report covers: a jurisdiction with everything below it, and a period in local time.

Periods come from ``core.calendar`` (local Asia/Shanghai bounds as UTC ``[start, end)``), so
a hazard found at 00:30 on 1 October in Shanghai is in Q4 although it is still 30 September in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.sql.elements import ColumnElement

from core.calendar import Cadence, Period, period_by_key
from core.errors import InvalidInput, NotFound
from models.tables import JURISDICTION
from states.visibility import OPERATOR, Visibility

ALL = "/"  # every jurisdiction path starts with it

_QUARTER = re.compile(r"^\d{4}-Q[1-4]$")
_YEAR = re.compile(r"^\d{4}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Scope:
    """A jurisdiction subtree (``path`` prefix) or, with ``key`` None, every jurisdiction; and
    whose eyes read it (``seen``: a person's visibility; the operator sees everything)."""

    key: str | None
    name: str
    path: str
    seen: Visibility = field(default=OPERATOR, compare=False)

    def sees(self, table: Any) -> list[ColumnElement[bool]]:
        """The reader's condition on a workflow table's rows, as a list to splat into where()."""
        condition = self.seen.rows_where(table)
        return [] if condition is None else [condition]

    def sees_enterprise(self, column: Any) -> list[ColumnElement[bool]]:
        """The reader's condition on enterprise ids (enterprises they see some of)."""
        condition = self.seen.enterprises_where(column)
        return [] if condition is None else [condition]

    @property
    def description(self) -> str:
        return f"{self.name}（含下级辖区）" if self.key else "全部辖区"

    def covers(self, path_column: ColumnElement[str]) -> ColumnElement[bool] | None:
        """The WHERE condition on a jurisdiction path column; None when nothing is excluded."""
        return None if self.path == ALL else path_column.startswith(self.path, autoescape=True)


def resolve_scope(conn: Connection, key: str | None, seen: Visibility = OPERATOR) -> Scope:
    """Look the jurisdiction up once; an unknown key is an input error (exit 2)."""
    if key is None:
        return Scope(None, "全部辖区", ALL, seen)
    row = conn.execute(select(JURISDICTION.c.name, JURISDICTION.c.path)
                       .where(JURISDICTION.c.key == key)).first()
    if row is None:
        raise NotFound(f"辖区「{key}」不存在", jurisdiction=key)
    return Scope(key, str(row[0]), str(row[1]), seen)


def parse_stats_period(text: str, zone: str) -> Period:
    """``2026-Q4`` (quarterly statistics) or ``2026`` (yearly)."""
    value = (text or "").strip()
    if _QUARTER.match(value):
        return period_by_key(Cadence.quarterly, value, zone)
    if _YEAR.match(value):
        return period_by_key(Cadence.yearly, value, zone)
    raise InvalidInput(f"统计周期「{text}」格式不对，应为季度 YYYY-Qn（如 2026-Q4）或年度 YYYY（如 2026）",
                       period=text)


def parse_month(text: str, zone: str) -> Period:
    """``2026-11``: the bulletin is monthly."""
    value = (text or "").strip()
    if not _MONTH.match(value):
        raise InvalidInput(f"通报月份「{text}」格式不对，应为 YYYY-MM（如 2026-11）", period=text)
    return period_by_key(Cadence.monthly, value, zone)


def statistics_due(period: Period) -> date:
    """原安监总局令第16号第十四条: a quarter by the 15th of the next month, a year by 31 January."""
    following = period.last_day + timedelta(days=1)
    return following.replace(day=15) if period.cadence is Cadence.quarterly else following.replace(day=31)


def cutoff(period: Period, as_of: datetime) -> datetime:
    """The moment "at period end" means: the end, or now while the period is still running."""
    return min(period.end, as_of)


def zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
