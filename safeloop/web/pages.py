"""The pages: login, logout, password, the inbox (我的待办) and every workflow's entity page.

Each page reads through the functions the API's routes call -- ``safeloop.api.queries`` (inbox,
entity, timeline, evidence), ``states.visibility`` (read scope), ``states.engine`` (allowed
events, fire) and the API's body models -- so a page shows and does exactly what the API would
for the same person. Out of scope is "not found" (404), as in the API.

Handlers are plain functions of a ``Visit`` (the signed-in person, their database session, the
posted form) run in the thread pool; ``page`` wraps them with the session check, the one-time
password gate and the CSRF check of every POST.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from core.errors import (
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    SafeloopError,
)
from models.db import utcnow
from safeloop.accounts import sessions
from safeloop.accounts.principal import Principal
from safeloop.api import queries
from safeloop.api.errors import kind_of, validation_fields
from safeloop.api.routes.bodies import body_model, split
from safeloop.api.routes.workflows import READ_ONLY
from safeloop.web import auth, forms, photos, views
from safeloop.web.render import render
from safeloop.web.reporters import is_auditor, units_for
from states import engine
from states.actors import Lookups
from states.registry import WORKFLOWS
from states.visibility import Visibility, visibility_for
from states.workflow import EventRule, Workflow

CSRF_REFUSED = "表单校验失败（缺少或错误的安全令牌），请刷新页面后重新提交"
STALE = "此事项已被他人修改，页面上的内容已过时；请重新加载后再操作"


@dataclass
class Visit:
    request: Request
    session: Session
    principal: Principal
    csrf: str
    form: dict[str, str] | None = None
    params: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)  # a page with ``uploads``

    @property
    def settings(self) -> Any:
        return self.request.app.state.settings

    @cached_property
    def scope(self) -> Visibility:
        return visibility_for(self.session.connection(), self.principal.person_key)

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status, me=self.principal, csrf=self.csrf, **context)


Handler = Callable[[Visit], Response]


async def read_form(request: Request) -> dict[str, str]:
    async with request.form() as posted:
        return {k: v for k, v in posted.items() if isinstance(v, str)}


def safe_next(target: str | None) -> str:
    """Only a path on this site (no ``//host`` or ``/\\host``) is followed after login."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def page(handler: Handler, *, before_password_change: bool = False,
         uploads: bool = False) -> Callable[[Request], Any]:
    """An endpoint that runs ``handler`` for the signed-in person (else to /login); with
    ``uploads`` a POST may carry one file, open (spooled by Starlette) while the handler runs."""

    async def endpoint(request: Request) -> Response:
        if uploads and request.method == "POST":
            async with request.form(max_files=1) as posted:
                form = {k: v for k, v in posted.items() if isinstance(v, str)}
                files = {k: v for k, v in posted.items() if isinstance(v, UploadFile)}
                return await run_in_threadpool(_visit, request, form, handler, before_password_change,
                                               files)
        form = await read_form(request) if request.method == "POST" else None
        return await run_in_threadpool(_visit, request, form, handler, before_password_change)

    endpoint.__name__ = handler.__name__
    return endpoint


def _visit(request: Request, form: dict[str, str] | None, handler: Handler,
           before_password_change: bool, files: dict[str, UploadFile] | None = None) -> Response:
    with auth.database(request) as session:
        principal = auth.signed_in(request, session)
        if principal is None:
            target = "/login" if request.method != "GET" else (
                "/login?next=" + quote(request.url.path, safe="/"))
            response: Response = see_other(target)
            if auth.COOKIE in request.cookies:
                auth.clear_cookies(response, request)
            return response
        visit = Visit(request, session, principal, auth.session_csrf(request), form,
                      dict(request.path_params), files or {})
        if form is not None and not auth.same(visit.csrf, form.get(auth.CSRF_FIELD)):
            response = visit.page("error.html", 403, title="请求被拒绝", message=CSRF_REFUSED)
        elif principal.must_change and not before_password_change:
            response = see_other("/password")
        else:
            try:
                response = handler(visit)
            except NotFound as exc:
                session.rollback()
                response = visit.page("error.html", 404, title="未找到", message=exc.message)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- login, logout, password ------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    return _login_page(request, next_url=safe_next(request.query_params.get("next")))


def _login_page(request: Request, *, next_url: str, message: str | None = None, person: str = "",
                status: int = 200) -> Response:
    token = auth.new_login_csrf()
    response = render(request, "login.html", status, me=None, csrf=token, message=message,
                      person=person, next_url=next_url)
    auth.set_login_csrf_cookie(response, request, token)
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    if not auth.same(request.cookies.get(auth.LOGIN_CSRF_COOKIE), form.get(auth.CSRF_FIELD)):
        return _login_page(request, next_url=next_url, message=CSRF_REFUSED, status=403)
    person, password = form.get("person", "").strip(), form.get("password", "")
    return await run_in_threadpool(_login, request, person, password, next_url)


def _login(request: Request, person: str, password: str, next_url: str) -> Response:
    if not person or not password:
        return _login_page(request, next_url=next_url, message="请填写人员编号和密码", person=person,
                           status=422)
    with auth.database(request) as session:
        try:
            opened = sessions.login(session, person, password, channel=auth.CHANNEL,
                                    lifetimes=sessions.Lifetimes.from_settings(request.app.state.settings))
        except NotAuthenticated as exc:  # also AccountLocked: its own message names the unlock time
            _, status = kind_of(exc)
            return _login_page(request, next_url=next_url, message=exc.message, person=person,
                               status=status)
    response = see_other("/password" if opened.principal.must_change else next_url)
    auth.set_session_cookie(response, request, opened.secret)
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/login")
    return response


def logout(visit: Visit) -> Response:
    sessions.logout(visit.session, visit.principal)
    response = see_other("/login")
    auth.clear_cookies(response, visit.request)
    return response


def password_form(visit: Visit) -> Response:
    return visit.page("password.html", must_change=visit.principal.must_change, message=None)


def password_submit(visit: Visit) -> Response:
    form = visit.form or {}
    old, new, again = form.get("old", ""), form.get("new", ""), form.get("again", "")
    message = None
    if not old or not new:
        message = "请填写原密码和新密码"
    elif new != again:
        message = "两次输入的新密码不一致"
    else:
        try:
            sessions.change_password(visit.session, visit.principal, old, new)
            return see_other("/")
        except (InvalidInput, NotAuthenticated) as exc:
            visit.session.rollback()
            message = exc.message
    return visit.page("password.html", 422, must_change=visit.principal.must_change, message=message)


# ---- the inbox ---------------------------------------------------------------------------------


def inbox(visit: Visit) -> Response:
    settings = visit.settings
    now = utcnow()
    items: list[dict[str, Any]] = []
    counts: dict[str, Any] = {}
    if not visit.scope.read_only:
        conn = visit.session.connection()
        actor = Lookups(conn).actor(visit.principal.person_key)
        items, counts = queries.inbox(conn, list(WORKFLOWS.values()), actor, visit.scope, now,
                                      settings.api_page_size)
    zone = settings.timezone
    shown = []
    for item in items:
        workflow = WORKFLOWS[item["kind"]]
        left, overdue = views.time_left(item["due"], now, zone)
        shown.append({**item, "kind_label": workflow.label,
                      "state_label": workflow.state_label(item["state"]),
                      "overdue": bool(item["overdue"]) or overdue, "left": left,
                      "today": views.due_today(item["due"], now, zone),
                      "due_text": views.local(item["due"], zone)})
    kinds = [{"kind": k, "label": WORKFLOWS[k].label, **c} for k, c in counts.items()]
    conn = visit.session.connection()
    may_report = not visit.scope.read_only and bool(units_for(conn, visit.principal.person_key))
    return visit.page("inbox.html", items=shown, kinds=kinds, read_only=visit.scope.read_only,
                      may_report=may_report, auditor=is_auditor(conn, visit.principal.person_id),
                      total=sum(c["total"] for c in counts.values()),
                      overdue=sum(c["overdue"] for c in counts.values()),
                      today=sum(1 for i in shown if i["today"]))


# ---- an entity ---------------------------------------------------------------------------------


def _allowed(visit: Visit, workflow: Workflow, entity_id: int) -> list[EventRule]:
    if visit.scope.read_only:
        return []
    return engine.allowed_events(visit.session, workflow, entity_id, visit.principal.person_key)


def _entity_page(visit: Visit, workflow: Workflow, code: str, *, status: int = 200,
                 refusal: str | None = None, stale: bool = False, event: str | None = None,
                 posted: dict[str, str] | None = None) -> Response:
    conn = visit.session.connection()
    row = queries.entity(conn, workflow, code, visit.scope.where(workflow))
    events = queries.timeline(conn, workflow, row["id"])
    zone = visit.settings.timezone
    now = utcnow()
    due_col = queries.due_column(workflow)
    due = row.get(due_col.name) if due_col is not None else None
    left, overdue = views.time_left(due, now, zone) if row["state"] not in workflow.terminal else ("", False)
    rows = views.timeline_rows(conn, events, zone)
    evidence = queries.evidence_refs(events)
    facts = views.facts(conn, row, zone)
    allowed = _allowed(visit, workflow, row["id"])
    actions = [{"rule": r, "fields": forms.fields_of(body_model(workflow, r)),
                "photo": photos.takes_photo(workflow, r), "open": r.name == event} for r in allowed]
    return visit.page("entity.html", status, workflow=workflow, row=row, facts=facts,
                      state_label=workflow.state_label(row["state"]), due_text=views.local(due, zone),
                      left=left, overdue=overdue, timeline=rows, evidence=evidence, actions=actions,
                      refusal=refusal, stale=stale, event=event, posted=posted or {},
                      path=f"/{workflow.name}/{code}")


def entity(workflow: Workflow) -> Handler:
    def show(visit: Visit) -> Response:
        return _entity_page(visit, workflow, visit.params["code"])

    show.__name__ = f"show_{workflow.name}"
    return show


def evidence_image(workflow: Workflow) -> Handler:
    """A photo the entity's trail carries, as the thumbnail on its page (scope as the page's)."""
    def image(visit: Visit) -> Response:
        conn = visit.session.connection()
        row = queries.entity(conn, workflow, visit.params["code"], visit.scope.where(workflow))
        known = {e["sha256"] for e in queries.evidence_refs(queries.timeline(conn, workflow, row["id"]))}
        return photos.image_response(conn, visit.settings.storage_dir, visit.params["sha"], known)

    image.__name__ = f"evidence_{workflow.name}"
    return image


def fire(workflow: Workflow) -> Handler:
    def fire_event(visit: Visit) -> Response:
        code, name = visit.params["code"], visit.params["event"]
        form = visit.form or {}
        row = queries.entity(visit.session.connection(), workflow, code, visit.scope.where(workflow))
        rule = workflow.events.get(name)
        if rule is None:
            raise NotFound(f"{workflow.label}没有操作「{name[:40]}」")
        posted = {k: v for k, v in form.items() if k != auth.CSRF_FIELD}
        try:
            if visit.scope.read_only:
                raise PermissionDenied(READ_ONLY)
            version = form.get("version", "")
            if not version.isdigit() or len(version) > 12:
                raise InvalidInput("页面缺少版本号，请重新加载后再操作", field="version")
            model = body_model(workflow, rule)
            try:
                body = model.model_validate(forms.values_from(model, form, visit.settings.timezone))
            except ValidationError as exc:
                raise InvalidInput(validation_fields(exc.errors())[0]) from exc
            data, comment, role = split(body)
            visit.session.rollback()  # the engine's transaction starts clean (and takes its own locks)
            photos.attach(visit, workflow, rule, data)  # a photo posted with the event (/events/photo)
            engine.fire(visit.session, workflow, row["id"], rule.name, actor=visit.principal.person_key,
                        role=role, comment=comment, data=data, expected_version=int(version))
        except SafeloopError as exc:
            visit.session.rollback()
            kind, status = kind_of(exc)
            return _entity_page(visit, workflow, code, status=status, refusal=exc.message,
                                stale=kind == "conflict", event=rule.name, posted=posted)
        return see_other(f"/{workflow.name}/{quote(code)}")

    fire_event.__name__ = f"fire_{workflow.name}"
    return fire_event


def mount(app: Any) -> None:
    """Add the pages to the app's router (plain routes, not in the API's OpenAPI document)."""
    add = app.router.add_route
    add("/login", login_form, methods=["GET"], include_in_schema=False)
    add("/login", login_submit, methods=["POST"], include_in_schema=False)
    add("/logout", page(logout, before_password_change=True), methods=["POST"], include_in_schema=False)
    add("/password", page(password_form, before_password_change=True), methods=["GET"],
        include_in_schema=False)
    add("/password", page(password_submit, before_password_change=True), methods=["POST"],
        include_in_schema=False)
    add("/", page(inbox), methods=["GET"], include_in_schema=False)
    for workflow in WORKFLOWS.values():
        add(f"/{workflow.name}/{{code}}", page(entity(workflow)), methods=["GET"], include_in_schema=False)
        add(f"/{workflow.name}/{{code}}/events/{{event}}", page(fire(workflow)), methods=["POST"],
            include_in_schema=False)
        add(f"/{workflow.name}/{{code}}/evidence/{{sha}}", page(evidence_image(workflow)),
            methods=["GET"], include_in_schema=False)
    photos.mount(app, page, fire)  # an event's form with a photo (提交验收, 现场整改)
