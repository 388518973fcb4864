"""The one ASGI app (the web app will extend it): ``create_app(settings) -> FastAPI``.

Around every request (``Guard``, a plain ASGI middleware so streamed answers stay streamed):
- the body is capped (``api_max_body_bytes``; evidence uploads ``api_max_upload_bytes``): a
  declared length over the cap is refused before it is read, a chunked body when it crosses it;
- security headers on every answer: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options:
  DENY``, ``Referrer-Policy: no-referrer``, a Content-Security-Policy that allows nothing for API
  answers (the docs pages get what Swagger UI needs), ``Cache-Control: no-store`` on answers to
  requests that carried credentials and on everything under ``/api/``;
- metrics by route template.
CORS stays closed unless ``api_cors_origins`` lists origins. No log line carries a secret: the
``Authorization`` header is never logged, and ``RedactSecrets`` masks any bearer value that would
reach a log record anyway.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.rules import Rules
from core.settings import Settings
from models.db import make_engine, read_only
from safeloop import web
from safeloop.api import errors
from safeloop.api.admission import Admission, gates_for
from safeloop.api.metrics import Metrics
from safeloop.api.routes import Prefixed, audit, auth, evidence, health, inbox, workflows

API_PREFIX = "/api/v1"
UPLOAD_PATHS = frozenset({f"{API_PREFIX}/evidence", *web.UPLOAD_PAGES})
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries around an upload at the cap
API_PAGES = ("/api/", "/healthz", "/metrics")  # every other path is the web app's (its CSP)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
            "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# The web app's pages (``safeloop.web``): their own vendored script and stylesheet, forms to this site.
WEB_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
BASE_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                (b"referrer-policy", b"no-referrer")]


class RedactSecrets(logging.Filter):
    """Mask bearer values, ``token=``/``password=`` values and anything shaped like a personal
    token (``sl_…``) or session secret (``ss_…``) in any log record (access logs included)."""

    PATTERN = re.compile(r"(?i)(bearer\s+|token=|password=)([^\s&\"']+)|\b()(s[ls]_[A-Za-z0-9_-]{20,})")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that does not format is left alone
            return True
        if self.PATTERN.search(text):
            record.msg, record.args = self.PATTERN.sub(lambda m: (m[1] or m[3] or "") + "***", text), None
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "safeloop", "safeloop.api"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class TooLarge(StarletteHTTPException):
    """A body over the cap. An HTTPException, so that FastAPI re-raises it when it happens while
    the body is read (any other error there becomes 400 "error parsing the body")."""

    def __init__(self) -> None:
        super().__init__(413)


class Guard:
    """Body cap, security headers and metrics around the app (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int, metrics: Metrics) -> None:
        self.app, self.max_body, self.max_upload, self.metrics = app, max_body, max_upload, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        cap = self.max_upload + MULTIPART_OVERHEAD if path in UPLOAD_PATHS else self.max_body
        headers = dict(scope.get("headers") or [])
        credentialed = b"authorization" in headers or path.startswith("/api/")
        csp = DOCS_CSP if path in DOCS_PATHS else API_CSP if path.startswith(API_PAGES) else WEB_CSP
        started, status = time.perf_counter(), 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                extra = [*BASE_HEADERS, (b"content-security-policy", csp.encode())]
                if credentialed:
                    extra.append((b"cache-control", b"no-store"))
                names = {k.lower() for k, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > cap:
                raise TooLarge
            seen = 0

            async def capped_receive() -> Message:
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > cap:
                        raise TooLarge
                return message

            await self.app(scope, capped_receive, send_with_headers)
        except TooLarge:
            if response_started:
                raise
            await _too_large(send_with_headers, cap)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope.get("method", ""), template, status,
                                 time.perf_counter() - started)


async def _too_large(send: Send, cap: int) -> None:
    import json

    body = json.dumps(errors.body("payload_too_large", f"请求体过大（上限 {cap // 1024} KB）"),
                      ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings, *, engine: Any = None) -> FastAPI:
    """The API for ``settings``; ``engine`` (optional) is a database engine to share."""
    app = FastAPI(
        title="safeloop API",
        version="1",
        description="安全生产双重预防机制工作流 REST API：隐患闭环、分级排查、挂牌督办、风险分级、审计留痕。"
                    "除 /healthz、POST /api/v1/login 与接口文档外，所有接口须以 "
                    "Authorization: Bearer <令牌> 调用：个人令牌（sl_…）或登录得到的会话令牌（ss_…）。",
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url,
                                             busy_timeout_s=settings.sqlite_busy_timeout_s)
    app.state.read_engine = read_only(app.state.engine)  # GET requests (safeloop.api.deps.db)
    app.state.rules = Rules.from_settings(settings)
    app.state.metrics = Metrics()
    errors.install(app)

    api = Prefixed(app.router, API_PREFIX)
    auth.mount(api)  # before the workflows' routes: /login, /logout, /me are no workflow's
    inbox.mount(api, settings)  # before the workflows' routes: /inbox is no workflow's code
    evidence.mount(api, settings)
    audit.mount(api, settings)
    workflows.mount(api, settings)
    health.mount(Prefixed(app.router))
    web.mount(app)  # the pages (safeloop.web): /login, / (inbox), /{workflow}/{code}, /static

    if settings.api_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.api_cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "If-Match"],
                           expose_headers=["ETag", "Location"], allow_credentials=False)
    app.add_middleware(Admission, gates=gates_for(app.state.engine))  # no pool-wait deadlock
    app.add_middleware(Guard, max_body=settings.api_max_body_bytes,
                       max_upload=settings.api_max_upload_bytes, metrics=app.state.metrics)
    install_log_redaction()
    return app
