"""The API's reads, set-wise: a workflow's filtered page, one entity with its timeline, the inbox.

Every read takes the caller's scope condition (``Scope.where``) into its WHERE clause, so what is
out of scope is simply not there (404 for one entity, absent from lists and counts).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)

from core.errors import InvalidInput, NotFound
from models.enums import Role
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import ENTERPRISE, UNIT
from safeloop.api import paging
from safeloop.api.jsonout import loads_data
from states.actors import Actor, Grant
from states.visibility import jurisdictions_below, units_below
from states.workflow import Workflow

# The column that says when an entity is due, the first a workflow's table has; and the column a
# text search reads besides the code. Generic: a new workflow with such a column gets both.
DUE_COLUMNS = ("deadline", "due_at", "period_end", "review_due")
TEXT_COLUMNS = ("title", "name", "reason")
SORTS = ("id", "created_at", "updated_at", "due")
MAX_TEXT = 200
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)  # where undated entities sort by due


def due_column(workflow: Workflow) -> ColumnElement[Any] | None:
    table = workflow.table
    return next((table.c[name] for name in DUE_COLUMNS if name in table.c), None)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class ListFilter:
    state: str | None = None
    unit: str | None = None
    enterprise: str | None = None
    overdue: bool | None = None
    text: str | None = None
    sort: str = "id"
    descending: bool = True


def _conditions(conn: Connection, workflow: Workflow, wanted: ListFilter,
                now: datetime) -> list[ColumnElement[bool]]:
    table = workflow.table
    found: list[ColumnElement[bool]] = []
    if wanted.state is not None:
        if wanted.state not in workflow.states:
            known = "、".join(workflow.states)
            raise InvalidInput(f"{workflow.label}没有状态「{wanted.state[:40]}」，可用：{known}",
                               field="state")
        found.append(table.c.state == wanted.state)
    for name, value in (("unit", wanted.unit), ("enterprise", wanted.enterprise)):
        if value is None:
            continue
        if f"{name}_id" not in table.c:
            raise InvalidInput(f"{workflow.label}不按{'单位' if name == 'unit' else '企业'}归属，"
                               f"不能按 {name} 筛选", field=name)
        if name == "unit":
            unit_id = conn.execute(select(UNIT.c.id).where(UNIT.c.key == value)).scalar()
            # the unit and every unit under it; an unknown key simply matches nothing
            found.append(table.c.unit_id.in_(select(UNIT.c.id).where(
                UNIT.c.path.like(f"%/{unit_id}/%"))) if unit_id is not None else false())
        else:
            found.append(table.c.enterprise_id.in_(
                select(ENTERPRISE.c.id).where(ENTERPRISE.c.key == value)))
    if wanted.overdue is not None:
        due = due_column(workflow)
        late = (and_(due.is_not(None), due < now, table.c.state.not_in(sorted(workflow.terminal)))
                if due is not None else false())
        found.append(late if wanted.overdue else ~late)
    if wanted.text:
        pattern = _like(wanted.text[:MAX_TEXT])
        columns = [table.c.code] + [table.c[c] for c in TEXT_COLUMNS if c in table.c]
        found.append(or_(*(c.like(pattern, escape="\\") for c in columns)))
    return found


def page(conn: Connection, workflow: Workflow, where: ColumnElement[bool] | None,
         wanted: ListFilter, cursor: str | None, limit: int,
         now: datetime) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a workflow's entities in (sort key, id) order and the cursor of the next."""
    table = workflow.table
    key = table.c.id if wanted.sort == "id" else (
        due_column(workflow) if wanted.sort == "due" else table.c[wanted.sort])
    if key is None:
        raise InvalidInput(f"{workflow.label}没有期限字段，不能按 due 排序", field="sort")
    sort_name = f"{'-' if wanted.descending else ''}{wanted.sort}"
    stmt = select(table)
    conditions = _conditions(conn, workflow, wanted, now)
    if where is not None:
        conditions.append(where)
    if wanted.sort == "due":  # keyset over a nullable key: order by (due IS NULL, due, id)
        key = func.coalesce(key, literal(FAR_FUTURE, DateTime(timezone=True)))
    if cursor:
        value, last_id = paging.decode(cursor, sort_name)
        if wanted.sort == "id":
            value = last_id
        conditions.append(paging.after(key, table.c.id, value, last_id, wanted.descending))
    order = (key.desc(), table.c.id.desc()) if wanted.descending else (key.asc(), table.c.id.asc())
    rows = [dict(r) for r in conn.execute(
        stmt.where(*conditions).order_by(*order).limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        column = wanted.sort if wanted.sort != "due" else due_column(workflow).name  # type: ignore[union-attr]
        value = last[column]
        if wanted.sort == "due" and value is None:
            value = FAR_FUTURE
        next_cursor = paging.encode(sort_name, value, last["id"])
    return rows, next_cursor


def entity(conn: Connection, workflow: Workflow, code: str,
           where: ColumnElement[bool] | None) -> dict[str, Any]:
    """One entity by code, if the caller may see it; else NotFound (existence does not leak)."""
    table = workflow.table
    stmt = select(table).where(table.c.code == code)
    if where is not None:
        stmt = stmt.where(where)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"{workflow.label}「{code[:64]}」不存在")
    return dict(row)


def timeline(conn: Connection, workflow: Workflow, entity_id: int) -> list[dict[str, Any]]:
    """The entity's audit rows in order, with labels."""
    rows = conn.execute(
        select(AUDIT.c.seq, AUDIT.c.at, AUDIT.c.recorded_at, AUDIT.c.event, AUDIT.c.from_state,
               AUDIT.c.to_state, AUDIT.c.actor, AUDIT.c.actor_role, AUDIT.c.comment, AUDIT.c.data,
               AUDIT.c.channel, AUDIT.c.simulated)
        .where(AUDIT.c.entity_type == workflow.name, AUDIT.c.entity_id == entity_id)
        .order_by(AUDIT.c.seq)).mappings()
    out = []
    for r in rows:
        label = (workflow.create_event.label if r["event"] == workflow.create_event.name
                 else workflow.event_label(r["event"]))
        out.append({**dict(r), "at": stamp(r["at"]), "recorded_at": stamp(r["recorded_at"]),
                    "event_label": label, "data": loads_data(r["data"]),
                    "from_label": workflow.state_label(r["from_state"]) if r["from_state"] else None,
                    "to_label": workflow.state_label(r["to_state"]) if r["to_state"] else None,
                    "simulated": bool(r["simulated"]) if r["simulated"] is not None else None})
    return out


def stamp(text: str | None) -> str | None:
    """An audit time (stored as ``…Z``) with an explicit offset, as every API time is."""
    if not text:
        return text
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text


def evidence_refs(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every evidence reference the entity's events carried (each file once)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if isinstance(value.get("sha256"), str) and "size" in value:
                found.setdefault(value["sha256"], {k: value.get(k) for k in ("sha256", "name", "size")})
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for event in events:
        walk(event.get("data"))
    return list(found.values())


# ---- the inbox -------------------------------------------------------------------------------


def _grant_scope(workflow: Workflow, grant: Grant) -> ColumnElement[bool] | None:
    """Rows where this grant gives its role (set-wise ``Actor.roles_at``), or None if nowhere.

    Written as ``IN`` subqueries over the org tables (a few thousand rows) on the entity table's
    own columns, so the entity side is an index search on (unit_id, state) rather than a join
    filtered row by row (bench/api.py: the inbox at 100,000 hazards)."""
    table = workflow.table
    parts: list[ColumnElement[bool]] = []
    unit_scoped = "unit_id" in table.c
    if grant.unit_id is not None and unit_scoped:
        parts.append(table.c.unit_id.in_(units_below([grant.unit_id])))
    if grant.jurisdiction_id is not None:
        in_tree = jurisdictions_below([grant.jurisdiction_id])
        regulated = grant.role == Role.regulator.value and grant.industries is not None
        if unit_scoped:
            enterprises = select(ENTERPRISE.c.id).where(ENTERPRISE.c.jurisdiction_id.in_(in_tree))
            if regulated:
                enterprises = enterprises.where(ENTERPRISE.c.industry.in_(sorted(grant.industries or ())))
            parts.append(table.c.enterprise_id.in_(enterprises))
        else:
            condition = table.c.jurisdiction_id.in_(in_tree)
            if regulated and "department_id" in table.c:
                condition = and_(condition, or_(table.c.department_id.is_(None),
                                                table.c.department_id == grant.department_id))
            parts.append(condition)
    return or_(*parts) if parts else None


def _actionable(workflow: Workflow, actor: Actor) -> ColumnElement[bool] | None:
    """Entities in a state where one of the actor's grants may fire some event there."""
    options = []
    for grant in actor.grants:
        states = sorted({s for rule in workflow.events.values() if grant.role in rule.roles
                         for s in rule.sources if s not in workflow.terminal})
        where = _grant_scope(workflow, grant) if states else None
        if where is not None:
            options.append(and_(workflow.table.c.state.in_(states), where))
    return or_(*options) if options else None


NOW = bindparam("now", type_=DateTime(timezone=True))  # the inbox's statements are cached: now varies
_INBOX_CACHE: OrderedDict[Hashable, tuple[Select[Any], Select[Any]] | None] = OrderedDict()
INBOX_CACHE_SIZE = 512  # people whose inbox statements are kept (a few KB each)


def _inbox_select(workflow: Workflow, actor: Actor, where: ColumnElement[bool] | None) -> Select[Any] | None:
    """The workflow's actionable rows, narrow: kind, id, due, overdue -- all in the table's
    (unit_id, state, due) index, so ordering and counting never touch the rows themselves."""
    table = workflow.table
    condition = _actionable(workflow, actor)
    if condition is None:
        return None
    due = due_column(workflow)
    due_value = due if due is not None else null().cast(DateTime(timezone=True))
    overdue = case((and_(due.is_not(None), due < NOW), 1), else_=0) if due is not None else literal(0)
    stmt = select(literal(workflow.name).label("kind"), table.c.id.label("id"),
                  due_value.label("due"), overdue.label("overdue")).where(condition)
    if where is not None:
        stmt = stmt.where(where)
    return stmt


def _inbox_statements(workflows: Sequence[Workflow], actor: Actor, scope: Any,
                      limit: int) -> tuple[Select[Any], Select[Any]] | None:
    """The inbox's two statements (the first ``limit`` entities; counts by kind) for this person,
    built once per (grants, scope): building and keying them cost as much as running them."""
    key = (tuple(w.name for w in workflows), actor, scope, limit)
    if key in _INBOX_CACHE:
        _INBOX_CACHE.move_to_end(key)
        return _INBOX_CACHE[key]
    parts = [s for w in workflows if (s := _inbox_select(w, actor, scope.where(w))) is not None]
    made = None
    if parts:
        every = union_all(*parts).subquery("inbox")
        first = select(every).order_by(case((every.c.due.is_(None), 1), else_=0), every.c.due,
                                       every.c.kind, every.c.id).limit(limit)
        counts = (select(every.c.kind, func.count().label("total"),
                         func.sum(every.c.overdue).label("late")).group_by(every.c.kind))
        made = (first, counts)
    _INBOX_CACHE[key] = made
    while len(_INBOX_CACHE) > INBOX_CACHE_SIZE:
        _INBOX_CACHE.popitem(last=False)
    return made


def _details(conn: Connection, workflow: Workflow, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Code, state, version and a title of the given rows of one workflow."""
    table = workflow.table
    text = next((table.c[c] for c in TEXT_COLUMNS if c in table.c), None)
    rows = conn.execute(select(table.c.id, table.c.code, table.c.state, table.c.version,
                               (text if text is not None else literal("")).label("title"))
                        .where(table.c.id.in_(ids))).mappings()
    return {int(r["id"]): dict(r) for r in rows}


def inbox(conn: Connection, workflows: Sequence[Workflow], actor: Actor,
          scope: Hashable, now: datetime, limit: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What the caller may act on now, due soonest first (undated last), and counts by kind.

    In two steps: which entities come first, from the narrow index-only union; then the details
    of only those (a principal with thousands open does not read thousands of rows). ``scope``
    is the caller's read scope (``where(workflow)``), hashable: with the actor it keys the cache."""
    statements = _inbox_statements(workflows, actor, scope, limit)
    if statements is None:
        return [], {}
    first_stmt, counts_stmt = statements
    first = [dict(r) for r in conn.execute(first_stmt, {"now": now}).mappings()]
    by_kind: dict[str, list[int]] = {}
    for row in first:
        by_kind.setdefault(row["kind"], []).append(int(row["id"]))
    named = {w.name: w for w in workflows}
    details = {kind: _details(conn, named[kind], ids) for kind, ids in by_kind.items()}
    items = [{"kind": r["kind"], **details[r["kind"]][int(r["id"])], "due": r["due"],
              "overdue": r["overdue"]} for r in first]
    counts = {r.kind: {"total": int(r.total), "overdue": int(r.late or 0)}
              for r in conn.execute(counts_stmt, {"now": now})}
    return items, counts
