"""Accounts and personal API tokens: how a person of the org file proves who they are.

One account per person (the org file stays the source of people: loading it creates accounts and
disables those of people no longer in it, never deleting, so the trail still names them). Only
hashes are stored: the password's Argon2id encoding, and the SHA-256 of a token's secret (the
secret is 256 random bits, so a fast hash is right; the prefix is a non-secret label for lists).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


def _ts(**kw: object) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), **kw)  # type: ignore[arg-type]


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    password_hash: str | None = Field(default=None, max_length=255)  # None: cannot log in yet
    must_change: bool = Field(default=False)  # a one-time password: change it at first login
    disabled: bool = Field(default=False)
    disabled_reason: str | None = Field(default=None, max_length=16)  # "org" (left the file), "admin"
    # the org file (its name) whose latest load listed this person: a later load of the same
    # file without them disables the account; other (partial) files leave it alone
    org_file: str | None = Field(default=None, max_length=255)
    failed_logins: int = Field(default=0)  # consecutive failures; reset by a successful login
    locked_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    password_changed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_login_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256 hex of the secret
    prefix: str = Field(max_length=16)  # the secret's first characters, for lists; not secret
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class LoginSession(SQLModel, table=True):
    """A server-side login (API or web): the secret (``ss_`` and 256 random bits) is the client's
    only copy; the row holds its SHA-256. It dies when revoked (logout), after ``idle`` without
    use (``last_seen_at``) or at ``expires_at`` (the absolute lifetime), whichever is first."""

    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 hex of the secret
    channel: str = Field(max_length=8)  # "api" | "web": where the person logged in
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    last_seen_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
