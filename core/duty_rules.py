"""Duty kinds as data (履职任务种类, DOMAIN.md "Recurring duties and credentials").

Each kind says who it applies to, how often it recurs, who is responsible, what evidence closes
it, when it is due and how an overdue one escalates. The shipped pack is
``safeloop/data/duty_rules.yaml``; local rules differ, so ``SAFELOOP_DUTY_RULES`` may name another
file, validated whole (every error names the file, the line and the key) before any of it is used.

Periods reuse ``core.calendar``'s cadences; the two the notice adds (half a year, three years) are
made of calendar quarters and years here: ``2020-H2`` and ``2020-2022`` (cycles counted from 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from core import infile
from core.calendar import Cadence, WorkCalendar, local_date, local_midnight_utc, period_by_key, period_of
from core.calendar.periods import as_zone
from core.errors import InvalidInput
from core.yamlfile import load_yaml, validation_problems, where

SHIPPED = Path(__file__).resolve().parent.parent / "safeloop" / "data" / "duty_rules.yaml"
TRIENNIAL_FROM = 2020  # three-year cycles: 2020-2022, 2023-2025, …
ROLES = ("inspector", "rectifier", "safety_officer", "unit_head", "principal", "regulator", "auditor")
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# short: a duty's code is <unit key>/<kind>@<period> and codes are at most 64 characters
KindKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,19}$")]
RoleName = Literal["inspector", "rectifier", "safety_officer", "unit_head", "principal",
                   "regulator", "auditor"]
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class DutyCadence(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    half_yearly = "half_yearly"
    yearly = "yearly"
    triennial = "triennial"

    @property
    def label(self) -> str:
        return {"daily": "每日", "weekly": "每周", "monthly": "每月", "quarterly": "每季度",
                "half_yearly": "每半年", "yearly": "每年", "triennial": "每三年"}[self.value]


SCOPE_LABELS = {"jurisdiction": "辖区", "department": "监管部门", "enterprise": "企业",
                "unit": "企业内单位"}


class AppliesTo(BaseModel):
    model_config = _STRICT
    scope: Literal["jurisdiction", "department", "enterprise", "unit"]
    industries: tuple[Name, ...] = ()
    flag: KindKey | None = None
    tiers: tuple[Literal["group", "plant", "workshop", "team"], ...] = ()

    @model_validator(mode="after")
    def _fits_scope(self) -> AppliesTo:
        if self.scope in ("jurisdiction", "department") and (self.industries or self.flag or self.tiers):
            raise ValueError("辖区和监管部门的任务不按行业、标志或层级限定")
        if self.tiers and self.scope != "unit":
            raise ValueError("tiers 只用于 scope: unit")
        return self


class Deadline(BaseModel):
    model_config = _STRICT
    rule: Literal["end", "at", "working_days_after_end"] = "end"
    time: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None
    days: Annotated[int, Field(ge=1, le=60)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Deadline:
        if self.rule == "at" and self.time is None:
            raise ValueError("rule: at 需要 time（如 \"08:00\"）")
        if self.rule == "working_days_after_end" and self.days is None:
            raise ValueError("rule: working_days_after_end 需要 days（工作日数）")
        if self.rule != "at" and self.time is not None:
            raise ValueError("只有 rule: at 使用 time")
        if self.rule != "working_days_after_end" and self.days is not None:
            raise ValueError("只有 rule: working_days_after_end 使用 days")
        return self


class Step(BaseModel):
    model_config = _STRICT
    after_hours: Annotated[int, Field(ge=0, le=26_280)]
    notify: tuple[RoleName, ...] = Field(min_length=1)


class DutyKind(BaseModel):
    """One kind of duty as the pack declares it (``key`` is the pack's key for it)."""

    model_config = _STRICT
    key: str = ""
    name: Name
    applies_to: AppliesTo
    cadence: DutyCadence
    days: Literal["all", "working"] = "all"
    role: RoleName
    evidence: tuple[Name, ...] = ()
    report_to_regulator: bool = False
    deadline: Deadline = Deadline()
    remind_before_hours: Annotated[int, Field(ge=0, le=8_760)] = 0
    ladder: tuple[Step, ...] = Field(default=(), max_length=3)

    @model_validator(mode="after")
    def _consistent(self) -> DutyKind:
        if self.days == "working" and self.cadence != DutyCadence.daily:
            raise ValueError("days: working 只用于 cadence: daily")
        if self.deadline.rule == "at" and self.cadence != DutyCadence.daily:
            raise ValueError("deadline rule: at 只用于 cadence: daily")
        hours = [s.after_hours for s in self.ladder]
        if hours != sorted(set(hours)):
            raise ValueError("ladder 各级的 after_hours 应逐级增大")
        return self

    @property
    def evidence_required(self) -> bool:
        return bool(self.evidence)

    @property
    def jurisdiction_side(self) -> bool:
        return self.applies_to.scope in ("jurisdiction", "department")


class PackFile(BaseModel):
    model_config = _STRICT
    flags: dict[KindKey, tuple[Name, ...]] = {}
    kinds: dict[KindKey, DutyKind] = Field(min_length=1)


@dataclass(frozen=True)
class DutyPack:
    """The kinds in force and the industry flags they use; ``source`` names the file."""

    kinds: dict[str, DutyKind]
    flags: dict[str, tuple[str, ...]]
    source: str

    def kind(self, key: str) -> DutyKind:
        try:
            return self.kinds[key]
        except KeyError:
            raise InvalidInput(f"未知的履职任务种类「{key}」，可用：{'、'.join(self.kinds)}") from None

    def industries(self, kind: DutyKind) -> tuple[str, ...] | None:
        """The industries a kind is limited to, or None for every industry."""
        limit = set(kind.applies_to.industries)
        if kind.applies_to.flag is not None:
            limit |= set(self.flags[kind.applies_to.flag])
        return tuple(sorted(limit)) if limit else None


def parse_pack(text: str, source: str) -> DutyPack:
    """Validate a whole pack: one zh-CN problem per line at fault, nothing used until all pass."""
    raw, root = load_yaml(text, source)
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source} 顶层必须是映射（flags、kinds）", source=source)
    try:
        parsed = PackFile.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, root, source)
        raise InvalidInput("；".join(problems), errors=problems, source=source) from exc
    problems = [f"{where(source, root, ['kinds', key, 'applies_to', 'flag'])}："
                f"未定义的行业标志「{kind.applies_to.flag}」（在 flags 中定义）"
                for key, kind in parsed.kinds.items()
                if kind.applies_to.flag is not None and kind.applies_to.flag not in parsed.flags]
    names: dict[str, str] = {}
    for key, kind in parsed.kinds.items():
        if kind.name in names:
            problems.append(f"{where(source, root, ['kinds', key, 'name'])}："
                            f"名称「{kind.name}」与 {names[kind.name]} 重复")
        names[kind.name] = key
    if problems:
        raise InvalidInput("；".join(problems), errors=problems, source=source)
    kinds = {key: kind.model_copy(update={"key": key}) for key, kind in parsed.kinds.items()}
    return DutyPack(kinds=kinds, flags=dict(parsed.flags), source=source)


def load_pack(path: str | Path | None = None) -> DutyPack:
    """The pack at ``path`` (the ``duty_rules`` setting), else the shipped one."""
    p = Path(path) if path is not None else SHIPPED
    stat = p.stat() if p.is_file() else None
    return _load(str(p), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@lru_cache(maxsize=8)
def _load(path: str, _mtime: int, _size: int) -> DutyPack:
    text = infile.read_text(Path(path), "履职任务规则文件", limit=infile.MAX_YAML_BYTES)
    return parse_pack(text, path)


# ---- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DutyPeriod:
    """One period of a duty: key, UTC bounds ``[start, end)``, local first/last day, zh label."""

    key: str
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    label: str


_BASE = {DutyCadence.daily: Cadence.daily, DutyCadence.weekly: Cadence.weekly,
         DutyCadence.monthly: Cadence.monthly, DutyCadence.quarterly: Cadence.quarterly,
         DutyCadence.yearly: Cadence.yearly}


def duty_period(cadence: DutyCadence, moment: datetime, zone: str) -> DutyPeriod:
    """The period of ``cadence`` holding ``moment`` (local dates in ``zone``)."""
    if cadence in _BASE:
        p = period_of(_BASE[cadence], moment, zone)
        return DutyPeriod(p.key, p.start, p.end, p.first_day, p.last_day, p.label)
    today = local_date(moment, zone)
    if cadence is DutyCadence.half_yearly:
        half = 1 if today.month <= 6 else 2
        first = date(today.year, 1 if half == 1 else 7, 1)
        end = date(today.year, 7, 1) if half == 1 else date(today.year + 1, 1, 1)
        key, label = f"{today.year}-H{half}", f"{today.year}年{'上' if half == 1 else '下'}半年"
    else:
        start_year = today.year - (today.year - TRIENNIAL_FROM) % 3
        first, end = date(start_year, 1, 1), date(start_year + 3, 1, 1)
        key, label = f"{start_year}-{start_year + 2}", f"{start_year}—{start_year + 2}年"
    return DutyPeriod(key, local_midnight_utc(first, zone), local_midnight_utc(end, zone),
                      first, end - timedelta(days=1), label)


def previous_period(cadence: DutyCadence, period: DutyPeriod, zone: str) -> DutyPeriod:
    return duty_period(cadence, period.start - timedelta(seconds=1), zone)


def due_at(kind: DutyKind, period: DutyPeriod, calendar: WorkCalendar, zone: str) -> datetime:
    """When a duty of ``kind`` for ``period`` is due (aware UTC)."""
    rule = kind.deadline
    if rule.rule == "at":
        hour, minute = (int(x) for x in (rule.time or "00:00").split(":"))
        local = datetime.combine(period.first_day, time(hour, minute), tzinfo=as_zone(zone))
        return local.astimezone(period.start.tzinfo)
    if rule.rule == "working_days_after_end":
        last = calendar.add_working_days(period.last_day, rule.days or 1)
        return local_midnight_utc(last + timedelta(days=1), zone)
    return period.end


def applies_on(kind: DutyKind, period: DutyPeriod, calendar: WorkCalendar) -> bool:
    """Whether a period holds a duty: a working-days-only daily kind skips days off (调休 counts)."""
    return kind.days == "all" or calendar.is_working_day(period.first_day)


def check_key(cadence: DutyCadence, key: str, zone: str) -> None:
    """Refuse a period key that names no period of ``cadence`` (CLI filters)."""
    if cadence in _BASE:
        period_by_key(_BASE[cadence], key, zone)
