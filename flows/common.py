"""What every flow shares: settings, a database session with the rules in force, the flow-run id.

Flows stay thin: they open a session, call one ``states`` function inside one Prefect task (a
task per item would cost ~20 ms of server CPU each) and return its report as a dict.

The database is never a flow parameter: Prefect stores parameters in its own database and shows
them in its UI, and a URL may hold a password. Flows read ``SAFELOOP_DATABASE_URL`` (a worker's
environment, or ``use_database`` for an in-process run such as ``safeloop flows run``). Neither
are the rules in force: a flow's task reads the settings, builds its ``Rules`` from them and puts
them on its session (``session_for``); the job it calls gets them as a parameter where it needs
them (zone, calendar, listing ladder).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from core.rules import Rules, set_rules
from core.settings import DATABASE_ENV, Settings, check_database_url, get_settings
from core.timeparse import check_moment
from models.db import make_engine


def prefect_defaults() -> None:
    """Settings Prefect needs on this kind of machine (offline, slow ephemeral start under load)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def settings_for() -> Settings:
    return get_settings()


@contextmanager
def use_database(url: str) -> Iterator[None]:
    """Run flows in this process against ``url`` (through the environment, as a worker would)."""
    saved = os.environ.get(DATABASE_ENV)
    os.environ[DATABASE_ENV] = check_database_url(url, DATABASE_ENV)
    get_settings.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DATABASE_ENV, None)
        else:
            os.environ[DATABASE_ENV] = saved
        get_settings.cache_clear()


@contextmanager
def session_for(settings: Settings, rules: Rules | None = None) -> Iterator[Session]:
    """A session on the settings' database carrying ``rules`` (else built from the settings)."""
    engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    try:
        with Session(engine, expire_on_commit=False) as session:
            set_rules(session, rules or Rules.from_settings(settings))
            yield session
    finally:
        engine.dispose()


def flow_run_id() -> str | None:
    """The current Prefect flow run's id, recorded in every audit row the flow causes."""
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def resolve_as_of(as_of: datetime | None) -> datetime:
    """Now, or the given moment; a naive time is local time in the configured zone (as in the CLI)."""
    if as_of is None:
        return datetime.now(UTC)
    check_moment(as_of, "as_of")
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return as_of.astimezone(UTC)
