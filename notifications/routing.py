"""The routing file: who hears what, on which channels (YAML, path in ``SAFELOOP_NOTIFY_ROUTING``).

It maps people, units and roles to Apprise URLs with tags, and holds per-event rules on top of
the recipients the workflows already write into each outbox row. Secrets never live in the file:
``${ENV_VAR}`` in a URL is replaced from the environment when the message is sent. Everything is
checked at load (YAML shape, URL schemes, rule templates, recipient specs, unset variables) and
every error names the file, the line and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import InvalidInput
from core.yamlfile import line_of, parse_model, read_text, where

ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
ROLES = ("inspector", "rectifier", "safety_officer", "unit_head", "principal", "regulator",
         "auditor")
# ``person:<key>``, ``role:<role>``, ``role:<role>@unit`` (the entity's unit) or
# ``role:<role>@unit:<unit key>`` -- keys here; outbox rows carry ids instead.
_KEY = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
RULE_SPEC = re.compile(rf"^(person:{_KEY}|role:({'|'.join(ROLES)})(@unit(:{_KEY})?)?)$")
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
# Channels that render Markdown (DingTalk's markdown message, HTML e-mail); the rest get text.
MARKDOWN_SCHEMES = frozenset({"dingtalk", "mailto", "mailtos"})


def scheme_of(url: str) -> str:
    match = SCHEME.match(url)
    return match.group(1).lower() if match else ""


def env_names(url: str) -> list[str]:
    return ENV_VAR.findall(url)


def expand(url: str, env: Mapping[str, str] | None = None) -> str:
    """Substitute ``${NAME}`` from the environment; an unset name is an error naming it."""
    source = os.environ if env is None else env
    missing = [name for name in env_names(url) if name not in source]
    if missing:
        raise InvalidInput(f"环境变量 {'、'.join(missing)} 未设置（通知地址 {url}）", missing=missing)
    return ENV_VAR.sub(lambda m: source[m.group(1)], url)


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use this URL (variables stand in as a placeholder), or None."""
    scheme = scheme_of(url)
    if not scheme:
        return "不是 Apprise 通知地址（应形如 wecombot://KEY、mailtos://…、json://…）"
    from notifications.channels import known_scheme, parse_ok

    if not known_scheme(scheme):
        return f"Apprise 不支持的通知协议「{scheme}://」"
    if not parse_ok(ENV_VAR.sub("placeholder0", url)):
        return f"Apprise 无法解析该地址（{scheme}://）"
    return None


class ChannelIn(BaseModel):
    """One Apprise URL with optional tags (rules may select channels by tag) and format."""

    model_config = _STRICT
    url: str = Field(min_length=3)
    tags: list[str] = []
    format: Literal["markdown", "text"] | None = None


class UnitChannelIn(ChannelIn):
    """A unit's channel (e.g. its WeCom group bot): messages to roles in the unit or below it."""

    roles: list[Literal[ROLES]] | None = None  # type: ignore[valid-type]


def _channels(value: Any) -> Any:
    """A channel list may hold plain URL strings: ``- wecombot://${KEY}``."""
    if isinstance(value, list):
        return [{"url": v} if isinstance(v, str) else v for v in value]
    return value


class RuleLevelIn(BaseModel):
    model_config = _STRICT
    also: list[str] = []
    tags: list[str] = []


class RuleIn(BaseModel):
    """Per-event rule: extra recipients, channel tags, daily digest, on/off, per escalation level."""

    model_config = _STRICT
    enabled: bool = True
    also: list[str] = []
    tags: list[str] = []
    digest: bool = False
    levels: dict[int, RuleLevelIn] = {}

    @field_validator("also")
    @classmethod
    def _specs(cls, value: list[str]) -> list[str]:
        for spec in value:
            if not RULE_SPEC.match(spec):
                raise ValueError(
                    f"接收人「{spec}」格式不对，应为 person:<人员编号>、role:<角色>、"
                    f"role:<角色>@unit（事项所在单位）或 role:<角色>@unit:<单位编号>")
        return value


class RoutingIn(BaseModel):
    model_config = _STRICT
    version: Literal[1] = 1
    email: str | None = Field(
        default=None, description="mailto(s):// URL with {email}: mail to people's org-file e-mail")
    people: dict[str, list[ChannelIn]] = {}
    units: dict[str, list[UnitChannelIn]] = {}
    roles: dict[Literal[ROLES], list[ChannelIn]] = {}  # type: ignore[valid-type]
    alerts: list[ChannelIn] = []
    rules: dict[str, RuleIn] = {}

    @field_validator("people", "units", "roles", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _channels(v) for k, v in value.items()}
        return value

    @field_validator("alerts", mode="before")
    @classmethod
    def _alerts(cls, value: Any) -> Any:
        return _channels(value)


@dataclass(frozen=True)
class Channel:
    url: str  # as written, ``${VAR}`` unexpanded: the delivery key is made from this
    tags: frozenset[str] = frozenset()
    format: str | None = None
    roles: frozenset[str] | None = None  # unit channels only

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)

    @property
    def markdown(self) -> bool:
        if self.format is not None:
            return self.format == "markdown"
        return self.scheme in MARKDOWN_SCHEMES


@dataclass(frozen=True)
class RuleLevel:
    also: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rule:
    enabled: bool = True
    also: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    digest: bool = False
    levels: Mapping[int, RuleLevel] = field(default_factory=dict)


# Who hears what beyond the recipients the workflow rules write (states/workflows/hazard.py,
# inspection.py, listing.py, states/jobs/checkpoint.py); a routing file's ``rules`` override
# these per template.
DEFAULT_RULES: dict[str, Rule] = {
    "hazard.remind_due": Rule(digest=True),  # many due-soon reminders a day: one digest
}


@dataclass
class Routing:
    email: str | None = None
    people: dict[str, tuple[Channel, ...]] = field(default_factory=dict)
    units: dict[str, tuple[Channel, ...]] = field(default_factory=dict)
    roles: dict[str, tuple[Channel, ...]] = field(default_factory=dict)
    alerts: tuple[Channel, ...] = ()
    rules: dict[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    source: str = "（无路由文件）"

    def rule(self, template: str) -> Rule:
        return self.rules.get(template, Rule())

    def all_channels(self) -> Iterable[tuple[str, Channel]]:
        """Every channel with the key it is configured under (for checks and messages)."""
        for group in ("people", "units", "roles"):
            for key, channels in getattr(self, group).items():
                for i, channel in enumerate(channels):
                    yield f"{group}.{key}.{i}", channel
        for i, channel in enumerate(self.alerts):
            yield f"alerts.{i}", channel


def _channel(c: ChannelIn) -> Channel:
    roles = getattr(c, "roles", None)
    return Channel(c.url, frozenset(c.tags), c.format, frozenset(roles) if roles else None)


def parse(text: str, source: str = "路由文件", *, known_templates: Iterable[str] | None = None,
          env: Mapping[str, str] | None = None) -> Routing:
    """Validate a routing file; every problem names the file, line and key."""
    spec, root = parse_model(text, source, RoutingIn)
    problems: list[str] = []

    def fail(loc: list[Any], message: str) -> None:
        problems.append(f"{where(source, root, loc)}：{message}")

    environment = os.environ if env is None else env
    checked: list[tuple[list[Any], str]] = []
    for group in ("people", "units", "roles"):
        for key, channels in getattr(spec, group).items():
            checked += [([group, key, i, "url"], c.url) for i, c in enumerate(channels)]
    checked += [(["alerts", i, "url"], c.url) for i, c in enumerate(spec.alerts)]
    if spec.email is not None:
        if "{email}" not in spec.email or scheme_of(spec.email) not in ("mailto", "mailtos"):
            fail(["email"], "须为含 {email} 占位符的 mailto:// 或 mailtos:// 地址")
        checked.append((["email"], spec.email.replace("{email}", "someone@example.com")))
    for loc, url in checked:
        problem = url_problem(url)
        if problem:
            fail(loc, problem)
        missing = [n for n in env_names(url) if n not in environment]
        if missing:
            fail(loc, f"环境变量 {'、'.join(missing)} 未设置（密钥须来自环境变量，不写进仓库）")
    known = set(known_templates) if known_templates is not None else None
    for name, rule in spec.rules.items():
        if known is not None and name not in known:
            fail(["rules", name], f"没有名为「{name}」的消息模板（可用：{'、'.join(sorted(known))}）")
        for level in rule.levels:
            if level not in (1, 2, 3):
                fail(["rules", name, "levels", level], "升级级别只能是 1、2、3")
        for level, sub in rule.levels.items():
            for k, s in enumerate(sub.also):
                if not RULE_SPEC.match(s):
                    fail(["rules", name, "levels", level, "also", k], f"接收人「{s}」格式不对")
    if problems:
        raise InvalidInput("；".join(problems), errors=problems, line=line_of(root, []))
    rules = dict(DEFAULT_RULES)
    for name, r in spec.rules.items():
        rules[name] = Rule(
            r.enabled, tuple(r.also), frozenset(r.tags), r.digest,
            {lv: RuleLevel(tuple(s.also), frozenset(s.tags)) for lv, s in r.levels.items()})
    return Routing(
        email=spec.email,
        people={k: tuple(map(_channel, v)) for k, v in spec.people.items()},
        units={k: tuple(map(_channel, v)) for k, v in spec.units.items()},
        roles={k: tuple(map(_channel, v)) for k, v in spec.roles.items()},
        alerts=tuple(map(_channel, spec.alerts)),
        rules=rules,
        source=source,
    )


def load(path: Path | None, *, known_templates: Iterable[str] | None = None) -> Routing:
    """The routing file at ``path``, or an empty routing (only people's own channels) if None."""
    if path is None:
        return Routing()
    return parse(read_text(path, "通知路由文件"), Path(path).name, known_templates=known_templates)


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, templates: tuple[str, ...]) -> Routing:
    return load(Path(path), known_templates=templates)


def load_cached(path: Path | None, known_templates: Iterable[str]) -> Routing:
    """Parse once per file version (the flow runs every minute)."""
    if path is None:
        return Routing()
    try:
        mtime = Path(path).stat().st_mtime
    except OSError as exc:
        raise InvalidInput(f"无法读取通知路由文件 {path}：{exc.strerror}") from exc
    return _cached(str(path), mtime, tuple(sorted(known_templates)))
