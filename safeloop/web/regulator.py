"""监管 pages for regulators: listed major hazards (挂牌督办) with their duty clocks, the major
hazards that may be proposed for listing, suspension orders and annual plans.

Only people holding the regulator role open them (403 otherwise); every list is their read scope
(``states.visibility``: the enterprises of their jurisdictions and industries), so what is out of
scope is not there and a copied address of it answers 404. Nothing here changes state by itself:
proposing a listing is ``engine.create``; listing, escalating, delisting are the listing's own
event forms on its entity page (``/listing/{code}``, generated from the params models).

The clocks are the listing's own due columns, written by the engine from the working-day rules
(``states.workflows.listing_clocks``); this page only reads them and counts the working days left
with the same calendar (``states.clock.working_days_until``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select
from starlette.responses import Response

from core.errors import InvalidInput, SafeloopError
from core.rules import Rules, rules_for
from models.db import as_utc, utcnow
from models.enums import HazardGrade, Role
from models.tables import DEPARTMENT, ENTERPRISE, JURISDICTION, UNIT
from safeloop.api import queries
from safeloop.api.errors import kind_of
from safeloop.web import views
from safeloop.web.pages import Visit, see_other
from states import engine
from states.clock import working_days_until
from states.registry import WORKFLOWS
from states.workflows.hazard import OPEN_STATES as OPEN_HAZARD
from states.workflows.listing import ACTIVE, DUTIES

HAZARD = WORKFLOWS["hazard"]
LISTING = WORKFLOWS["listing"]
SUSPENSION = WORKFLOWS["suspension"]
PLAN = WORKFLOWS["annual_plan"]
SHOWN = 100  # rows per list on a phone; the rest is reached through the state filter
ONLY_REGULATORS = "此页面仅供监管人员使用：您没有监管人员角色"
# the duty clocks a regulator watches, in the order a listing meets them (short zh labels)
CLOCKS = {"file": "报备", "publish": "公示", "progress": "进展", "extension": "延期答复",
          "verification": "核查", "delist_publish": "销号公示"}
TABS = (("listings", "/regulator", "挂牌督办"), ("suspensions", "/regulator/suspensions", "停产整顿"),
        ("plans", "/regulator/plans", "年度计划"))


@dataclass(frozen=True)
class Clock:
    label: str
    due_text: str
    left: str  # "剩余 3 个工作日" / "已逾期 2 个工作日" / "已完成"
    overdue: bool
    done: bool


def is_regulator(visit: Visit) -> bool:
    return any(g.role == Role.regulator.value for g in visit.scope.grants)


def _refused(visit: Visit) -> Response:
    return visit.page("error.html", 403, title="无权访问", message=ONLY_REGULATORS)


def clocks(row: dict[str, Any], now: datetime, rules: Rules, zone: str) -> list[Clock]:
    """The listing's duty clocks that apply in its state, from its own due/done/overdue columns."""
    out = []
    for duty, label in CLOCKS.items():
        due_col, done_col, overdue_col, _long, states = DUTIES[duty]
        due = as_utc(row.get(due_col))
        if row["state"] not in states or due is None:
            continue
        done = bool(done_col and row.get(done_col))
        overdue = not done and (bool(row.get(overdue_col)) or due < now)
        if done:
            left = "已完成"
        elif overdue:
            late = working_days_until(rules, due, now) - 1
            left = f"已逾期 {late} 个工作日" if late > 0 else "已逾期"
        else:
            left = f"剩余 {working_days_until(rules, now, due)} 个工作日"
        out.append(Clock(label, views.local(due, zone), left, overdue, done))
    return out


def _enterprise_names(conn: Connection, ids: list[Any]) -> dict[Any, str]:
    return views.names(conn, ENTERPRISE, ids)


def _listings(visit: Visit, state: str | None) -> list[dict[str, Any]]:
    conn = visit.session.connection()
    table, hazard = LISTING.table, HAZARD.table
    where = visit.scope.where(LISTING)
    stmt = (select(table, hazard.c.code.label("hazard_code"), hazard.c.title.label("hazard_title"))
            .join(hazard, hazard.c.id == table.c.hazard_id)
            .where(table.c.state == state if state else table.c.state.in_(ACTIVE),
                   *([] if where is None else [where]))
            .order_by(table.c.deadline.is_(None), table.c.deadline, table.c.id).limit(SHOWN))
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    now, zone = utcnow(), visit.settings.timezone
    rules = rules_for(visit.session)
    names = _enterprise_names(conn, [r["enterprise_id"] for r in rows])
    for r in rows:
        r["clocks"] = clocks(r, now, rules, zone)
        r["late"] = any(c.overdue for c in r["clocks"])
        r["state_label"] = LISTING.state_label(r["state"])
        r["enterprise"] = names.get(r["enterprise_id"], "")
        r["deadline_text"] = views.local(r["deadline"], zone)
        r["level"] = LISTING.level_labels.get(r["escalation_level"], "") if r["escalation_level"] else ""
    return rows


def _candidates(visit: Visit) -> list[dict[str, Any]]:
    """Open major hazards in scope with no listing: what may be proposed (提请挂牌督办)."""
    conn = visit.session.connection()
    table = HAZARD.table
    where = visit.scope.where(HAZARD)
    rows = conn.execute(
        select(table.c.code, table.c.title, table.c.state, table.c.enterprise_id, table.c.deadline)
        .where(table.c.grade == HazardGrade.major.value, table.c.state.in_(OPEN_HAZARD),
               table.c.listing_id.is_(None), *([] if where is None else [where]))
        .order_by(table.c.id).limit(SHOWN)).mappings().all()
    names = _enterprise_names(conn, [r["enterprise_id"] for r in rows])
    return [{**r, "enterprise": names.get(r["enterprise_id"], ""),
             "state_label": HAZARD.state_label(r["state"])} for r in rows]


def _departments(visit: Visit) -> list[tuple[str, str]]:
    ids = [g.department_id for g in visit.scope.grants
           if g.role == Role.regulator.value and g.department_id is not None]
    if not ids:
        return []
    rows = visit.session.connection().execute(
        select(DEPARTMENT.c.key, DEPARTMENT.c.name).where(DEPARTMENT.c.id.in_(ids))
        .order_by(DEPARTMENT.c.key)).all()
    return [(str(k), str(n)) for k, n in rows]


def _state_filter(visit: Visit, workflow: Any) -> tuple[str | None, str | None]:
    """The ``?state=`` filter, or (None, the zh-CN message) for a state the workflow has not."""
    state = visit.request.query_params.get("state") or None
    if state is not None and state not in workflow.states:
        known = "、".join(workflow.states.values())
        return None, f"{workflow.label}没有状态「{state[:40]}」，可选：{known}"
    return state, None


def listings(visit: Visit, *, status: int = 200, refusal: str | None = None,
             posted: dict[str, str] | None = None) -> Response:
    if not is_regulator(visit):
        return _refused(visit)
    state, wrong = _state_filter(visit, LISTING)
    if wrong:
        status, refusal = 422, wrong
    return visit.page("regulator.html", status, tab="listings", tabs=TABS, rows=_listings(visit, state),
                      candidates=_candidates(visit), departments=_departments(visit),
                      states=list(LISTING.states.items()), state=state or "", refusal=refusal,
                      posted=posted or {}, shown=SHOWN)


def propose(visit: Visit) -> Response:
    """提请挂牌督办: the hazard (in the regulator's scope) proposed through ``engine.create``;
    then the listing's own page, where its 挂牌 form (deadline) is."""
    if not is_regulator(visit):
        return _refused(visit)
    form = visit.form or {}
    posted = {k: form.get(k, "") for k in ("hazard", "department")}
    code, department = posted["hazard"].strip(), posted["department"].strip() or None
    try:
        if not code:
            raise InvalidInput("请填写要提请挂牌督办的重大隐患编号", field="hazard")
        conn = visit.session.connection()
        row = queries.entity(conn, HAZARD, code[:64], visit.scope.where(HAZARD))  # 404 out of scope
        unit = conn.execute(select(UNIT.c.key).where(UNIT.c.id == row["unit_id"])).scalar_one()
        data = {"unit": unit, "hazard": row["code"], **({"department": department} if department else {})}
        visit.session.rollback()  # the engine's transaction starts clean
        result = engine.create(visit.session, LISTING, actor=visit.principal.person_key, data=data)
    except SafeloopError as exc:
        visit.session.rollback()
        _, status = kind_of(exc)
        return listings(visit, status=status, refusal=exc.message, posted=posted)
    return see_other(f"/listing/{quote(result.code)}")


def _rows(visit: Visit, workflow: Any, columns: tuple[str, ...]
          ) -> tuple[list[dict[str, Any]], str | None, str | None]:
    table = workflow.table
    state, wrong = _state_filter(visit, workflow)
    where = visit.scope.where(workflow)
    conditions = [table.c.state == state] if state else [table.c.state.not_in(sorted(workflow.terminal))]
    rows = visit.session.connection().execute(
        select(*(table.c[c] for c in columns))
        .where(*conditions, *([] if where is None else [where]))
        .order_by(table.c.id.desc()).limit(SHOWN)).mappings().all()
    return [{**r, "state_label": workflow.state_label(r["state"])} for r in rows], state, wrong


def suspensions(visit: Visit) -> Response:
    if not is_regulator(visit):
        return _refused(visit)
    rows, state, wrong = _rows(visit, SUSPENSION, ("code", "state", "enterprise_id", "reason", "scope",
                                            "ordered_at"))
    conn, zone = visit.session.connection(), visit.settings.timezone
    names = _enterprise_names(conn, [r["enterprise_id"] for r in rows])
    scopes = {"full": "全部停产停业", "partial": "部分停产停业"}
    shown = [{**r, "enterprise": names.get(r["enterprise_id"], ""),
              "when": views.local(r["ordered_at"], zone),
              "scope_label": scopes.get(r["scope"], r["scope"])} for r in rows]
    return visit.page("regulator.html", 422 if wrong else 200, tab="suspensions", tabs=TABS, rows=shown,
                      states=list(SUSPENSION.states.items()), state=state or "", refusal=wrong,
                      shown=SHOWN)


def plans(visit: Visit) -> Response:
    if not is_regulator(visit):
        return _refused(visit)
    rows, state, wrong = _rows(visit, PLAN, ("code", "state", "year", "jurisdiction_id", "department_id"))
    conn = visit.session.connection()
    places = views.names(conn, JURISDICTION, [r["jurisdiction_id"] for r in rows])
    departments = views.names(conn, DEPARTMENT, [r["department_id"] for r in rows])
    shown = [{**r, "jurisdiction": places.get(r["jurisdiction_id"], ""),
              "department": departments.get(r["department_id"], "") if r["department_id"] else ""}
             for r in rows]
    return visit.page("regulator.html", 422 if wrong else 200, tab="plans", tabs=TABS, rows=shown,
                      states=list(PLAN.states.items()), state=state or "", refusal=wrong, shown=SHOWN)


def mount(app: Any, page: Callable[..., Any]) -> None:
    add = app.router.add_route
    add("/regulator", page(listings), methods=["GET"], include_in_schema=False)
    add("/regulator/propose", page(propose), methods=["POST"], include_in_schema=False)
    add("/regulator/suspensions", page(suspensions), methods=["GET"], include_in_schema=False)
    add("/regulator/plans", page(plans), methods=["GET"], include_in_schema=False)
