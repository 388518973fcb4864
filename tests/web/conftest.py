"""The web pages on a real database (SQLite, and PostgreSQL when configured) with the demo org,
through ``fastapi.testclient.TestClient`` (httpx) without following redirects: real passwords
(Argon2id), real login sessions in the cookie, the real engine and read scoping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.settings import Settings
from safeloop.accounts import passwords
from safeloop.api.app import create_app
from safeloop.web.auth import COOKIE
from states import engine as state_engine
from states.registry import WORKFLOWS
from tests.helpers import row_counts

PASSWORD = "correct-horse-7"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture
def web_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, storage_dir=tmp_path / "store")


@pytest.fixture
def app(web_settings: Settings, engine: Engine, org: Session) -> FastAPI:
    return create_app(web_settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def set_password(engine: Engine, person: str, password: str = PASSWORD, *, must_change: bool = False) -> None:
    with Session(engine) as session:
        passwords.set_password(session, person, password, actor="admin", must_change=must_change)
        session.commit()


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: TestClient, person: str, password: str = PASSWORD) -> Any:
    """Log in through the form (its CSRF token and cookie); the answer (a 303 on success)."""
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"person": person, "password": password, "csrf": csrf_of(page.text),
                                       "next": "/"})


def signed_in(client: TestClient, engine: Engine, person: str) -> str:
    """``person`` logged in (a password set first); their session secret."""
    set_password(engine, person)
    answer = login(client, person)
    assert answer.status_code == 303, answer.text
    return client.cookies[COOKIE]


def report(engine: Engine, who: str = "sun.banzhang", **extra: Any) -> str:
    """A hazard reported through the engine; its code."""
    data = {"unit": "jinhua-team-a", "title": "压力表失效", "category": "thing", "grade": "general", **extra}
    with Session(engine, expire_on_commit=False) as session:
        return state_engine.create(session, WORKFLOWS["hazard"], actor=who, data=data).code


def fire(engine: Engine, code: str, event: str, who: str, comment: str | None = None, **data: Any) -> None:
    with Session(engine, expire_on_commit=False) as session:
        state_engine.fire(session, WORKFLOWS["hazard"], code, event, actor=who, comment=comment, data=data)


def in_a_week(zone: str = "Asia/Shanghai") -> str:
    """A deadline as the form's datetime-local field gives it (local time in the settings' zone)."""
    return (datetime.now(ZoneInfo(zone)) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return row_counts(session)
