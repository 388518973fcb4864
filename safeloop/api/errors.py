"""One JSON error shape for every refusal, and the HTTP status of each error kind.

    {"error": "transition_not_allowed", "message": "<zh-CN>", "state": "rectifying",
     "allowed_events": ["submit", …], "field": "deadline", "fields": […]}

``state`` and ``allowed_events`` are present when the refusal concerns an entity the caller may
see; ``field`` names the (first) input at fault for 422. Statuses: 401 not authenticated (with
``WWW-Authenticate: Bearer``), 403 not allowed now (state, role or rule), 404 not found (also
what is out of the caller's scope, so existence never leaks), 409 someone changed it first (a
stale ``If-Match`` or version), 413 body too large, 415 file type refused, 422 bad input, 429 an
account locked after failed logins (with ``Retry-After``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import SafeloopError
from core.messages import zh_error
from safeloop.integrity import refusal

try:
    from core.errors import NotAuthenticated
except ImportError:  # until the accounts branch (issue 13) lands: the contract's class, same name
    class NotAuthenticated(SafeloopError):  # type: ignore[no-redef]
        """Not signed in, or a credential that is unknown, expired or revoked."""

        exit_code = 2
        http_status = 401

log = logging.getLogger("safeloop.api")

# The error kind's code and HTTP status, by the class name nearest in the error's MRO (names, so
# a subclass added later -- AccountLocked -- maps through its parent without an edit here).
KINDS: dict[str, tuple[str, int]] = {
    "AccountLocked": ("account_locked", 429),  # with Retry-After: seconds until it unlocks
    "NotAuthenticated": ("not_authenticated", 401),
    "PermissionDenied": ("permission_denied", 403),
    "GuardFailed": ("guard_failed", 403),
    "TransitionNotAllowed": ("transition_not_allowed", 403),
    "ConcurrentUpdate": ("conflict", 409),
    "NotFound": ("not_found", 404),
    "InvalidInput": ("invalid_input", 422),
    "Refused": ("refused", 409),
    "SafeloopError": ("error", 400),
}
NOT_AUTHENTICATED = "未登录或凭据无效"
UNPARSABLE = "请求体无法解析（应为 UTF-8 编码的 JSON，上传文件为 multipart/form-data）"


class ErrorBody(BaseModel):
    """The one error shape (the OpenAPI document names it for every error status)."""

    error: str = Field(description="错误类别，如 not_found、conflict、invalid_input")
    message: str = Field(description="中文说明")
    state: str | None = Field(default=None, description="实体当前状态（调用者可见时）")
    allowed_events: list[str] | None = Field(default=None, description="调用者现在可执行的操作")
    field: str | None = Field(default=None, description="出错的（第一个）输入字段")
    fields: list[str] | None = Field(default=None, description="出错的全部输入字段")


ERROR_DESCRIPTIONS = {
    401: "未登录或令牌无效（已过期、已撤销、账号停用或锁定）",
    403: "无权执行（角色、状态或规则不允许；审计人员只读）",
    404: "不存在，或不在调用者可见范围内",
    409: "已被他人修改（If-Match 版本过期）或与现有记录冲突",
    413: "请求体过大",
    415: "文件类型不被接受（按内容识别）",
    422: "输入有误（指明字段）",
    503: "数据库暂时不可用，请稍后重试",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses=`` entries for these error statuses, all with ``ErrorBody``."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
            for status in statuses}


def documented_errors(method: str, path: str) -> dict[int | str, dict[str, Any]]:
    """The errors an API route can answer, from what it is: every authenticated route may say
    401/422/503; one naming an entity 404; the audit routes 403 (auditors only); every POST may
    be refused (403), miss its entity or a referenced one (404), lose a race (409) or be too
    large (413). A route adds its own (evidence: 415) through its ``responses=``."""
    found = {401, 422, 503}
    if "{" in path:
        found.add(404)
    if "/audit" in path:
        found.add(403)
    if method.upper() == "POST":
        found |= {403, 404, 409, 413}
    return responses(*sorted(found))


class ApiError(SafeloopError):
    """A refusal the API itself makes (size, type, header) with its own status and code."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.code = code


def kind_of(exc: SafeloopError) -> tuple[str, int]:
    if isinstance(exc, ApiError):
        return exc.code, exc.status
    for cls in type(exc).__mro__:
        if cls.__name__ in KINDS:
            return KINDS[cls.__name__]
    return KINDS["SafeloopError"]


def body(code: str, message: str, *, state: str | None = None,
         allowed_events: Sequence[str] | None = None, fields: Sequence[str] = ()) -> dict[str, Any]:
    """The one error shape; keys without a value are left out."""
    out: dict[str, Any] = {"error": code, "message": message}
    if state is not None:
        out["state"] = state
    if allowed_events is not None:
        out["allowed_events"] = list(allowed_events)
    if fields:
        out["field"] = fields[0]
        out["fields"] = list(fields)
    return out


def _fields(details: Mapping[str, Any]) -> list[str]:
    found = details.get("fields") or ([details["field"]] if details.get("field") else [])
    return [str(f) for f in found]


def error_response(exc: SafeloopError) -> JSONResponse:
    code, status = kind_of(exc)
    details = exc.details
    allowed = details.get("allowed_events", details.get("allowed"))
    payload = body(code, exc.message, state=details.get("state"), allowed_events=allowed,
                   fields=_fields(details))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": _retry_after(details.get("until"))}
    return JSONResponse(payload, status_code=status, headers=headers)


def _retry_after(until: Any) -> str:
    """Whole seconds from now until ``until`` (ISO 8601), at least 1."""
    from datetime import UTC, datetime

    try:
        left = (datetime.fromisoformat(str(until)) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError):
        left = 60
    return str(max(1, int(left) + (left % 1 > 0)))


def validation_fields(errors: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """A request's validation errors as one zh-CN message and the fields named (``body``,
    ``query`` … prefixes dropped, so the field is the one a person typed)."""
    parts, fields = [], []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        name = ".".join(loc) or "body"
        fields.append(name)
        parts.append(f"{name}：{zh_error(dict(err))}")
    return "输入有误：" + "；".join(parts[:20]), fields


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one shape."""

    @app.exception_handler(SafeloopError)
    async def _domain(_request: Request, exc: SafeloopError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, fields = validation_fields(exc.errors())
        return JSONResponse(body("invalid_input", message, fields=fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI/Starlette could not parse: bad input
            return JSONResponse(body("invalid_input", UNPARSABLE, fields=["body"]), status_code=422)
        texts = {404: "没有这个地址", 405: "此地址不支持该请求方法", 401: NOT_AUTHENTICATED,
                 413: "请求体过大"}
        codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated",
                 413: "payload_too_large"}
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            body(codes.get(exc.status_code, "error"), texts.get(exc.status_code, str(exc.detail))),
            status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        return error_response(refusal(exc))  # a race the checks in code could not see

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", type(exc.orig).__name__ if exc.orig else "OperationalError")
        return JSONResponse(body("database_unavailable", "数据库暂时不可用，请稍后重试"),
                            status_code=503, headers={"Retry-After": "5"})
