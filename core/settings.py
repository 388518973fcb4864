"""All configuration in one pydantic-settings class so every entry point reads the same values.

Environment variables use the ``SAFELOOP_`` prefix, e.g. ``SAFELOOP_DATABASE_URL``. Every value
is checked when the settings are loaded: a wrong one is refused with ``InvalidInput`` naming the
variable (exit 2), before any command or flow does work with it.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import InvalidInput
from core.listing_rules import listing_rules
from core.risk_bands import bands

ENV_PREFIX = "SAFELOOP_"
DATABASE_ENV = f"{ENV_PREFIX}DATABASE_URL"
# Drivers we ship and test; anything else is refused at start, not at the first query.
SUPPORTED_DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite",
                     "postgresql": "postgresql", "postgresql+psycopg": "postgresql"}
URL_EXAMPLES = "sqlite:///safeloop.db 或 postgresql://用户@主机/库名"

PositiveInt = Annotated[int, Field(ge=1, le=10_000_000)]
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    database_url: str = "sqlite:///safeloop.db"
    timezone: str = "Asia/Shanghai"
    storage_dir: Path = Path("safeloop-data")
    sqlite_busy_timeout_s: Seconds = 30.0
    calendar_overrides: Path | None = None
    # The duty kinds (履职任务种类) replacing the shipped pack, a YAML file like
    # safeloop/data/duty_rules.yaml, e.g. SAFELOOP_DUTY_RULES=/etc/safeloop/duties.yaml.
    duty_rules: Path | None = None
    # Listed-supervision clocks in working days (local rules differ); JSON in the environment,
    # e.g. SAFELOOP_LISTING_RULES='{"file_days": 5, "verification_days": 15}'.
    listing_rules: dict[str, Any] = {}
    # Risk grading bands (风险分级标准) overriding DOMAIN.md's, JSON in the environment, e.g.
    # SAFELOOP_RISK_BANDS='{"ls": {"significant": 9}}' for the 9–16 / 4–8 matrix variant.
    risk_bands: dict[str, Any] = {}
    # A person's event is recorded at the real clock; --as-of may differ from it by this much.
    # SIMULATE_TIME lets the CLI date events freely (demo, imports); the trail marks them.
    time_tolerance_s: Annotated[int, Field(ge=0, le=86_400)] = 300
    simulate_time: bool = False
    risk_review_days: Annotated[int, Field(ge=1, le=3_660)] = 365  # re-evaluation due after this
    # Overdue ladder: days after the deadline at which levels 1 (unit head), 2 (principal) and
    # 3 (regulator) are reached; a major hazard starts at level 3.
    escalation_days: tuple[int, int, int] = (0, 3, 7)
    due_soon_hours: Annotated[int, Field(ge=0, le=8_784)] = 24
    sweep_batch_size: PositiveInt = 5_000
    materialize_batch_size: PositiveInt = 50_000
    # Notifications (notifications/, flow dispatch-notifications): the routing file (YAML; URLs
    # may use ${ENV_VAR} for secrets), optional template overrides, retries and concurrency.
    notify_routing: Path | None = None
    notify_templates: Path | None = None
    notify_max_attempts: Annotated[int, Field(ge=1, le=1_000)] = 8
    notify_backoff_s: Seconds = 30.0  # first retry after this, doubling each time …
    notify_backoff_max_s: Seconds = 3600.0  # … up to this
    notify_concurrency: Annotated[int, Field(ge=1, le=1_000)] = 16
    notify_batch_size: PositiveInt = 200
    notify_timeout_s: Seconds = 10.0
    notify_lease_s: Seconds = 300.0
    notify_digest_time: str | None = "08:00"  # local time the day's due-soon digest goes out
    notify_run_budget_s: Seconds = 50.0  # one scheduled run stops claiming after this
    # Accounts (safeloop/accounts): when true, every CLI command that changes state needs a
    # personal API token in SAFELOOP_TOKEN, and the actor is the token's person (a --as naming
    # someone else is refused). Off by default: the demo and operators' shells work as before.
    cli_requires_token: bool = False
    token: SecretStr | None = None  # never printed: SecretStr shows as '**********'
    # Login sessions (``POST /api/v1/login``; the web app's cookie): a session ends after this
    # long without a request (idle) or this long after the login (absolute), whichever is first.
    session_idle_s: Annotated[int, Field(ge=60, le=7 * 86_400)] = 30 * 60
    session_lifetime_s: Annotated[int, Field(ge=300, le=90 * 86_400)] = 12 * 3600
    # The web app's session cookie carries ``Secure`` (sent over HTTPS only): set it wherever the
    # pages are served over HTTPS (behind a TLS proxy too); off for the demo on http://127.0.0.1.
    web_cookie_secure: bool = False
    # REST API (``safeloop web``): browser origins allowed to call it (JSON list, e.g.
    # SAFELOOP_API_CORS_ORIGINS='["https://yh.example.cn"]'; empty: CORS stays closed), the largest
    # request body (JSON) and evidence upload, and the page sizes of lists (default and maximum).
    api_cors_origins: list[str] = []
    api_max_body_bytes: Annotated[int, Field(ge=1_024, le=100 * 1024 * 1024)] = 1024 * 1024
    api_max_upload_bytes: Annotated[int, Field(ge=1_024, le=1024 * 1024 * 1024)] = 50 * 1024 * 1024
    api_page_size: Annotated[int, Field(ge=1, le=1_000)] = 50
    api_page_max: Annotated[int, Field(ge=1, le=1_000)] = 200

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_database_url(value, DATABASE_ENV)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知的时区「{value}」，应为 IANA 时区名，如 Asia/Shanghai") from exc
        return value

    @field_validator("storage_dir")
    @classmethod
    def _storage(cls, value: Path) -> Path:
        existing = next((p for p in (value, *value.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ValueError(f"「{existing}」已存在但不是目录")
        return value

    @field_validator("escalation_days")
    @classmethod
    def _ladder(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if not 0 <= value[0] <= value[1] <= value[2] <= 3_660:
            raise ValueError(f"应为三个递增的天数（0–3660），如 [0, 3, 7]，现为 {list(value)}")
        return value

    @field_validator("notify_digest_time")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"「{value}」应为 HH:MM（24 小时制），或留空表示不发摘要")
        return value

    @field_validator("listing_rules")
    @classmethod
    def _listing(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, days in value.items():
            items = days if isinstance(days, list) else [days]
            if not items or not all(_is_days(d) for d in items):
                raise ValueError(f"「{key}」应为 0–3660 的整数天数，现为 {days!r}")
        return value


def _is_days(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3_660


def check_database_url(url: str, name: str) -> str:
    """The URL if it names a database we support; ``name`` is the option or variable it came from."""
    text = url.strip()
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise InvalidInput(f"{name}「{mask_url(url)}」不是有效的数据库 URL，应为 {URL_EXAMPLES}") from exc
    backend = SUPPORTED_DRIVERS.get(parsed.drivername)
    if backend is None:
        raise InvalidInput(f"{name}：不支持的数据库「{parsed.drivername}」，"
                           f"仅支持 SQLite 和 PostgreSQL（{URL_EXAMPLES}）")
    if backend == "sqlite":
        database = parsed.database or ""
        if not database:
            raise InvalidInput(f"{name}：SQLite URL 须指明数据库文件，如 sqlite:///safeloop.db")
        if database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            if not folder.is_dir():
                raise InvalidInput(f"{name}：数据库文件所在目录「{folder}」不存在")
    return text


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for anything printed or logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(//[^/:@\s]*:)[^@/\s]*@", r"\1***@", url)


def with_database(settings: Settings, url: str | None, name: str = "--db") -> Settings:
    """``settings`` with another database (``--db``), checked like the variable is."""
    if not url:
        return settings
    return settings.model_copy(update={"database_url": check_database_url(url, name)})


def load_settings() -> Settings:
    """Read and check every setting; the first wrong one is refused naming its variable."""
    try:
        settings = Settings()
    except SettingsError as exc:  # a JSON value that does not parse
        field = re.search(r'field "?(\w+)"?', str(exc))
        name = ENV_PREFIX + (field.group(1).upper() if field else "…")
        raise InvalidInput(f"设置 {name} 不是有效的 JSON：{exc.__cause__ or exc}") from exc
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from exc
    _check_domain(settings)
    return settings


def _check_domain(settings: Settings) -> None:
    """Settings whose meaning is a rule table (risk bands, listing clocks), checked as one."""
    try:
        bands(settings.risk_bands)
    except InvalidInput as exc:
        raise InvalidInput(f"设置 {ENV_PREFIX}RISK_BANDS 无效：{exc.message}") from exc
    for method, limits in settings.risk_bands.items():
        for grade, value in (limits.items() if isinstance(limits, dict) else ()):
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidInput(f"设置 {ENV_PREFIX}RISK_BANDS 无效：「{method}.{grade}」应为有限数值")
    listing_rules(settings.listing_rules)  # an unknown rule is refused naming the variable


_MESSAGES = {
    "int_parsing": "应为整数", "int_from_float": "应为整数", "float_parsing": "应为数字",
    "finite_number": "应为有限数值", "dict_type": "应为 JSON 对象", "tuple_type": "应为 JSON 数组",
    "too_short": "项数不够", "too_long": "项数太多", "string_type": "应为文本",
    "path_type": "应为路径", "bool_parsing": "应为 true 或 false",
}


def _describe(exc: ValidationError) -> str:
    """The first error as a zh-CN sentence naming the environment variable."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    name = ENV_PREFIX + field.upper()
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        reason = str(ctx.get("error", error["msg"]))
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<",
                "less_than_equal": "≤"}[kind]
        reason = f"应 {sign} {next(iter(ctx.values()))}"
    else:
        reason = _MESSAGES.get(kind, "取值无效")
    given = error.get("input")
    shown = f"（现为「{given}」）" if isinstance(given, str | int | float) and kind != "value_error" else ""
    return f"设置 {name} 无效：{reason}{shown}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
