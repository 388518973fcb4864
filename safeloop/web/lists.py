"""Filtered lists (``/hazard``, ``/listing``): where each dashboard figure leads.

``?state=`` one state, or ``open`` (a hazard not yet accepted, closed or cancelled) / ``active``
(a listing not delisted); ``overdue=1`` (past its deadline and not terminal: the API's own
``overdue`` filter); ``escalated=1`` (escalation level above 0); ``enterprise=`` or
``jurisdiction=`` (``safeloop.web.focus``). One page of rows through the API's keyset paging
(``safeloop.api.queries.page``) inside the person's read scope, so a figure and its list count
the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, select
from starlette.responses import Response

from core.errors import InvalidInput, NotFound
from models.db import utcnow
from models.tables import ENTERPRISE
from safeloop.api import queries
from safeloop.web import focus, views
from safeloop.web.pages import Visit
from states.registry import WORKFLOWS
from states.workflow import Workflow
from states.workflows.hazard import OPEN_STATES as OPEN_HAZARD
from states.workflows.listing import ACTIVE as ACTIVE_LISTING

PAGE = 50
# the named groups of states a figure counts (``?state=open``)
GROUPS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "hazard": {"open": ("在办", OPEN_HAZARD)},
    "listing": {"active": ("未摘牌", ACTIVE_LISTING)},
}
LISTED = ("hazard", "listing")


def conditions(workflow: Workflow, state: str | None, escalated: bool) -> list[ColumnElement[bool]]:
    """The list's own conditions beyond the API's filter: a group of states, escalated."""
    table = workflow.table
    out: list[ColumnElement[bool]] = []
    group = GROUPS.get(workflow.name, {}).get(state or "")
    if group is not None:
        out.append(table.c.state.in_(group[1]))
    if escalated:
        out.append(table.c.escalation_level > 0)
    return out


def overdue(workflow: Workflow, now: Any) -> ColumnElement[bool]:
    """Past its deadline and not terminal: ``safeloop.api.queries``' own ``overdue`` filter."""
    due = queries.due_column(workflow)
    if due is None:
        return false()
    return and_(due.is_not(None), due < now, workflow.table.c.state.not_in(sorted(workflow.terminal)))


def count(conn: Connection, workflow: Workflow, where: ColumnElement[bool] | None) -> int:
    stmt = select(func.count()).select_from(workflow.table)
    if where is not None:
        stmt = stmt.where(where)
    return int(conn.execute(stmt).scalar_one())


def _flag(visit: Visit, name: str) -> bool:
    return visit.request.query_params.get(name, "") in ("1", "true", "on")


def show(workflow: Workflow) -> Callable[[Visit], Response]:
    def filtered(visit: Visit) -> Response:
        params = visit.request.query_params
        conn = visit.session.connection()
        now = utcnow()
        state = params.get("state") or None
        late, escalated = _flag(visit, "overdue"), _flag(visit, "escalated")
        groups = GROUPS.get(workflow.name, {})
        try:
            where_focus = focus.focus_of(conn, visit.scope, params)
            if state is not None and state not in workflow.states and state not in groups:
                known = "、".join([*(label for label, _ in groups.values()), *workflow.states.values()])
                raise InvalidInput(f"{workflow.label}没有状态「{state[:40]}」，可选：{known}", field="state")
            wanted = queries.ListFilter(state=state if state in workflow.states else None,
                                        overdue=True if late else None)
            scope = focus.where(visit.scope, where_focus, workflow.table)
            extra = [c for c in [scope, *conditions(workflow, state, escalated)] if c is not None]
            where = and_(*extra) if extra else None
            rows, next_cursor = queries.page(conn, workflow, where, wanted, params.get("after") or None,
                                             PAGE, now)
            counted = [*extra, *([workflow.table.c.state == wanted.state] if wanted.state else []),
                       *([overdue(workflow, now)] if late else [])]
            total = count(conn, workflow, and_(*counted) if counted else None)
        except NotFound:  # a NotFound is an InvalidInput: the page answers it 404
            raise
        except InvalidInput as exc:
            return visit.page("error.html", 422, title="筛选条件有误", message=exc.message)
        zone = visit.settings.timezone
        due_col = queries.due_column(workflow)
        names = views.names(conn, ENTERPRISE, [r.get("enterprise_id") for r in rows])
        items = []
        for r in rows:
            due = r.get(due_col.name) if due_col is not None else None
            ended = r["state"] in workflow.terminal
            left, is_late = ("", False) if ended else views.time_left(due, now, zone)
            items.append({"code": r["code"], "title": r.get("title") or "",
                          "state_label": workflow.state_label(r["state"]),
                          "enterprise": names.get(r.get("enterprise_id"), ""),
                          "due_text": views.local(due, zone), "left": left, "overdue": is_late,
                          "level": r.get("escalation_level") or 0})
        label = groups[state][0] if state in groups else (workflow.state_label(state) if state else "全部")
        filters = [label] + (["已逾期"] if late else []) + (["已升级督办"] if escalated else [])
        more = None if not next_cursor else where_focus.link(
            f"/{workflow.name}", state=state, overdue="1" if late else None,
            escalated="1" if escalated else None, after=next_cursor)
        return visit.page("list.html", workflow=workflow, items=items, total=total, focus=where_focus,
                          filters=filters, more=more)

    filtered.__name__ = f"list_{workflow.name}"
    return filtered


def mount(app: Any, page: Callable[..., Any]) -> None:
    for name in LISTED:
        app.router.add_route(f"/{name}", page(show(WORKFLOWS[name])), methods=["GET"],
                             include_in_schema=False)
