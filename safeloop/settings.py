"""All configuration in one pydantic-settings class so every entry point reads the same values.

Environment variables use the ``SAFELOOP_`` prefix, e.g. ``SAFELOOP_DATABASE_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAFELOOP_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///safeloop.db"
    timezone: str = "Asia/Shanghai"
    storage_dir: Path = Path("safeloop-data")
    sqlite_busy_timeout_s: float = 30.0
    calendar_overrides: Path | None = None
    # Listed-supervision clocks in working days (local rules differ); JSON in the environment,
    # e.g. SAFELOOP_LISTING_RULES='{"file_days": 5, "verification_days": 15}'.
    listing_rules: dict[str, Any] = {}
    # Overdue ladder: days after the deadline at which levels 1 (unit head), 2 (principal) and
    # 3 (regulator) are reached; a major hazard starts at level 3.
    # Risk grading bands (风险分级标准) overriding DOMAIN.md's, JSON in the environment, e.g.
    # SAFELOOP_RISK_BANDS='{"ls": {"significant": 9}}' for the 9–16 / 4–8 matrix variant.
    risk_bands: dict[str, Any] = {}
    # A person's event is recorded at the real clock; --as-of may differ from it by this much.
    # SIMULATE_TIME lets the CLI date events freely (demo, imports); the trail marks them.
    time_tolerance_s: int = 300
    simulate_time: bool = False
    risk_review_days: int = 365  # an approved risk is due for re-evaluation after this
    escalation_days: tuple[int, int, int] = (0, 3, 7)
    due_soon_hours: int = 24
    sweep_batch_size: int = 5_000
    materialize_batch_size: int = 50_000
    # Notifications (notifications/, flow dispatch-notifications): the routing file (YAML; URLs
    # may use ${ENV_VAR} for secrets), optional template overrides, retries and concurrency.
    notify_routing: Path | None = None
    notify_templates: Path | None = None
    notify_max_attempts: int = 8
    notify_backoff_s: float = 30.0  # first retry after this, doubling each time …
    notify_backoff_max_s: float = 3600.0  # … up to this
    notify_concurrency: int = 16
    notify_batch_size: int = 200
    notify_timeout_s: float = 10.0
    notify_lease_s: float = 300.0
    notify_digest_time: str | None = "08:00"  # local time the day's due-soon digest goes out
    notify_run_budget_s: float = 50.0  # one scheduled run stops claiming after this


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
