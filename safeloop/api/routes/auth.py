"""Login sessions over the API: ``POST /login`` (the one route besides health and the docs that
needs no credential), ``POST /logout``, ``GET /me`` and ``POST /me/password``.

A login answers a session secret (``ss_…``) to send as ``Authorization: Bearer``; the web app
puts the same secret in an HttpOnly cookie. Every refused login is the same 401 whatever the
reason (unknown person, wrong password, disabled account, no password yet); a locked account is
429 with ``Retry-After`` (seconds until it unlocks). A session opened with a one-time password
(``user set-password --generate``) may call only these routes until the password is changed
(``deps.current_principal`` refuses the rest with 403).

No ``from __future__ import annotations``: FastAPI reads the annotations.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from safeloop.accounts import sessions, store
from safeloop.api import deps
from safeloop.api.deps import Authenticated, OwnSession
from safeloop.api.routes import Prefixed

STRICT = ConfigDict(extra="forbid")


class LoginBody(BaseModel):
    """用户名（组织文件中的人员编号）与密码。"""

    model_config = STRICT
    person: str = Field(description="人员编号（组织文件中的 id），如 li.anquan")
    password: str = Field(description="密码")


class LoginAnswer(BaseModel):
    token: str = Field(description="会话令牌（ss_ 开头），以 Authorization: Bearer <令牌> 调用其他接口；"
                                   "只显示这一次")
    expires_at: datetime = Field(description="会话最迟失效时间（带时区）；空闲超过 idle_timeout_s 秒也会失效")
    idle_timeout_s: int = Field(description="空闲多少秒后会话失效")
    must_change: bool = Field(description="是否为一次性密码：须先 POST /api/v1/me/password 修改密码")


class PasswordBody(BaseModel):
    """修改本人密码：原密码与新密码。"""

    model_config = STRICT
    old: str = Field(description="原密码（一次性密码也在此填写）")
    new: str = Field(description="新密码（至少 10 个字符，不能与人员编号相同）")


class Role(BaseModel):
    role: str = Field(description="角色")
    unit: str | None = Field(description="所在单位（企业人员）")
    jurisdiction: str | None = Field(description="所在辖区（监管、审计人员）")
    department: str | None = Field(description="所在部门（监管人员）")


class MeAnswer(BaseModel):
    person: str = Field(description="人员编号")
    name: str = Field(description="姓名")
    roles: list[Role] = Field(description="组织文件中的角色")
    read_only: bool = Field(description="是否只读（审计人员，或没有可操作的角色）")
    must_change: bool = Field(description="是否须先修改一次性密码")
    credential: str | None = Field(description="本次调用的凭据编号（session:<id> 或 token:<id>），不是密钥")
    channel: Literal["api"] = Field(description="渠道")


def mount(router: Prefixed) -> None:
    def login(request: Request, body: LoginBody,
              session: Annotated[Session, Depends(deps.db)]) -> LoginAnswer:
        lifetimes = sessions.Lifetimes.from_settings(request.app.state.settings)
        opened = sessions.login(session, body.person, body.password, channel="api", lifetimes=lifetimes)
        return LoginAnswer(token=opened.secret, expires_at=opened.expires_at,
                           idle_timeout_s=int(lifetimes.idle.total_seconds()),
                           must_change=opened.principal.must_change)

    def logout(caller: Authenticated, session: OwnSession) -> Response:
        sessions.logout(session, caller)  # type: ignore[arg-type]  # a Principal behind the protocol
        return Response(status_code=204)

    def me(caller: Authenticated, session: OwnSession) -> MeAnswer:
        conn = session.connection()
        return MeAnswer(person=caller.person_key, name=caller.name,
                        roles=[Role(**r) for r in store.roles_of(conn, caller.person_id)],
                        read_only=deps.read_only(session, caller.person_key),
                        must_change=caller.must_change, credential=caller.credential, channel="api")

    def change_password(caller: Authenticated, session: OwnSession, body: PasswordBody) -> Response:
        sessions.change_password(session, caller, body.old, body.new)  # type: ignore[arg-type]
        return Response(status_code=204)

    router.add_api_route("/login", login, methods=["POST"], tags=["账号"], operation_id="login",
                         summary="登录：以人员编号与密码换取会话令牌（无需凭据）",
                         responses={401: {"description": "人员编号或密码不对（各种原因同一答复）"},
                                    429: {"description": "连续登录失败，账号暂时锁定（见 Retry-After）"}})
    router.add_api_route("/logout", logout, methods=["POST"], tags=["账号"], operation_id="logout",
                         summary="登出：结束本次会话", status_code=204, response_class=Response)
    router.add_api_route("/me", me, methods=["GET"], tags=["账号"], operation_id="me",
                         summary="本人：人员编号、姓名、角色、是否只读、是否须改密码")
    router.add_api_route("/me/password", change_password, methods=["POST"], tags=["账号"],
                         operation_id="change_password", status_code=204, response_class=Response,
                         summary="修改本人密码（须提供原密码；其他会话随之失效）",
                         responses={429: {"description": "连续失败，账号暂时锁定（见 Retry-After）"}})
