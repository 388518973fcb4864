"""Every workflow's routes, generated from ``states.registry.WORKFLOWS`` -- none written per workflow:

    GET  /api/v1/{workflow}                        list (state, unit, enterprise, overdue, text; cursor)
    GET  /api/v1/{workflow}/{code}                 fields, evidence, allowed events, timeline (ETag)
    POST /api/v1/{workflow}                        create through the create event (not materialised sets)
    POST /api/v1/{workflow}/{code}/events/{event}  one route per event; its body is the event's model

An event sent with ``If-Match: "<version>"`` is fired with that expected version: stale is 409.

No ``from __future__ import annotations``: the handlers' annotations name models built here.
"""

import re
from typing import Annotated, Any

from fastapi import Body, Header, Path, Query, Response
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from sqlmodel import Session
from starlette.responses import JSONResponse
from starlette.routing import compile_path

from core.errors import ConcurrentUpdate, GuardFailed, PermissionDenied, SafeloopError, TransitionNotAllowed
from core.settings import Settings
from models.db import utcnow
from safeloop.api import queries
from safeloop.api.deps import Caller, CurrentPrincipal, DbSession, Scope, Visibility
from safeloop.api.errors import ApiError
from safeloop.api.jsonout import answer, row_json
from safeloop.api.routes import Prefixed
from safeloop.api.routes.bodies import body_model, required, split
from states import engine
from states.registry import WORKFLOWS
from states.workflow import EventRule, Workflow


class CodeRoute(APIRoute):
    """A route whose ``{code}`` may hold one slash (an inspection task's code is
    ``<plan>/<period>``, and plan keys hold none), raw or sent as %2F, while its path, the
    OpenAPI document and the metrics' route label stay ``{code}``. One slash at most, so
    ``<code>/events/<unknown>`` still matches no route (404), not the show route (405).
    """

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        regex, _, self.param_convertors = compile_path(path)
        self.path_regex = re.compile(regex.pattern.replace(f"(?P<code>{STR_PART})", f"(?P<code>{CODE_PART})"))
        assert self.path_regex.pattern != regex.pattern, path


STR_PART = "[^/]+"  # starlette's pattern for a plain path parameter
CODE_PART = "[^/]+(?:/(?!events$)[^/]+)?"  # "<code>/events" is an event path cut short, no code


CodePath = Annotated[str, Path(min_length=1, max_length=64, description="编号，如 YH-000001")]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64,
                                       description="期望的版本（上次响应的 ETag）；已被他人修改时返回 409")]
READ_ONLY = "审计人员只读，不能执行操作"
SORT_PATTERN = r"^-?(id|created_at|updated_at|due)$"
SORT_HELP = "排序：id、created_at、updated_at、due（期限），前加 - 为倒序"


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(header: str | None) -> int | None:
    """The version an ``If-Match`` names (``"3"``, ``W/"3"``, ``3``); ``*`` or absent: none."""
    if header is None or header.strip() == "*":
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise ApiError(422, "invalid_input", "If-Match 应为上次响应的 ETag（版本号，如 \"3\"）",
                       field="If-Match")
    return int(text)


def _refuse_read_only(scope: Scope) -> None:
    if scope.read_only:
        raise PermissionDenied(READ_ONLY)


def _entity_json(workflow: Workflow, row: dict[str, Any]) -> dict[str, Any]:
    return {**row_json(row), "state_label": workflow.state_label(row["state"]),
            "kind": workflow.name}


def _allowed(session: Session, workflow: Workflow, entity_id: int, caller: Caller,
             scope: Scope) -> list[EventRule]:
    if scope.read_only:
        return []
    return engine.allowed_events(session, workflow, entity_id, caller.person_key)


def _event_json(rule: EventRule) -> dict[str, Any]:
    return {"event": rule.name, "label": rule.label, "requires_reason": rule.requires_reason}


def mount(router: Prefixed, settings: Settings) -> None:
    """Add every workflow's routes to ``router`` (prefix ``/api/v1``)."""
    for workflow in WORKFLOWS.values():
        _mount_reads(router, workflow, settings)
        if not workflow.materialized:
            _mount_create(router, workflow)
        for rule in workflow.events.values():
            _mount_event(router, workflow, rule)


def _mount_reads(router: Prefixed, workflow: Workflow, settings: Settings) -> None:
    name, label = workflow.name, workflow.label
    states = "、".join(f"{k}（{v}）" for k, v in workflow.states.items())

    def list_entities(
        caller: CurrentPrincipal, session: DbSession, scope: Visibility,
        state: Annotated[str | None, Query(max_length=64, description=f"状态：{states}")] = None,
        unit: Annotated[str | None, Query(max_length=64, description="单位编号（含下级单位）")] = None,
        enterprise: Annotated[str | None, Query(max_length=64, description="企业编号")] = None,
        overdue: Annotated[bool | None, Query(description="只看已逾期（true）或未逾期（false）")] = None,
        text: Annotated[str | None, Query(max_length=queries.MAX_TEXT,
                                          description="编号或名称包含的文字")] = None,
        sort: Annotated[str, Query(pattern=SORT_PATTERN, description=SORT_HELP)] = "-id",
        cursor: Annotated[str | None, Query(max_length=512, description="上一页响应的 next_cursor")] = None,
        limit: Annotated[int, Query(ge=1, le=settings.api_page_max,
                                    description="每页条数")] = settings.api_page_size,
    ) -> JSONResponse:
        wanted = queries.ListFilter(state, unit, enterprise, overdue, text,
                                    sort.removeprefix("-"), sort.startswith("-"))
        rows, next_cursor = queries.page(session.connection(), workflow, scope.where(workflow),
                                         wanted, cursor, limit, utcnow())
        return answer({"items": [_entity_json(workflow, r) for r in rows], "next_cursor": next_cursor,
                       "limit": limit})

    def show_entity(code: CodePath, response: Response, caller: CurrentPrincipal,
                    session: DbSession, scope: Visibility) -> dict[str, Any]:
        conn = session.connection()
        row = queries.entity(conn, workflow, code, scope.where(workflow))
        events = queries.timeline(conn, workflow, row["id"])
        allowed = _allowed(session, workflow, row["id"], caller, scope)
        response.headers["ETag"] = etag(row["version"])
        return {"entity": _entity_json(workflow, row), "version": row["version"],
                "allowed_events": [_event_json(r) for r in allowed],
                "evidence": queries.evidence_refs(events), "timeline": events}

    router.add_api_route(f"/{name}", list_entities, methods=["GET"], tags=[label],
                         response_model=dict[str, Any],
                         summary=f"{label}列表", operation_id=f"list_{name}")
    router.add_api_route(f"/{name}/{{code}}", show_entity, methods=["GET"], tags=[label],
                         route_class_override=CodeRoute,
                         summary=f"{label}详情：字段、证据、当前可执行的操作、审计时间线",
                         operation_id=f"show_{name}")


def _mount_create(router: Prefixed, workflow: Workflow) -> None:
    rule = workflow.create_event
    model = body_model(workflow, rule)

    def create_entity(body: Annotated[model, Body()], response: Response,  # type: ignore[valid-type]
                      caller: CurrentPrincipal, session: DbSession,
                      scope: Visibility) -> dict[str, Any]:
        _refuse_read_only(scope)
        data, comment, role = split(body)
        result = engine.create(session, workflow, actor=caller.person_key, data=data, role=role,
                               comment=comment)
        row = queries.entity(session.connection(), workflow, result.code, None)
        response.status_code = 201
        response.headers["ETag"] = etag(result.version)
        response.headers["Location"] = f"/api/v1/{workflow.name}/{result.code}"
        return _fired(workflow, result, row)

    router.add_api_route(f"/{workflow.name}", create_entity, methods=["POST"], status_code=201,
                         tags=[workflow.label], summary=f"{rule.label}（新建{workflow.label}）",
                         operation_id=f"create_{workflow.name}")


def _fired(workflow: Workflow, result: engine.FireResult, row: dict[str, Any]) -> dict[str, Any]:
    return {"code": result.code, "event": result.event, "from_state": result.from_state,
            "to_state": result.to_state, "version": result.version, "role": result.role,
            "audit_seq": result.audit_seq, "entity": _entity_json(workflow, row)}


def _mount_event(router: Prefixed, workflow: Workflow, rule: EventRule) -> None:
    model = body_model(workflow, rule)
    # A required body: no None in its type and FastAPI's "no default" (not ``...``, which FastAPI
    # took as a default and handed the handler an Ellipsis -- a 500 schemathesis found).
    body_type: Any = model if required(model) else model | None
    default: Any = PydanticUndefined if required(model) else None

    def fire_event(code: CodePath, response: Response, caller: CurrentPrincipal,
                   session: DbSession, scope: Visibility, if_match: IfMatch = None,
                   body: Annotated[body_type, Body()] = default,  # type: ignore[valid-type]
                   ) -> dict[str, Any]:
        row = queries.entity(session.connection(), workflow, code, scope.where(workflow))
        _refuse_read_only(scope)
        expected = expected_version(if_match)
        data, comment, role = split(body)
        session.rollback()  # the engine's transaction starts clean (and takes its own locks)
        try:
            result = engine.fire(session, workflow, row["id"], rule.name, actor=caller.person_key,
                                 role=role, comment=comment, data=data, expected_version=expected)
        except (PermissionDenied, GuardFailed, TransitionNotAllowed, ConcurrentUpdate) as exc:
            _explain(exc, session, workflow, row["id"], caller, scope)
            raise
        fresh = queries.entity(session.connection(), workflow, result.code, None)
        response.headers["ETag"] = etag(result.version)
        return _fired(workflow, result, fresh)

    summary = f"{rule.label}（{'、'.join(workflow.state_label(s) for s in rule.sources)} 时可执行）"
    router.add_api_route(f"/{workflow.name}/{{code}}/events/{rule.name}", fire_event,
                         route_class_override=CodeRoute,
                         methods=["POST"], tags=[workflow.label], summary=summary,
                         description=_describe(workflow, rule),
                         operation_id=f"{workflow.name}_{rule.name}")


def _describe(workflow: Workflow, rule: EventRule) -> str:
    from models.enums import Role

    roles = "、".join(Role(r).label for r in rule.roles)
    reason = "；须填写原因（comment）" if rule.requires_reason else ""
    return f"{workflow.label}「{rule.label}」：可执行角色 {roles}{reason}。"


def _explain(exc: SafeloopError, session: Session, workflow: Workflow, entity_id: int,
             caller: Caller, scope: Scope) -> None:
    """Add the entity's current state and what the caller may do now to a refusal."""
    try:
        table = workflow.table
        state = session.connection().execute(
            table.select().with_only_columns(table.c.state).where(table.c.id == entity_id)).scalar()
        allowed = _allowed(session, workflow, entity_id, caller, scope)
    except SafeloopError:
        return
    finally:
        session.rollback()
    exc.details["state"] = state
    exc.details["allowed_events"] = [r.name for r in allowed]

