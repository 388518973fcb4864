"""Real identities for API tests, with no dependency override: the app as ``create_app`` builds it,
a personal API token per person (``safeloop.accounts.tokens.create_token``) sent as
``Authorization: Bearer <secret>``, and the read scope the real ``states.visibility`` decides.

Token use is an audit row at most once a minute per token (``safeloop.accounts.tokens``): each
token's first use is made here when it is created, and ``written`` -- the row count of every
table, to prove a refusal wrote nothing -- leaves ``token_use`` rows out, so a test that runs past
the minute does not count the token's documented use as something the refused request wrote.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from core.settings import Settings
from safeloop.accounts.tokens import authenticate_token, create_token
from safeloop.api.app import create_app

UPLOAD_CAP = 64 * 1024
BODY_CAP = 256 * 1024


def api_settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, storage_dir=tmp_path / "store",
                    api_max_upload_bytes=UPLOAD_CAP, api_max_body_bytes=BODY_CAP,
                    api_page_size=20, api_page_max=50)


def real_app(settings: Settings, bind: Engine | Connection) -> FastAPI:
    """The app with no dependency overrides (``bind`` is its database: an engine, or one
    connection the event matrix holds a transaction on)."""
    app = create_app(settings, engine=bind)
    assert not app.dependency_overrides
    return app


class Tokens:
    """One real token per person, made on first ask; ``headers(person)`` for a request."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        self.secrets: dict[str, str] = {}

    def secret(self, person: str) -> str:
        if person not in self.secrets:
            with Session(self.bind, expire_on_commit=False) as session:
                made = create_token(session, person, name="矩阵测试", actor="admin")
                session.commit()
                authenticate_token(session, made.secret)  # its first use, recorded now
                session.commit()
            self.secrets[person] = made.secret
        return self.secrets[person]

    def headers(self, person: str, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret(person)}", **more}


def written(conn: Connection) -> dict[str, int]:
    """Rows in every table (one round trip), token-use audit rows left out (see the module)."""
    names = sorted(SQLModel.metadata.tables)
    sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{n}")' for n in names) + (
        ", (SELECT count(*) FROM audit_entry WHERE event = 'token_use')")
    *values, uses = conn.exec_driver_sql(sql).one()
    counts = {name: int(v) for name, v in zip(names, values, strict=True)}
    counts["audit_entry"] -= int(uses)
    return counts
