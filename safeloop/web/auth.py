"""Who is looking at a page: the login session in the cookie, checked exactly as the API checks a
bearer session (``safeloop.accounts.sessions.authenticate_session``, channel ``web``).

The cookie (``COOKIE``) holds the session secret ``ss_…`` itself -- opaque, HttpOnly,
SameSite=Lax, ``Secure`` when ``web_cookie_secure`` is set; the database keeps only its SHA-256.
Every form carries a CSRF token: for a signed-in person it is an HMAC of their session secret
(so it lives and dies with the session and needs no storage); the login form, which has no
session yet, uses a random double-submit cookie (``LOGIN_CSRF_COOKIE``). A POST whose token is
missing or wrong is refused (403) before anything else is read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from core.errors import NotAuthenticated
from safeloop.accounts.principal import Principal
from safeloop.accounts.sessions import Lifetimes, authenticate_session
from safeloop.api.deps import channel_origin, credential_writer, request_session
from states.requests import Origin, set_origin

COOKIE = "safeloop_session"
LOGIN_CSRF_COOKIE = "safeloop_login_csrf"
CSRF_FIELD = "csrf"
CHANNEL = "web"


def origin(request: Request, credential: str | None) -> Origin:
    return channel_origin(request, CHANNEL, credential)


@contextmanager
def database(request: Request) -> Iterator[Session]:
    """One session per page: the API's ``request_session`` with channel ``web``."""
    with request_session(request, CHANNEL) as session:
        yield session


def signed_in(request: Request, session: Session) -> Principal | None:
    """The person behind the cookie, or None (no cookie, or a session that is not valid)."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    try:
        with credential_writer(request) as writer:
            principal = authenticate_session(
                session, secret, channel=CHANNEL, writer=writer,
                lifetimes=Lifetimes.from_settings(request.app.state.settings))
        session.commit()
    except NotAuthenticated:
        session.rollback()
        return None
    set_origin(session, origin(request, principal.credential))
    return principal


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose secret is ``secret`` (not the secret, nor its stored hash)."""
    return hmac.new(secret.encode("utf-8"), b"safeloop-web-csrf", hashlib.sha256).hexdigest()


def same(expected: str | None, given: object) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected or "", given)


def session_csrf(request: Request) -> str:
    return csrf_token(request.cookies.get(COOKIE, ""))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    settings = request.app.state.settings
    response.set_cookie(COOKIE, secret, max_age=settings.session_lifetime_s, path="/", httponly=True,
                        samesite="lax", secure=settings.web_cookie_secure)


def set_login_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", httponly=True,
                        samesite="lax", secure=request.app.state.settings.web_cookie_secure)


def clear_cookies(response: Response, request: Request) -> None:
    secure = request.app.state.settings.web_cookie_secure
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
