"""zh-CN message templates (Jinja2), one per outbox ``template`` (``workflow.event``).

The shipped set is ``notifications/templates.yaml``; ``SAFELOOP_NOTIFY_TEMPLATES`` may point at a
file overriding any of them. Loading compiles every template and renders it against sample
messages with undefined names as errors, so a typo fails at load with the key named rather than
at 3 a.m. in a send. Bodies are Markdown; ``plain`` turns them into text for channels that
show markup literally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidInput
from core.yamlfile import parse_yaml, read_text, where
from notifications.channels import IM_LIMIT_BYTES

BUILTIN = Path(__file__).with_name("templates.yaml")
NAME = re.compile(r"^([a-z][a-z_]*\.[a-z][a-z_]*|default)$")
DIGEST_PREFIX = "digest."  # digest.<event>: the digest of many <workflow>.<event> messages
FALLBACK = "default"
LISTS = frozenset({"digest.remind_due", "notify.unrouted"})  # lists: cut to fit, not refused
NO_ID = "<您的编号>"

# Every name a template may use; missing values are None so ``{% if x %}`` always works and only
# a misspelt name is an error.
CONTEXT_KEYS = (
    "code", "title", "event", "event_label", "state", "state_label", "entity_type",
    "entity_label", "actor", "actor_name", "deadline", "comment", "data", "level", "level_label",
    "grade", "grade_label", "unit", "unit_name", "enterprise_name", "recipient", "as_", "now",
    "outbox_id", "payload", "items", "count", "more", "day", "seq", "hash", "taken_at",
    "dead_id", "dead_template", "dead_code", "dead_recipient", "attempts", "last_error",
    "days_left", "first_uncovered", "covered_years", "depends", "skipped", "skipped_count",
)


class _TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str  # Markdown


def local_time(value: Any, zone: str = "Asia/Shanghai") -> str:
    """ISO text or datetime (UTC) as local ``YYYY-MM-DD HH:MM``; empty for None."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _environment(zone: str) -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=False,
    )
    env.filters["local"] = lambda v: local_time(v, zone)
    return env


_MD_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_MD_CODE = re.compile(r"`([^`]*)`")
_MD_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def plain(markdown: str) -> str:
    """Markdown as plain text: no ``**``, backticks or heading marks; links as ``text url``."""
    text = _MD_LINK.sub(r"\1 \2", markdown)
    text = _MD_BOLD.sub(r"\2", text)
    text = _MD_CODE.sub(r"\1", text)
    return _MD_HEADING.sub("", text)


class Loose(dict):  # type: ignore[type-arg]
    """Event data varies by event: a missing key reads as None instead of failing the render."""

    def __missing__(self, key: Any) -> None:
        return None


def base_context(**values: Any) -> dict[str, Any]:
    context: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS)
    context.update(items=[], count=0, more=0, as_=NO_ID)
    context.update(values)
    context["data"] = Loose(context.get("data") or {})
    context["payload"] = Loose(context.get("payload") or {})
    return context


def sample_contexts() -> list[dict[str, Any]]:
    """A full and a sparse message: every template must render both within the size limit."""
    item = {"code": "YH-000123", "title": "压力表失效" * 4, "deadline": "2026-11-09 10:00",
            "state_label": "整改中"}
    full = base_context(
        code="YH-000123", title="合成车间二楼压力表失效，表盘破裂无法读数" * 2, event="assign",
        event_label="分派整改", state="rectifying", state_label="整改中", entity_type="hazard",
        entity_label="隐患", actor="li.anquan", actor_name="李安全",
        deadline="2026-11-09 10:00", comment="复查发现密封件未更换，压力表读数仍异常" * 3,
        data={"measures": "已更换压力表并校验" * 5, "level": 2, "grade": "major",
              "owner": "sun.banzhang"},
        level=2, level_label="主要负责人", grade="general", grade_label="一般隐患",
        unit="jinhua-team-a", unit_name="合成一班", enterprise_name="山西晋华化工集团有限公司",
        recipient={"key": "sun.banzhang", "name": "孙班长"}, as_="sun.banzhang",
        now="2026-11-02 10:00", outbox_id=123, payload={"code": "YH-000123"},
        items=[item] * 20, count=25, more=5, day="2026-11-02", seq=12345, hash="ab" * 32,
        taken_at="2026-11-02T15:30:00+00:00", dead_id=77, dead_template="hazard.assign",
        dead_code="YH-000123", dead_recipient="person:4", attempts=8,
        last_error="Failed to send WeCom Bot notification: Internal Server Error, error=500.",
        days_left=31, first_uncovered="2027-01-01", covered_years=list(range(2004, 2027)),
        depends={"working_day_plans": 120, "pre_holiday_plans": 8, "open_listings": 3},
        skipped=["工作日历未覆盖 2027 年：……按工作日生成的每日计划本次跳过"] * 10, skipped_count=12,
    )
    full["items"] = [{**item, "id": i, "template": "hazard.assign", "recipient": "person:4"}
                     for i in range(20)]
    sparse = base_context(code="XC-1", event="miss", state="missed", entity_type="inspection",
                          seq=1, hash="0" * 64, taken_at="2026-11-02T15:30:00+00:00")
    return [full, sparse]


class TemplateSet:
    """Compiled templates by name; ``render`` falls back to ``default`` for unknown names."""

    def __init__(self, compiled: dict[str, tuple[jinja2.Template, jinja2.Template]],
                 zone: str) -> None:
        self.compiled = compiled
        self.zone = zone

    def names(self) -> list[str]:
        return sorted(self.compiled)

    def has(self, name: str) -> bool:
        return name in self.compiled

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        title_t, body_t = self.compiled.get(name) or self.compiled[FALLBACK]
        title = " ".join(title_t.render(context).split())
        body = "\n".join(line.rstrip() for line in body_t.render(context).strip().splitlines())
        return Rendered(title, body)


def _read(path: Path) -> tuple[dict[str, Any], Any, str]:
    raw, root = parse_yaml(read_text(path, "消息模板文件"), path.name)
    return raw, root, path.name


def parse(raw: Mapping[str, Any], root: Any, source: str,
          zone: str) -> dict[str, tuple[jinja2.Template, jinja2.Template]]:
    """Compile and check one file's templates; every problem names the file, line and key."""
    env = _environment(zone)
    problems: list[str] = []
    compiled: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(f"{where(source, root, [name])}：模板名须为「工作流.事件」，如 hazard.assign")
            continue
        try:
            spec = _TemplateIn.model_validate(value)
        except ValidationError as exc:
            problems += [f"{where(source, root, [name, *err['loc']])}：{err['msg']}"
                         for err in exc.errors()]
            continue
        parts = []
        for part in ("title", "body"):
            try:
                parts.append(env.from_string(getattr(spec, part)))
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{where(source, root, [name, part])}：模板语法错误（模板第 "
                                f"{exc.lineno} 行）：{exc.message}")
        if len(parts) == 2:
            compiled[name] = (parts[0], parts[1])
    checker = TemplateSet(compiled, zone)
    for name in compiled:
        for sample in sample_contexts():
            try:
                rendered = checker.render(name, sample)
            except jinja2.UndefinedError as exc:
                problems.append(f"{where(source, root, [name])}：模板使用了未定义的变量（{exc.message}）；"
                                f"可用变量：{'、'.join(CONTEXT_KEYS)}")
                break
            except Exception as exc:
                problems.append(f"{where(source, root, [name])}：模板渲染失败：{exc}")
                break
            size = len(f"{rendered.title}\n{plain(rendered.body)}".encode())
            if size > IM_LIMIT_BYTES and name not in LISTS:
                problems.append(f"{where(source, root, [name])}：示例消息渲染后 {size} 字节，"
                                f"超过企业微信文本消息上限 {IM_LIMIT_BYTES} 字节")
                break
    if problems:
        raise InvalidInput("；".join(problems), errors=problems)
    return compiled


def load(override: Path | None = None, zone: str = "Asia/Shanghai") -> TemplateSet:
    """The shipped templates, with those of ``override`` replacing same-named ones."""
    raw, root, source = _read(BUILTIN)
    compiled = parse(raw, root, source, zone)
    if override is not None:
        raw, root, source = _read(Path(override))
        compiled.update(parse(raw, root, source, zone))
    return TemplateSet(compiled, zone)


@lru_cache(maxsize=8)
def _cached(override: str | None, mtime: float, zone: str) -> TemplateSet:
    return load(Path(override) if override else None, zone)


def load_cached(override: Path | None = None, zone: str = "Asia/Shanghai") -> TemplateSet:
    """Compile once per file version (the dispatch flow runs every minute)."""
    mtime = 0.0
    if override is not None:
        try:
            mtime = Path(override).stat().st_mtime
        except OSError as exc:
            raise InvalidInput(f"无法读取消息模板文件 {override}：{exc.strerror}") from exc
    return _cached(str(override) if override else None, mtime, zone)
