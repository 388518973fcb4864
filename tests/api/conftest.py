"""The API on a real database (SQLite, and PostgreSQL when configured) with the demo org, served
in-process through ``fastapi.testclient.TestClient`` (httpx): real engine, real evidence store.

STAND-IN IDENTITY: until the accounts and visibility branches (issue 13) land on main, the
fixture ``stand_in_identity`` -- and only it -- overrides ``deps.current_principal`` (a bearer
value ``test:<person key>`` names the person) and ``deps.visibility`` (sees every row; auditors
read-only). At the merge it is replaced by real tokens (``safeloop.accounts.tokens.create_token``)
and the real ``states.visibility``; no test below depends on how the caller was identified.
"""

# No ``from __future__ import annotations``: FastAPI reads the stand-ins' annotations.
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.settings import Settings
from models.tables import PERSON, ROLE_GRANT
from safeloop.api import deps
from safeloop.api.app import create_app
from safeloop.api.errors import NOT_AUTHENTICATED, NotAuthenticated

TEST_PREFIX = "test:"


@dataclass(frozen=True)
class StandInPrincipal:
    """The contract's ``Principal`` fields (safeloop/accounts/principal.py)."""

    person_id: int
    person_key: str
    name: str
    channel: str
    credential: str | None


@dataclass
class SeesEverything:
    """The contract's ``Visibility`` with no scoping: every row (the scope matrix waits for it)."""

    read_only: bool = False

    def where(self, workflow: Any) -> None:
        return None

    def sees(self, conn: Any, workflow: Any, entity_id: int) -> bool:
        return True

    def audit_where(self, audit_table: Any) -> None:
        return None


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, storage_dir=tmp_path / "store",
                    api_max_upload_bytes=64 * 1024, api_page_size=20, api_page_max=50)


@pytest.fixture
def app(api_settings: Settings, engine: Engine, org: Session) -> FastAPI:
    return create_app(api_settings, engine=engine)


@pytest.fixture
def stand_in_identity(app: FastAPI, engine: Engine) -> Iterator[None]:
    """STAND-IN for accounts/visibility until they land (see the module docstring)."""

    def person(key: str) -> tuple[int, str, bool] | None:
        with engine.connect() as conn:
            row = conn.execute(select(PERSON.c.id, PERSON.c.name).where(PERSON.c.key == key)).first()
            if row is None:
                return None
            auditor = conn.execute(select(ROLE_GRANT.c.id).where(
                ROLE_GRANT.c.person_id == row[0], ROLE_GRANT.c.role == "auditor")).first()
            conn.rollback()
        return int(row[0]), str(row[1]), auditor is not None

    def current_principal(authorization: Annotated[str | None, Header()] = None) -> StandInPrincipal:
        secret = deps.bearer_secret(authorization)
        found = person(secret.removeprefix(TEST_PREFIX)) if secret.startswith(TEST_PREFIX) else None
        if found is None:
            raise NotAuthenticated(NOT_AUTHENTICATED)
        return StandInPrincipal(found[0], secret.removeprefix(TEST_PREFIX), found[1], "api",
                                f"token:{found[0]}")

    def visibility(principal: Annotated[Any, Depends(deps.current_principal)]) -> SeesEverything:
        found = person(principal.person_key)
        return SeesEverything(read_only=bool(found and found[2]))

    app.dependency_overrides[deps.current_principal] = current_principal
    app.dependency_overrides[deps.visibility] = visibility
    yield
    app.dependency_overrides.clear()


@pytest.fixture
def client(app: FastAPI, stand_in_identity: None) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


def auth(person_key: str) -> dict[str, str]:
    """The headers a person's requests carry (a stand-in token until accounts land)."""
    return {"Authorization": f"Bearer {TEST_PREFIX}{person_key}"}
