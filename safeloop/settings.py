"""All configuration in one pydantic-settings class so every entry point reads the same values.

Environment variables use the ``SAFELOOP_`` prefix, e.g. ``SAFELOOP_DATABASE_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAFELOOP_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///safeloop.db"
    timezone: str = "Asia/Shanghai"
    storage_dir: Path = Path("safeloop-data")
    sqlite_busy_timeout_s: float = 30.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
