"""Local overrides of the working-day calendar, read from YAML.

Local rules differ from the national schedule (a regional holiday, a plant's make-up working
Saturday), and chinesecalendar only knows the years it ships; the override file covers both.
Every error names the file, the line and the key, because people edit this file by hand.

    covered_years: [2027]          # extra whole years declared known (then list their days below)
    holidays:                      # extra days off, each with a zh-CN name / reason
      - {date: 2027-01-01, name: 元旦}
      - {date: 2027-02-16, until: 2027-02-22, name: 春节}   # until: inclusive range end
    working_days:                  # extra working days (调休上班), same fields
      - {date: 2027-02-14, name: 春节调休上班}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError

from core import infile
from core.errors import InvalidInput
from core.yamlfile import SafeLoader, load_yaml

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that keeps dates as text: PyYAML would crash on 2020-02-30 before we can say where."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
MAX_RANGE_DAYS = 366


def _as_date(value: Any) -> date:
    """Accept ``YYYY-MM-DD`` only (or a date object): no timestamps, no epoch integers."""
    if isinstance(value, datetime):
        raise ValueError("应为日期 YYYY-MM-DD，不能带时刻")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"日期「{value}」不存在") from exc
    raise ValueError(f"应为日期 YYYY-MM-DD，而不是「{value}」")


Day = Annotated[date, BeforeValidator(_as_date)]
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DayEntry(BaseModel):
    model_config = _STRICT
    date: Day
    until: Day | None = None
    name: str = Field(min_length=1)


class OverrideFile(BaseModel):
    model_config = _STRICT
    covered_years: list[Annotated[StrictInt, Field(ge=1901, le=2199)]] = []
    holidays: list[DayEntry] = []
    working_days: list[DayEntry] = []


@dataclass(frozen=True)
class CalendarOverrides:
    """The parsed file: one name per date, so lookups stay O(1)."""

    holidays: dict[date, str] = field(default_factory=dict)
    working_days: dict[date, str] = field(default_factory=dict)
    covered_years: frozenset[int] = frozenset()
    source: str | None = None


# ---- errors with line numbers -----------------------------------------------------------------

_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的键（可用：covered_years、holidays、working_days；条目内：date、until、name）",
    "string_too_short": "不能为空",
    "string_type": "应为文字",
    "list_type": "应为列表",
    "model_type": "应为映射（date/name）",
    "model_attributes_type": "应为映射（date/name）",
    "int_type": "应为整数年份",
    "greater_than_equal": "年份超出范围（1901–2199）",
    "less_than_equal": "年份超出范围（1901–2199）",
}


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """Follow an error location through the YAML node tree to a 1-based line (a key's own line)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _message(err: Any) -> str:
    if err["type"] == "value_error":
        return str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    return str(_MESSAGES.get(err["type"], err["msg"]))


def _where(source: str, line: int | None, loc: Sequence[Any]) -> str:
    at = f" 第 {line} 行" if line else ""
    return f"{source}{at} {'.'.join(str(p) for p in loc)}"


# ---- parsing -----------------------------------------------------------------------------------


def parse_overrides(text: str, source: str = "日历覆盖文件") -> CalendarOverrides:
    """Validate the whole file before using any of it: a half-applied calendar is worse than none."""
    raw, root = load_yaml(text, source, _Loader)  # safe loader with limits, duplicate keys refused
    if raw is None:
        return CalendarOverrides(source=source)
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source} 顶层必须是映射（covered_years/holidays/working_days）", source=source)
    try:
        parsed = OverrideFile.model_validate(raw)
    except ValidationError as exc:
        errors = [
            f"{_where(source, _line_of(root, e['loc']), e['loc'])}：{_message(e)}" for e in exc.errors()
        ]
        raise InvalidInput("；".join(errors), errors=errors, source=source) from exc

    problems: list[str] = []
    seen: dict[date, tuple[str, int]] = {}
    days: dict[str, dict[date, str]] = {"holidays": {}, "working_days": {}}
    for kind in ("holidays", "working_days"):
        for i, entry in enumerate(getattr(parsed, kind)):
            last = entry.until or entry.date
            loc = [kind, i]
            if last < entry.date:
                problems.append(f"{_where(source, _line_of(root, [*loc, 'until']), [*loc, 'until'])}："
                                f"结束日期 {last} 早于开始日期 {entry.date}")
                continue
            if (last - entry.date).days >= MAX_RANGE_DAYS:
                problems.append(
                    f"{_where(source, _line_of(root, loc), loc)}：日期区间超过 {MAX_RANGE_DAYS} 天"
                )
                continue
            d = entry.date
            while d <= last:
                if d in seen:
                    other_kind, other_i = seen[d]
                    other_line = _line_of(root, [other_kind, other_i])
                    problems.append(f"{_where(source, _line_of(root, loc), loc)}：日期 {d} 已在第 "
                                    f"{other_line} 行（{other_kind}.{other_i}）出现过")
                else:
                    seen[d] = (kind, i)
                    days[kind][d] = entry.name
                d += timedelta(days=1)
    if problems:
        raise InvalidInput("；".join(problems), errors=problems, source=source)
    return CalendarOverrides(
        holidays=days["holidays"],
        working_days=days["working_days"],
        covered_years=frozenset(parsed.covered_years),
        source=source,
    )


def load_overrides(path: str | Path) -> CalendarOverrides:
    """Read and validate an override file; a missing or unreadable file is an input error, not a crash."""
    p = Path(path)
    text = infile.read_text(p, "日历覆盖文件")  # regular file, size limit, UTF-8 (GBK refused)
    return parse_overrides(text, source=str(p))
