"""看板 (``/dashboard``): per enterprise or per jurisdiction (``safeloop.web.focus``), the open /
overdue / escalated hazards, the listings, and the inspection completion rate per tier for this
week, month and quarter, with small SVG charts (``safeloop.web.charts``).

Every figure is one GROUP BY over the person's read scope (``states.visibility``) narrowed to the
focus -- a handful of set-wise queries whatever the number of rows, remembered until the audit
trail moves or the minute turns (``counted``) -- and links to the list it counts: ``/hazard``
and ``/listing`` (``safeloop.web.lists``, the same conditions) and ``/dashboard/inspections``.

Definitions (the lists use the same): open = a hazard in 已上报/制定治理方案/整改中/待验收;
overdue = past its deadline and not closed or cancelled (the API's ``overdue`` filter); escalated
= open with an escalation level above 0; an inspection task counts in a window when its period
overlaps it (cancelled tasks are left out) and is done when submitted or reviewed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, select
from starlette.responses import Response

from core.calendar.periods import Cadence, Period, period_of
from core.errors import InvalidInput, NotFound
from models.db import utcnow
from models.enums import Tier
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import ENTERPRISE, UNIT
from models.tables import INSPECTION_PLAN as PLAN
from safeloop.web import charts, focus, views
from safeloop.web.charts import Bar
from safeloop.web.lists import overdue
from safeloop.web.pages import Visit
from states.registry import WORKFLOWS
from states.visibility import Visibility
from states.workflows.hazard import OPEN_STATES as OPEN_HAZARD
from states.workflows.listing import ACTIVE as ACTIVE_LISTING

HAZARD = WORKFLOWS["hazard"]
LISTING = WORKFLOWS["listing"]
INSPECTION = WORKFLOWS["inspection"]
WINDOWS = {"week": (Cadence.weekly, "本周"), "month": (Cadence.monthly, "本月"),
           "quarter": (Cadence.quarterly, "本季度")}
DONE = ("submitted", "reviewed")
TIERS = tuple(t.value for t in Tier)
TOP = 10
SHOWN = 100


@dataclass(frozen=True)
class Figure:
    label: str
    value: int
    href: str
    late: bool = False


def _where(*parts: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [p for p in parts if p is not None]


def _flag(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


Where = ColumnElement[bool] | None


def hazard_cells(conn: Connection, where: Where, now: datetime) -> list[tuple[int, str, int, int, int]]:
    """(enterprise id, state, hazards, overdue, escalated): one GROUP BY that both the state
    figures and the enterprise ranking are summed from (one pass over the rows in scope)."""
    table = HAZARD.table
    stmt = (select(table.c.enterprise_id, table.c.state, func.count(), _flag(overdue(HAZARD, now)),
                   _flag(table.c.escalation_level > 0))
            .where(*_where(where)).group_by(table.c.enterprise_id, table.c.state))
    return [(int(e), str(s), int(n), int(late), int(up)) for e, s, n, late, up in conn.execute(stmt)]


def hazard_counts(cells: list[tuple[int, str, int, int, int]]) -> dict[str, tuple[int, int, int]]:
    """state -> (hazards, overdue, escalated)."""
    out: dict[str, tuple[int, int, int]] = {}
    for _e, state, n, late, up in cells:
        had = out.get(state, (0, 0, 0))
        out[state] = (had[0] + n, had[1] + late, had[2] + up)
    return out


def listing_counts(conn: Connection, where: Where, now: datetime) -> dict[str, tuple[int, int]]:
    """state -> (listings, past their deadline), one GROUP BY."""
    table = LISTING.table
    stmt = (select(table.c.state, func.count(), _flag(overdue(LISTING, now)))
            .where(*_where(where)).group_by(table.c.state))
    return {str(s): (int(n), int(late)) for s, n, late in conn.execute(stmt)}


def windows(now: datetime, zone: str) -> dict[str, Period]:
    return {name: period_of(cadence, now, zone) for name, (cadence, _label) in WINDOWS.items()}


def _overlaps(task: Any, period: Period) -> ColumnElement[bool]:
    return and_(task.c.period_start < period.end, task.c.period_end > period.start)


def completion(conn: Connection, where: ColumnElement[bool] | None,
               periods: dict[str, Period]) -> dict[str, dict[str, tuple[int, int]]]:
    """tier -> window -> (done, tasks), one GROUP BY over the tasks overlapping any window."""
    task = INSPECTION.table
    columns = []
    for period in periods.values():
        columns += [_flag(and_(_overlaps(task, period), task.c.state.in_(DONE))),
                    _flag(_overlaps(task, period))]
    first = min(p.start for p in periods.values())
    last = max(p.end for p in periods.values())
    stmt = (select(PLAN.c.tier, *columns).join(PLAN, PLAN.c.id == task.c.plan_id)
            .where(task.c.state != "cancelled", task.c.period_start < last, task.c.period_end > first,
                   *_where(where))
            .group_by(PLAN.c.tier))
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for row in conn.execute(stmt):
        tier, values = str(row[0]), [int(v) for v in row[1:]]
        out[tier] = {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(periods)}
    return out


def by_enterprise(conn: Connection, cells: list[tuple[int, str, int, int, int]]) -> list[dict[str, Any]]:
    """The enterprises with the most open hazards (overdue alongside), at most ``TOP``."""
    opened: dict[int, list[int]] = {}
    for enterprise, state, n, late, _up in cells:
        if state in OPEN_HAZARD:
            mine = opened.setdefault(enterprise, [0, 0])
            mine[0] += n
            mine[1] += late
    top = sorted(opened.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP]
    ids = [e for e, _ in top]
    keys, names = _keys(conn, ids), views.names(conn, ENTERPRISE, ids)
    return [{"key": keys.get(e, ""), "name": names.get(e, ""), "open": n, "overdue": late}
            for e, (n, late) in top]


def _keys(conn: Connection, ids: list[Any]) -> dict[Any, str]:
    if not ids:
        return {}
    found = conn.execute(select(ENTERPRISE.c.id, ENTERPRISE.c.key).where(ENTERPRISE.c.id.in_(ids)))
    return {r[0]: str(r[1]) for r in found}


Cells = list[tuple[int, str, int, int, int]]
Counted = tuple[Cells, dict[str, tuple[int, int]], dict[str, Period], dict[str, dict[str, tuple[int, int]]]]
_memo: OrderedDict[tuple[Any, ...], Counted] = OrderedDict()
_memo_lock = threading.Lock()
_computing: dict[tuple[Any, ...], threading.Lock] = {}  # keys being computed, each with its lock
MEMO_SIZE = 256


def counted(conn: Connection, scope: Visibility, where_focus: focus.Focus, now: datetime,
            zone: str) -> Counted:
    """The dashboard's GROUP BYs, remembered per (database, grants, focus, minute, last audit row).

    Every change of a business row is an engine event with its audit row in the same
    transaction, so the trail's last ``seq`` moves whenever a figure can; "overdue" moves with
    time, so the minute is part of the key (figures at most a minute behind a deadline passing).
    People with the same grants share an entry; at most ``MEMO_SIZE`` are kept (per process); when
    the minute turns under many readers, one computes and the rest wait for it.
    """
    minute = now.replace(second=0, microsecond=0)
    last = conn.execute(select(func.max(AUDIT.c.seq))).scalar()
    key = (conn.engine.url.render_as_string(hide_password=True), scope.grants, scope.everything,
           where_focus, minute, zone, last)
    with _memo_lock:
        found = _memo.get(key)
        if found is not None:
            _memo.move_to_end(key)
            return found
        computing = _computing.setdefault(key, threading.Lock())
    with computing:  # one request computes a key; the others that want it wait for its result
        with _memo_lock:
            found = _memo.get(key)
        if found is not None:
            return found
        periods = windows(minute, zone)
        result: Counted = (
            hazard_cells(conn, focus.where(scope, where_focus, HAZARD.table), minute),
            listing_counts(conn, focus.where(scope, where_focus, LISTING.table), minute),
            periods,
            completion(conn, focus.where(scope, where_focus, INSPECTION.table), periods),
        )
        with _memo_lock:
            _memo[key] = result
            _computing.pop(key, None)
            while len(_memo) > MEMO_SIZE:
                _memo.popitem(last=False)
    return result


def dashboard(visit: Visit) -> Response:
    conn = visit.session.connection()
    try:
        where_focus = focus.focus_of(conn, visit.scope, visit.request.query_params)
    except NotFound:  # a NotFound is an InvalidInput: the page answers it 404
        raise
    except InvalidInput as exc:
        return visit.page("error.html", 422, title="筛选条件有误", message=exc.message)
    now, zone = utcnow(), visit.settings.timezone
    link = where_focus.link
    by_cell, listings, periods, rates = counted(conn, visit.scope, where_focus, now, zone)
    hazards = hazard_counts(by_cell)

    open_n = sum(hazards.get(s, (0, 0, 0))[0] for s in OPEN_HAZARD)
    late_n = sum(v[1] for s, v in hazards.items() if s not in HAZARD.terminal)
    up_n = sum(hazards.get(s, (0, 0, 0))[2] for s in OPEN_HAZARD)
    active_n = sum(listings.get(s, (0, 0))[0] for s in ACTIVE_LISTING)
    listing_late = sum(v[1] for s, v in listings.items() if s not in LISTING.terminal)
    figures = [
        Figure("在办隐患", open_n, link("/hazard", state="open")),
        Figure("逾期隐患", late_n, link("/hazard", overdue="1"), late=late_n > 0),
        Figure("升级督办隐患", up_n, link("/hazard", state="open", escalated="1"), late=up_n > 0),
        Figure("挂牌督办（未摘牌）", active_n, link("/listing", state="active")),
        Figure("挂牌逾期", listing_late, link("/listing", overdue="1"), late=listing_late > 0),
    ]
    state_bars = [Bar(HAZARD.state_label(s), hazards.get(s, (0, 0, 0))[0], str(hazards.get(s, (0, 0, 0))[0]),
                      link("/hazard", state=s)) for s in HAZARD.states]
    listing_bars = [Bar(LISTING.state_label(s), listings.get(s, (0, 0))[0], str(listings.get(s, (0, 0))[0]),
                        link("/listing", state=s)) for s in LISTING.states]
    tiers = []
    for tier in TIERS:
        per = rates.get(tier, {})
        cells = []
        for name, (_cadence, label) in WINDOWS.items():
            done, total = per.get(name, (0, 0))
            cells.append({"window": name, "label": label, "done": done, "total": total,
                          "rate": charts.rate_text(done, total),
                          "href": link("/dashboard/inspections", tier=tier, window=name),
                          "done_href": link("/dashboard/inspections", tier=tier, window=name, done="1")})
        tiers.append({"tier": tier, "label": Tier(tier).label, "cells": cells})
    rate_charts = []
    for name, (_cadence, label) in WINDOWS.items():
        items = []
        for t in tiers:
            cell = next(c for c in t["cells"] if c["window"] == name)
            share = cell["done"] / cell["total"] if cell["total"] else 0.0
            items.append(Bar(t["label"], share, cell["rate"], cell["href"],
                             charts.GREEN if share >= 0.9 else charts.BLUE if share >= 0.6 else charts.RED))
        chart = charts.bars(f"{label}排查完成率", items, top=1.0)
        rate_charts.append((f"{label}（{periods[name].label}）", chart))
    top = by_enterprise(conn, by_cell) if where_focus.kind != "enterprise" else []
    regulator = any(g.role == "regulator" for g in visit.scope.grants)
    return visit.page(
        "dashboard.html", focus=where_focus, figures=figures,
        state_chart=charts.bars("隐患按状态", state_bars),
        listing_chart=charts.bars("挂牌督办按状态", listing_bars),
        tiers=tiers, windows=[(n, label, periods[n].label) for n, (_c, label) in WINDOWS.items()],
        rate_charts=rate_charts, top=top, enterprises=focus.enterprises(conn, visit.scope),
        jurisdictions=focus.jurisdictions(conn, visit.scope), regulator=regulator,
        as_of=views.local(now, zone))


def inspections(visit: Visit) -> Response:
    """The tasks a completion figure counts: a tier, a window, optionally only the done ones."""
    conn = visit.session.connection()
    params = visit.request.query_params
    tier, window, done = params.get("tier", ""), params.get("window", ""), params.get("done") == "1"
    try:
        where_focus = focus.focus_of(conn, visit.scope, params)
        if tier not in TIERS:
            raise InvalidInput(f"层级「{tier[:20]}」无效，可选：{'、'.join(Tier(t).label for t in TIERS)}",
                               field="tier")
        if window not in WINDOWS:
            raise InvalidInput("时间范围无效，可选：本周、本月、本季度", field="window")
    except NotFound:  # a NotFound is an InvalidInput: the page answers it 404
        raise
    except InvalidInput as exc:
        return visit.page("error.html", 422, title="筛选条件有误", message=exc.message)
    now, zone = utcnow(), visit.settings.timezone
    period = windows(now, zone)[window]
    task = INSPECTION.table
    conditions = [task.c.state != "cancelled", _overlaps(task, period), PLAN.c.tier == tier,
                  *_where(focus.where(visit.scope, where_focus, task)),
                  *([task.c.state.in_(DONE)] if done else [])]
    base = select(task.c.code).join(PLAN, PLAN.c.id == task.c.plan_id).where(*conditions)
    total = int(conn.execute(select(func.count()).select_from(base.subquery())).scalar_one())
    rows = conn.execute(
        select(task.c.code, task.c.state, task.c.period_end, UNIT.c.name.label("unit"))
        .join(PLAN, PLAN.c.id == task.c.plan_id).join(UNIT, UNIT.c.id == task.c.unit_id)
        .where(*conditions).order_by(task.c.period_end, task.c.id).limit(SHOWN)).mappings().all()
    items = [{"code": r["code"], "state_label": INSPECTION.state_label(r["state"]), "unit": r["unit"],
              "due_text": views.local(r["period_end"], zone), "late": r["state"] == "missed"} for r in rows]
    title = f"{Tier(tier).label}排查任务 · {WINDOWS[window][1]}（{period.label}）"
    title += " · 已完成" if done else ""
    return visit.page("dashboard_tasks.html", focus=where_focus, items=items, total=total, title=title,
                      shown=SHOWN)


def mount(app: Any, page: Callable[..., Any]) -> None:
    from safeloop.web import lists

    add = app.router.add_route
    add("/dashboard", page(dashboard), methods=["GET"], include_in_schema=False)
    add("/dashboard/inspections", page(inspections), methods=["GET"], include_in_schema=False)
    lists.mount(app, page)
