"""Who is calling, what they may see, and the database session a request works in.

This is the ONLY module of the API that checks credentials (``safeloop.accounts``: personal
tokens ``sl_…`` and login sessions ``ss_…``) and scopes reads (``states.visibility``); besides
it only ``routes/auth`` (login, logout, me) uses ``safeloop.accounts``, to open and end sessions.
Every route gets the caller through ``current_principal``, the caller's scope through
``visibility`` and its session through ``session`` -- so swapping how people are identified or
scoped touches this file alone. The routes see the two through the small protocols below
(``Caller``, ``Scope``), which name exactly what they use.

``authenticated`` checks the bearer credential; ``current_principal`` also refuses (403) a
session opened with a one-time password until the password is changed: only ``/me``,
``/me/password`` and ``/logout`` take ``authenticated`` alone.

A request's session carries an ``Origin`` (channel ``api`` and the credential's id --
``token:<id>`` or ``session:<id>`` -- never its secret) and the rules in force built once from
the app's settings, like the CLI's sessions do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends, Header, Request
from sqlalchemy import ColumnElement, Connection, Table
from sqlmodel import Session

from core.rules import set_rules
from safeloop.api.admission import READING
from safeloop.api.errors import NOT_AUTHENTICATED, ApiError, NotAuthenticated
from states.requests import Origin, set_origin
from states.workflow import Workflow


class Caller(Protocol):
    """What the API reads of an authenticated person (``safeloop.accounts.principal.Principal``)."""

    @property
    def person_id(self) -> int: ...
    @property
    def person_key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def credential(self) -> str | None: ...
    @property
    def must_change(self) -> bool: ...


class Scope(Protocol):
    """What the API reads of a person's read scope (``states.visibility.Visibility``)."""

    read_only: bool

    def where(self, workflow: Workflow) -> ColumnElement[bool] | None: ...
    def sees(self, conn: Connection, workflow: Workflow, entity_id: int) -> bool: ...
    def audit_where(self, audit_table: Table) -> ColumnElement[bool] | None: ...


def channel_origin(request: Request, channel: str, credential: str | None) -> Origin:
    """Where a request's acts come from. A person's event is recorded at the real clock: neither
    the API nor the pages ever simulate time."""
    settings = request.app.state.settings
    return Origin(channel=channel, credential=credential,
                  tolerance=timedelta(seconds=settings.time_tolerance_s))


def _origin(request: Request, credential: str | None) -> Origin:
    return channel_origin(request, "api", credential)


def reads_only(request: Request) -> bool:
    return request.method in READING


@contextmanager
def request_session(request: Request, channel: str) -> Iterator[Session]:
    """One session per request (API or page) on the app's engine, with the rules in force; the
    origin names ``channel`` and gets the caller's credential once they are authenticated.
    A request that only reads gets the read-only engine (SQLite: deferred transactions side by
    side, writes refused), so reads never queue behind the write lock."""
    state = request.app.state
    with Session(state.read_engine if reads_only(request) else state.engine,
                 expire_on_commit=False) as session:
        set_origin(session, channel_origin(request, channel, None))
        set_rules(session, state.rules)
        try:
            yield session
        finally:
            session.rollback()  # whatever a route left open (reads): release it now


@contextmanager
def credential_writer(request: Request) -> Iterator[Session | None]:
    """Where a credential's once-a-minute use is written: a session of its own for a reading
    request (its own session cannot write); None -- the request's own session -- for a writing
    one, which already holds the write lock (a second writer there would wait on it)."""
    if not reads_only(request):
        yield None
        return
    with Session(request.app.state.engine, expire_on_commit=False) as own:
        yield own


def db(request: Request) -> Iterator[Session]:
    """The API request's session (``request_session`` with channel ``api``)."""
    with request_session(request, "api") as session:
        yield session


def bearer_secret(authorization: str | None) -> str:
    """The secret of an ``Authorization: Bearer <secret>`` header; anything else is 401."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > 512:
        raise NotAuthenticated(NOT_AUTHENTICATED)
    return secret


MUST_CHANGE = "请先修改一次性密码（POST /api/v1/me/password）后再使用其他功能"


def authenticated(
    request: Request,
    session: Annotated[Session, Depends(db)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    """The person behind the request's bearer credential -- a personal token or a login
    session -- or 401 (one message) when there is none or it is not valid."""
    secret = bearer_secret(authorization)  # no credential: 401 before anything is looked up
    from safeloop.accounts.sessions import PREFIX, Lifetimes, authenticate_session
    from safeloop.accounts.tokens import authenticate_token

    with credential_writer(request) as writer:
        try:
            principal: Caller
            if secret.startswith(PREFIX):
                principal = authenticate_session(
                    session, secret, channel="api", writer=writer,
                    lifetimes=Lifetimes.from_settings(request.app.state.settings))
            else:
                principal = authenticate_token(session, secret, channel="api", writer=writer)
            session.commit()  # the credential's use, if it was recorded, stands on its own
        except BaseException:
            session.rollback()
            raise
    return principal


Authenticated = Annotated[Caller, Depends(authenticated)]


def current_principal(principal: Authenticated) -> Caller:
    """``authenticated``, refusing (403) a session that must first change its one-time password."""
    if principal.must_change:
        raise ApiError(403, "password_change_required", MUST_CHANGE)
    return principal


CurrentPrincipal = Annotated[Caller, Depends(current_principal)]


def session(request: Request, principal: CurrentPrincipal,
            opened: Annotated[Session, Depends(db)]) -> Session:
    """The request's session, now carrying who acts (their token id, never its secret)."""
    set_origin(opened, _origin(request, principal.credential))
    return opened


def own_session(request: Request, principal: Authenticated,
                opened: Annotated[Session, Depends(db)]) -> Session:
    """``session`` for the routes a must-change session may still call (me, logout)."""
    set_origin(opened, _origin(request, principal.credential))
    return opened


def visibility(principal: CurrentPrincipal, opened: Annotated[Session, Depends(db)]) -> Scope:
    """What the caller may see (unknown person: nothing)."""
    from states.visibility import visibility_for

    found: Scope = visibility_for(opened.connection(), principal.person_key)
    return found


def read_only(opened: Session, person_key: str) -> bool:
    """Whether the person may only look (``/me``): their scope, without the must-change gate."""
    from states.visibility import visibility_for

    return bool(visibility_for(opened.connection(), person_key).read_only)


DbSession = Annotated[Session, Depends(session)]
OwnSession = Annotated[Session, Depends(own_session)]
Visibility = Annotated[Scope, Depends(visibility)]


def settings_of(request: Request) -> Any:
    return request.app.state.settings
