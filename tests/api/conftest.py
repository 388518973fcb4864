"""The API on a real database (SQLite, and PostgreSQL when configured) with the demo org, served
in-process through ``fastapi.testclient.TestClient`` (httpx): real engine, real evidence store,
REAL identity: every person of the demo org gets a real personal token
(``safeloop.accounts.tokens.create_token``), ``auth(person_key)`` returns the bearer headers that
carry it, and the real ``states.visibility`` scopes every read.

Each token is used once while the fixture is set up, so its first use (audited once a minute,
see ``safeloop.accounts.tokens``) is in the trail before a test counts rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.settings import Settings
from models.tables import PERSON
from safeloop.accounts.tokens import authenticate_token, create_token
from safeloop.api.app import create_app

# person key -> their token's secret, for the test running now (filled by ``tokens``)
TOKENS: dict[str, str] = {}
UNKNOWN = "sl_" + "A" * 43  # well-formed, matches no token


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, storage_dir=tmp_path / "store",
                    api_max_upload_bytes=64 * 1024, api_page_size=20, api_page_max=50)


@pytest.fixture
def app(api_settings: Settings, engine: Engine, org: Session) -> FastAPI:
    return create_app(api_settings, engine=engine)


@pytest.fixture
def tokens(engine: Engine, org: Session) -> Iterator[dict[str, str]]:
    """A real personal token for every person of the demo org, each used once."""
    with Session(engine, expire_on_commit=False) as session:
        people = list(session.connection().execute(select(PERSON.c.key).order_by(PERSON.c.key)).scalars())
        made = {key: create_token(session, key, name="API 测试", actor="pytest").secret for key in people}
        session.commit()
        for secret in made.values():
            authenticate_token(session, secret, channel="api")
    TOKENS.clear()
    TOKENS.update(made)
    yield made
    TOKENS.clear()


@pytest.fixture
def client(app: FastAPI, tokens: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


def auth(person_key: str) -> dict[str, str]:
    """The headers a person's requests carry: their real token (an unknown person: a token that
    matches nothing)."""
    return {"Authorization": f"Bearer {TOKENS.get(person_key, UNKNOWN)}"}
