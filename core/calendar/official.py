"""Official holiday schedules installed by ``safeloop calendar load``, kept in the storage folder.

chinesecalendar only knows the years it ships (up to 2026 in 1.11), and the State Council publishes
next year's schedule each November. An operator installs it without a package upgrade; every
process (CLI, flows, web) reads it through ``Rules.from_settings``. The configured override file
(``SAFELOOP_CALENDAR_OVERRIDES``) holds local rules and wins over the official schedule.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from core.calendar.overrides import CalendarOverrides, load_overrides
from core.errors import InvalidInput

OFFICIAL_FILE = Path("calendar") / "official.yaml"  # under the storage folder


def official_path(storage_dir: Path) -> Path:
    return storage_dir / OFFICIAL_FILE


def installed(storage_dir: Path) -> CalendarOverrides:
    """The installed schedule, or an empty one when none was loaded."""
    path = official_path(storage_dir)
    return load_overrides(path) if path.is_file() else CalendarOverrides()


def combine(official: CalendarOverrides, local: CalendarOverrides) -> CalendarOverrides:
    """Both files as one: a date the local file names takes the local file's word."""
    local_days = local.holidays.keys() | local.working_days.keys()
    holidays = {d: n for d, n in official.holidays.items() if d not in local_days}
    working = {d: n for d, n in official.working_days.items() if d not in local_days}
    sources = [s for s in (official.source, local.source) if s]
    return CalendarOverrides(holidays={**holidays, **local.holidays},
                             working_days={**working, **local.working_days},
                             covered_years=official.covered_years | local.covered_years,
                             source="、".join(sources) or None)


def check_schedule(schedule: CalendarOverrides) -> None:
    """An official schedule declares whole years and lists days only inside them.

    A year declared with no holiday at all is a half-typed file, not a schedule: every year has
    元旦 and 春节.
    """
    where = schedule.source or "日历文件"
    if not schedule.covered_years:
        raise InvalidInput(f"{where}：没有 covered_years：正式的节假日安排须声明覆盖的年份，"
                           "如 covered_years: [2027]")
    problems: list[str] = []
    for kind, days in (("holidays", schedule.holidays), ("working_days", schedule.working_days)):
        outside = sorted(d for d in days if d.year not in schedule.covered_years)
        if outside:
            problems.append(f"{kind} 中的 {outside[0]} 等 {len(outside)} 天不在 covered_years "
                            f"（{'、'.join(str(y) for y in sorted(schedule.covered_years))}）之内")
    for year in sorted(schedule.covered_years):
        if not any(d.year == year for d in schedule.holidays):
            problems.append(f"{year} 年没有列出任何节假日（holidays）")
    if problems:
        raise InvalidInput(f"{where}：" + "；".join(problems), errors=problems)


def replace_years(current: CalendarOverrides, new: CalendarOverrides) -> CalendarOverrides:
    """The installed schedule with ``new``'s years replaced wholesale by ``new``."""
    years = new.covered_years

    def keep(days: dict[date, str]) -> dict[date, str]:
        return {d: n for d, n in days.items() if d.year not in years}

    return CalendarOverrides(holidays={**keep(current.holidays), **new.holidays},
                             working_days={**keep(current.working_days), **new.working_days},
                             covered_years=current.covered_years | years, source=new.source)


def dump(schedule: CalendarOverrides) -> str:
    """The schedule in the override file's format, one entry per day, sorted."""
    body = {
        "covered_years": sorted(schedule.covered_years),
        "holidays": [{"date": d.isoformat(), "name": n} for d, n in sorted(schedule.holidays.items())],
        "working_days": [{"date": d.isoformat(), "name": n}
                         for d, n in sorted(schedule.working_days.items())],
    }
    header = "# 由 safeloop calendar load 安装的正式节假日安排；请勿手工修改，改用 calendar load 重新加载。\n"
    return header + yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
