"""The auditors' pages: search the audit trail, one entity's full timeline, verify the chain
against the published checkpoints, and export -- each through the API's own functions
(``safeloop.api.routes.audit``: ``filters``, ``query_page``, ``export_response``,
``verify_with_checkpoints``), so a page shows exactly the rows and verdict the API gives the same
auditor. Only auditors (403 page otherwise), and only their scope (``Visibility.audit_where``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.responses import Response

from core.errors import InvalidInput, SafeloopError
from core.timeparse import parse_local
from models.enums import Role
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import PERSON
from safeloop.api.errors import ApiError, kind_of
from safeloop.api.routes.audit import (
    export_response,
    filters,
    query_page,
    require_auditor,
    verify_with_checkpoints,
)
from safeloop.web import views
from safeloop.web.pages import Handler, Visit
from states.registry import WORKFLOWS

TEXT_FIELDS = ("entity", "person", "event")
TIME_FIELDS = {"since": "起始时间", "until": "截止时间"}
MAX_TEXT = 64
FORMATS = ("jsonl", "csv")


def auditors_only(handler: Handler) -> Handler:
    """``handler`` for auditors; everyone else gets the API's 403 message as a page."""

    def guarded(visit: Visit) -> Response:
        try:
            require_auditor(visit.session, visit.principal.person_id)
        except ApiError as exc:
            return visit.page("error.html", 403, title="无权访问", message=exc.message)
        return handler(visit)

    guarded.__name__ = handler.__name__
    return guarded


def local_with_offset(text: str | None, zone: str) -> str:
    """``2026-12-01 11:04:37 +08:00``: the stored UTC time in the configured zone, offset shown."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    except ValueError:
        return text
    offset = moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + f"{offset[:3]}:{offset[3:]}"


def _criteria(visit: Visit) -> dict[str, str]:
    """The search form's fields as typed (trimmed, capped): what the form shows back."""
    query = visit.request.query_params
    return {name: query.get(name, "").strip()[:MAX_TEXT] for name in (*TEXT_FIELDS, *TIME_FIELDS)}


def _where(visit: Visit, criteria: dict[str, str], entity_type: str | None = None) -> list[Any]:
    zone = visit.settings.timezone
    times: dict[str, datetime | None] = {}
    for name, label in TIME_FIELDS.items():
        raw = criteria.get(name, "")
        try:
            times[name] = parse_local(raw.replace("T", " "), zone, what=label) if raw else None
        except InvalidInput as exc:
            exc.details.setdefault("field", name)
            raise
    return filters(criteria.get("entity") or None, entity_type, criteria.get("person") or None,
                   criteria.get("event") or None, times["since"], times["until"],
                   visit.scope.audit_where(AUDIT))


def _event_label(entity_type: str, event: str) -> str:
    workflow = WORKFLOWS.get(entity_type)
    if workflow is None:
        return event
    rule = workflow.events.get(event) or (
        workflow.create_event if workflow.create_event.name == event else None)
    return rule.label if rule is not None else event


def _shown(visit: Visit, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    conn = visit.session.connection()
    people = views.names(conn, PERSON, [i.get("actor") for i in items], key="key")
    zone = visit.settings.timezone
    out = []
    for item in items:
        try:
            role = Role(item["actor_role"]).label if item.get("actor_role") else ""
        except ValueError:
            role = str(item["actor_role"])
        kind = WORKFLOWS.get(item["entity_type"])
        out.append({**item, "when": local_with_offset(item.get("at"), zone),
                    "who": people.get(item.get("actor"), item.get("actor") or ""), "role_label": role,
                    "kind_label": kind.label if kind else item["entity_type"],
                    "to_label": (kind.state_label(item["to_state"]) if kind and item.get("to_state")
                                 else item.get("to_state") or ""),
                    "event_label": _event_label(item["entity_type"], item["event"])})
    return out


def _listing(visit: Visit, *, entity_type: str | None = None, entity: str | None = None) -> Response:
    criteria = _criteria(visit)
    if entity is not None:
        criteria["entity"] = entity
    cursor = visit.request.query_params.get("cursor", "")[:512] or None
    refusal, rows, next_url = None, [], None
    status = 200
    try:
        page = query_page(visit.session, _where(visit, criteria, entity_type), cursor,
                          visit.settings.api_page_size)
        rows = _shown(visit, page["items"])
        if page["next_cursor"]:
            kept = {k: v for k, v in criteria.items() if v and not (entity is not None and k == "entity")}
            next_url = "?" + urlencode({**kept, "cursor": page["next_cursor"]})
    except SafeloopError as exc:
        visit.session.rollback()
        refusal = exc.message
        _, status = kind_of(exc)
    exported = {k: v for k, v in criteria.items() if v and k not in TIME_FIELDS}
    for name in TIME_FIELDS:  # the export takes times with their offset
        if criteria.get(name) and refusal is None:
            when = parse_local(criteria[name].replace("T", " "), visit.settings.timezone)
            exported[name] = when.isoformat()
    exports = {fmt: "/audit/export?" + urlencode({"format": fmt, **exported}) for fmt in FORMATS}
    return visit.page("audit.html", status, criteria=criteria, rows=rows, next_url=next_url,
                      refusal=refusal, exports=exports, entity_type=entity_type,
                      entity_label=(WORKFLOWS[entity_type].label if entity_type in WORKFLOWS
                                    else entity_type),
                      entity=entity, first=cursor is None)


def search(visit: Visit) -> Response:
    return _listing(visit)


def entity_timeline(visit: Visit) -> Response:
    return _listing(visit, entity_type=visit.params["type"][:MAX_TEXT],
                    entity=visit.params["code"][:MAX_TEXT])


def verify(visit: Visit) -> Response:
    result, report = verify_with_checkpoints(visit.session, visit.settings.storage_dir)
    return visit.page("audit_verify.html", result=result, compared=report.compared)


def export(visit: Visit) -> Response:
    criteria = {name: visit.request.query_params.get(name, "").strip()[:MAX_TEXT]
                for name in (*TEXT_FIELDS, *TIME_FIELDS)}
    fmt = visit.request.query_params.get("format", "jsonl")
    try:
        if fmt not in FORMATS:
            raise InvalidInput("导出格式只能是 jsonl 或 csv", field="format")
        where = filters(criteria["entity"] or None, None, criteria["person"] or None,
                        criteria["event"] or None, _aware(criteria["since"], "since"),
                        _aware(criteria["until"], "until"), visit.scope.audit_where(AUDIT))
    except SafeloopError as exc:
        visit.session.rollback()
        _, status = kind_of(exc)
        return visit.page("error.html", status, title="无法导出", message=exc.message)
    return export_response(visit.request.app.state.read_engine, visit.session, where, fmt)


def _aware(text: str, field: str) -> datetime | None:
    """An export link's time: ISO 8601 with its offset (as the search page writes it)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{field} 须为带时区偏移的时间，如 2026-11-02T10:00:00+08:00",
                           field=field) from exc
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} 须带时区偏移，如 2026-11-02T10:00:00+08:00", field=field)
    return moment


def mount(app: Any, page: Callable[..., Any]) -> None:
    add = app.router.add_route
    add("/audit", page(auditors_only(search)), methods=["GET"], include_in_schema=False)
    add("/audit/export", page(auditors_only(export)), methods=["GET"], include_in_schema=False)
    add("/audit/verify", page(auditors_only(verify)), methods=["POST"], include_in_schema=False)
    add("/audit/entity/{type}/{code}", page(auditors_only(entity_timeline)), methods=["GET"],
        include_in_schema=False)
